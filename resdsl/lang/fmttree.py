"""The formatter's view of a spec: the parser's own token stream, comments included, as nested
bodies of lines of statements (resdsl fmt; the layout is fmt.py's).

A second Lark parser over the same grammar file runs with a post-lexer that records every token
the contextual lexer produces, the statement separators inside brackets too (the parser never sees
those), before handing the parser what it expects. Comments live in the `_SEP` terminal
(`#` to the end of the line); `pieces` splits a separator's text into its newlines, `;`s and
comments. Nothing here reads the text with patterns of its own: every word, number and
operator is a token with the type the parser gave it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from importlib.resources import files

from lark import Lark, Token


@dataclass
class Comment:
    """A `#` comment; `own_line`: nothing but blanks before it on its line."""

    text: str
    own_line: bool


@dataclass
class Stmt:
    """One statement: its tokens (comments inside brackets among them) and its `{ }` bodies."""

    parts: list = field(default_factory=list)  # Token | Comment | Body


@dataclass
class Line:
    """A source line's statements (joined by `;`), or a comment of its own."""

    stmts: list[Stmt] = field(default_factory=list)
    comment: str | None = None  # trailing comment, or the whole line's when stmts is empty
    blank_before: bool = False


@dataclass
class Body:
    """A `{ }` body (or the whole file): its lines; `inline` when the source wrote it on one line."""

    lines: list[Line] = field(default_factory=list)
    inline: bool = True
    head_comment: str | None = None  # a comment after `{` on its line


class _Recorder:
    """Post-lexer: records every token, passes the parser those it reads (no `_SEP` inside `( )`
    and `[ ]`, as the real parser's post-lexer)."""

    always_accept = ("_SEP",)

    def __init__(self) -> None:
        self.tokens: list[Token] = []

    def process(self, stream: Iterator[Token]) -> Iterator[Token]:
        depth: list[str] = []
        for tok in stream:
            self.tokens.append(tok)
            if tok.type == "_SEP" and depth and depth[-1] in "([":
                continue
            if tok.type != "STRING":
                if tok.value in ("(", "[", "{"):
                    depth.append(tok.value)
                elif tok.value in (")", "]", "}") and depth:
                    depth.pop()
            yield tok


_LOCK = threading.Lock()


@lru_cache(maxsize=1)
def _lark() -> tuple[Lark, _Recorder]:
    grammar = (files("resdsl.lang") / "grammars" / "resdsl.lark").read_text()
    recorder = _Recorder()
    return Lark(grammar, parser="lalr", postlex=recorder, maybe_placeholders=False, cache=True), recorder


def tokens(text: str) -> list[Token]:
    """Every token of a text that parses (the caller has checked that it does)."""
    lark, recorder = _lark()
    with _LOCK:
        recorder.tokens = []
        lark.parse(text)
        return recorder.tokens


def pieces(sep: Token) -> Iterator[tuple[str, int]]:
    """A separator's newlines, `;`s and comments, each with its offset in the text."""
    value, i = sep.value, 0
    while i < len(value):
        c = value[i]
        if c == "#":
            end = value.find("\n", i)
            end = len(value) if end < 0 else end
            yield value[i:end].rstrip(), sep.start_pos + i
            i = end
        else:
            if c in "\n;":
                yield c, sep.start_pos + i
            i += 1


class _Builder:
    def __init__(self, text: str, toks: list[Token]) -> None:
        self.text = text
        self.toks = toks
        self.i = 0

    def own_line(self, offset: int) -> bool:
        start = self.text.rfind("\n", 0, offset) + 1
        return not self.text[start:offset].strip(" \t\f\r")

    def body(self, top: bool) -> Body:
        """Lines until the matching `}` (consumed) or the end of the tokens."""
        body = Body()
        line, stmt = Line(), Stmt()
        newlines = 0  # newlines since the last statement or comment
        first = True  # nothing yet in this body
        while self.i < len(self.toks):
            tok = self.toks[self.i]
            self.i += 1
            if tok.type == "_SEP":
                for piece, _ in pieces(tok):
                    if stmt.parts:  # a separator ends the statement
                        line.stmts.append(stmt)
                        stmt = Stmt()
                    if piece in ("\n", ";"):
                        if piece == "\n":
                            if line.stmts or line.comment is not None:
                                body.lines.append(line)
                                line = Line()
                            newlines += 1
                            body.inline = False
                        continue
                    if line.stmts:  # after code on its line
                        line.comment = piece
                    elif first and newlines == 0 and not top:  # `{  # ...`
                        body.head_comment = piece
                    else:
                        line = Line(comment=piece, blank_before=newlines > 1 and not first)
                        body.lines.append(line)
                        line = Line()
                    first, newlines = False, 0
                    body.inline = False
                continue
            if tok.value == "}" and tok.type == "RBRACE":
                break
            if not stmt.parts and not line.stmts:
                line.blank_before = newlines > 1 and not first
            first, newlines = False, 0
            if tok.type == "LBRACE":
                stmt.parts.append(self.body(top=False))
            elif tok.type in ("LPAR", "LSQB"):
                self.group(stmt, tok)
            else:
                stmt.parts.append(tok)
        if stmt.parts:
            line.stmts.append(stmt)
        if line.stmts or line.comment is not None:
            body.lines.append(line)
        if body.head_comment is not None:
            body.inline = False
        return body

    def group(self, stmt: Stmt, opener: Token) -> None:
        """A bracketed group's tokens into the statement, its comments as Comment parts."""
        stmt.parts.append(opener)
        depth = 1
        while self.i < len(self.toks) and depth:
            tok = self.toks[self.i]
            self.i += 1
            if tok.type == "_SEP":
                for piece, offset in pieces(tok):
                    if piece.startswith("#"):
                        stmt.parts.append(Comment(piece, self.own_line(offset)))
                continue
            if tok.type in ("LPAR", "LSQB"):
                depth += 1
            elif tok.type in ("RPAR", "RSQB"):
                depth -= 1
            stmt.parts.append(tok)


def read(text: str) -> Body:
    """The file as a body of lines (the text parses: the caller checked)."""
    return _Builder(text, tokens(text)).body(top=True)
