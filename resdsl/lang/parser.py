"""Spec text -> typed syntax tree (resdsl.lang.syntax), with located, friendly syntax errors. The
tree is built while Lark's LALR parser reduces each rule (resdsl.lang.build), not walked afterwards."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from functools import lru_cache
from importlib.resources import files
from pathlib import Path

from lark import Lark, Token
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from resdsl.diagnostics import SourceFile, Span, SpecError, collect
from resdsl.lang import syntax
from resdsl.lang.build import INPUT_NAMES, KEYWORDS, MAX_DEPTH, SyntaxBuilder, parse_number
from resdsl.lang.fastparse import FastParser, GiveUp

__all__ = ["INPUT_NAMES", "KEYWORDS", "MAX_DEPTH", "SpecSyntaxError", "parse_file", "parse_number", "parse_text"]


class _GluedKeyword(Exception):
    """A keyword run together with what follows (`paramk`): the contextual lexer reads a keyword
    wherever no name can stand, so `paramk = 3` would silently mean `param k = 3`."""

    def __init__(self, at: Token) -> None:
        self.at = at


class _Postlex:
    """Drops statement separators inside (...) and [...]; tracks unclosed brackets; refuses a
    keyword glued to the word after it."""

    always_accept = ("_SEP",)
    _close = {")": "(", "]": "[", "}": "{"}

    def __init__(self) -> None:
        self.open: list[Token] = []

    def process(self, stream: Iterator[Token]) -> Iterator[Token]:
        self.open = []
        prev: Token | None = None
        for tok in stream:
            if prev is not None and prev.end_pos == tok.start_pos and _is_keyword(prev) and _WORD.match(tok.value):
                raise _GluedKeyword(prev)
            prev = tok
            if tok.type == "_SEP" and self.open and self.open[-1].value in "([":
                continue
            if tok.value in ("(", "[", "{") and tok.type != "STRING":
                self.open.append(tok)
            elif tok.value in self._close and tok.type != "STRING":
                if self.open and self.open[-1].value == self._close[tok.value]:
                    self.open.pop()
            yield tok


_WORD = re.compile(r"[A-Za-z0-9_]")


def _is_keyword(tok: Token) -> bool:
    return tok.type == tok.value.upper() and tok.value in KEYWORDS  # Lark names `"param"` PARAM


@lru_cache(maxsize=1)
def _fast() -> FastParser | None:
    """The fused driver over the parser's own tables (resdsl.lang.fastparse), or None if this
    version of Lark builds something it does not know."""
    try:
        return FastParser(_parser()[0], KEYWORDS)
    except (GiveUp, AttributeError, KeyError, TypeError):
        return None


@lru_cache(maxsize=1)
def _parser() -> tuple[Lark, _Postlex, SyntaxBuilder]:
    """Lark's LALR parser, calling the SyntaxBuilder's methods as it reduces each rule (every token
    passed to them, no positions tracked: the builder works the spans out)."""
    grammar = (files("resdsl.lang") / "grammars" / "resdsl.lark").read_text()
    postlex = _Postlex()
    builder = SyntaxBuilder()
    lark = Lark(
        grammar,
        parser="lalr",
        transformer=builder,
        keep_all_tokens=True,
        postlex=postlex,
        maybe_placeholders=False,
        cache=_cache_file(grammar),
    )
    return lark, postlex, builder


USE_FAST = True  # the fused driver first (tests turn it off to compare with Lark's own loop)
_LOCK = threading.Lock()  # the post-lexer and the builder hold one parse's state


def _cache_file(grammar: str) -> str | bool:
    """Where Lark keeps the built LALR tables (140 ms to build, 10 ms to load): the user's cache
    folder, one file per grammar, parser options, Lark and Python version (so that versions of resdsl
    with other options do not overwrite each other's); else Lark's own temp-folder cache."""
    import hashlib
    import os
    import sys

    import lark

    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "resdsl"
    options = "lalr keep_all_tokens"  # what the tables depend on besides the grammar (Lark checks it too)
    key = hashlib.sha256(f"{grammar}\0{options}\0{lark.__version__}\0{sys.version_info[:2]}".encode()).hexdigest()[:16]
    try:
        base.mkdir(parents=True, exist_ok=True)
    except OSError:
        return True
    if not os.access(base, os.W_OK):
        return True
    return str(base / f"grammar-{key}.lark-cache")


class SpecSyntaxError(SpecError):
    """Text that does not parse; `at_start` when the very first token is wrong (perhaps no spec at all)."""

    at_start = False


def parse_text(text: str, path: str = "<string>") -> syntax.Module:
    text = text.removeprefix("\ufeff")  # a byte order mark, as some editors write
    source = SourceFile(path, text)
    lark, postlex, builder = _parser()
    fast = _fast() if USE_FAST else None
    with _LOCK:
        module = None
        if fast is not None:
            builder.reset(source)
            try:
                module = fast.parse(text)
            except Exception:  # noqa: BLE001 - any trouble: Lark parses again and says what is wrong
                module = None
        if module is None:
            builder.reset(source)
        try:
            if module is None:
                module = lark.parse(text)
        except _GluedKeyword as exc:
            raise _glued_error(source, exc.at.line or 1, exc.at.column or 1) or SpecSyntaxError(
                f"unexpected `{exc.at.value}`", _token_span(source, exc.at)
            ) from None
        except UnexpectedInput as exc:
            err = _syntax_error(exc, source, postlex)
            err.at_start = _at_start(text, err)
            raise err from None
        finally:
            builder.extents = {}
        errors = builder.errors
    collect(errors)
    return module


def parse_file(path: Path, display: str | None = None) -> syntax.Module:
    return parse_text(path.read_text(encoding="utf-8"), display or str(path))


_LEADING = re.compile(r"(?:[ \t\f\r\n;]|\\\r?\n|#[^\n]*)*")  # what may come before the first token


def _at_start(text: str, err: SpecError) -> bool:
    """Whether a syntax error is at the first token of the text."""
    if err.span is None:
        return False
    offset = _LEADING.match(text).end()
    line = text.count("\n", 0, offset) + 1
    col = offset - (text.rfind("\n", 0, offset) + 1) + 1
    return (err.span.line, err.span.col) == (line, col)


# ---------------------------------------------------------------- syntax errors


def _token_span(source: SourceFile, tok: Token) -> Span:
    line, col = tok.line or 1, tok.column or 1
    end = col + max(1, len(str(tok.value).split("\n")[0]))
    return Span(source, line, col, line, end)


def _describe(tok: Token) -> str:
    if tok.type == "$END":
        return "end of file"
    if tok.type == "_SEP":
        return "end of line" if "\n" in tok.value else f"`{tok.value.strip()[:1] or ';'}`"
    return f"`{tok.value}`"


_EXPECT_NAMES = {
    "NAME": "a name",
    "CALLNAME": "a block call",
    "NUMBER": "a number",
    "SIZE": "a size like 3x3",
    "STRING": "a string",
    "LBRACE": "`{`",
    "RBRACE": "`}`",
    "LPAR": "`(`",
    "RPAR": "`)`",
    "RSQB": "`]`",
    "COMMA": "`,`",
    "EQUAL": "`=`",
    "COLON": "`:`",
    "_SEP": "end of line",
}


def _expected(exc: UnexpectedInput) -> str:
    names = sorted({_EXPECT_NAMES.get(t, None) or "" for t in getattr(exc, "expected", ()) or ()} - {""})
    return ", ".join(names[:6])


def _glued_error(source: SourceFile, line: int, col: int) -> SpecSyntaxError | None:
    """The error for a word at (line, col) that starts with a keyword and goes on (`paramk`,
    `andb`, `param1`), or None if the word there is no such thing."""
    text = source.line(line)
    start = col - 1
    while start > 0 and _WORD.match(text[start - 1]):
        start -= 1
    end = start
    while end < len(text) and _WORD.match(text[end]):
        end += 1
    word = text[start:end]
    keyword = max((k for k in KEYWORDS if word.startswith(k) and len(word) > len(k)), key=len, default=None)
    if keyword is None:
        return None
    return SpecSyntaxError(
        f"unexpected `{word}`",
        Span(source, line, start + 1, line, end + 1),
        f"keywords are whole words: did you mean `{keyword} {word[len(keyword) :]}`?",
    )


def _syntax_error(exc: UnexpectedInput, source: SourceFile, postlex: _Postlex) -> SpecSyntaxError:
    if exc.line and exc.column and exc.line > 0:
        at = getattr(exc, "token", None)
        if at is None or (at.type in ("NAME", "CALLNAME", "NUMBER", "SIZE")):
            glued = _glued_error(source, exc.line, exc.column)
            if glued is not None and glued.span.col < exc.column:
                return glued
    if isinstance(exc, UnexpectedCharacters):
        line, col = exc.line, exc.column
        char = source.line(line)[col - 1 : col] or "?"
        span = Span(source, line, col, line, col + 1)
        hint = "remove it; comments start with `#`"
        if char == "'":
            hint = 'strings use double quotes: "std.rd"'
        elif char == "=" or char == "!":
            hint = "comparisons are ==, !=, <, <=, >, >=, ~= (about)"
        return SpecSyntaxError(f"unexpected character `{char}`", span, hint)
    if isinstance(exc, UnexpectedEOF) or (isinstance(exc, UnexpectedToken) and exc.token.type == "$END"):
        if postlex.open:
            tok = postlex.open[-1]
            closer = {"(": ")", "[": "]", "{": "}"}[tok.value]
            return SpecSyntaxError(
                f"`{tok.value}` is never closed",
                _token_span(source, tok),
                f"add the matching `{closer}`",
            )
        last = max(len(source.lines), 1)
        col = len(source.line(last)) + 1
        return SpecSyntaxError("unexpected end of file", Span(source, last, col, last, col + 1))
    assert isinstance(exc, UnexpectedToken)
    tok = exc.token
    span = _token_span(source, tok)
    unclosed = _unclosed_before(tok, postlex)
    if unclosed is not None:
        closer = {"(": ")", "[": "]"}[unclosed.value]
        return SpecSyntaxError(
            f"`{unclosed.value}` is never closed",
            _token_span(source, unclosed),
            f"add the matching `{closer}`; the statement runs on to line {tok.line} (`{tok.value}`)",
        )
    expected = set(exc.expected or ())
    message = f"unexpected {_describe(tok)}"
    hint = _syntax_hint(tok, expected, source)
    exp = _expected(exc)
    if exp and not hint:
        hint = f"expected {exp}"
    return SpecSyntaxError(message, span, hint)


def _unclosed_before(tok: Token, postlex: _Postlex) -> Token | None:
    """An open `(` or `[` on an earlier line than the unexpected token: newlines inside brackets
    are dropped, so the real mistake is the missing closer, not the token it ran into."""
    if not postlex.open or tok.line is None:
        return None
    opener = postlex.open[-1]
    if opener.value in "([" and opener.line is not None and opener.line < tok.line:
        return opener
    return None


def _syntax_hint(tok: Token, expected: set[str], source: SourceFile) -> str | None:
    prev_char = source.line(tok.line or 1)[: (tok.column or 1) - 1].rstrip()[-1:]
    if tok.type == "EQUAL" and "COLON" in expected:
        return "keyword arguments are written `name: value`, e.g. `stride: 2`"
    if tok.type == "COLON" and "EQUAL" in expected:
        return "block parameters take defaults with `=`, e.g. `block basic(width, stride = 1)`"
    if tok.type in ("NUMBER", "SIZE", "NAME", "STRING", "CALLNAME") and "COMMA" in expected and prev_char not in ",(":
        if tok.type == "NAME" and tok.value == "x":
            return "write sizes without spaces: `3x3`, `3x32x32`"
        return "separate arguments with `,`, e.g. `conv 3x3, 64`"
    if tok.type == "NAME" and tok.value == "x":
        return "write sizes without spaces: `3x3`, `3x32x32`"
    if tok.type in ("NUMBER", "NAME", "SIZE") and "EQUAL" in expected:
        return "a param needs a default value: `param n = 18`"
    if tok.type == "RBRACE" and "RPAR" in expected:
        return "a `(` is not closed before this `}`"
    if tok.type == "RBRACE" and "RSQB" in expected:
        return "a `[` is not closed before this `}`"
    if tok.type == "LBRACE" and prev_char == ")":
        return None
    if tok.type == "NAME" and "CALLNAME" in expected and "NAME" not in expected:
        return f"call the block with parentheses: `{tok.value}(...)`"
    return None
