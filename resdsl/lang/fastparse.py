"""A faster driver for the parser's own Lark objects: Lark's contextual lexer, resdsl's post-lexer
(resdsl.lang.parser._Postlex) and Lark's LALR loop fused into one Python loop, reading the same
parse table, per-state scanners, keyword callbacks and rule callbacks. It does what Lark does, token
for token, with less per-token work; it never reports an error itself: on anything unusual (no
terminal matches, a token the table refuses, a glued keyword, a callback that raises) it gives up and
the caller parses again with Lark, whose error is the one shown (resdsl.lang.parser.parse_text)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from lark import Lark, Token
from lark.lexer import PatternStr, UnlessCallback
from lark.parsers.lalr_analysis import Shift

# per parser state: the scanner's regex match; for the terminals a keyword may be read as (Lark's
# UnlessCallback), a {text: keyword terminal} map; the terminals that may hold a newline
_Lex = tuple[Callable[..., Any], dict[str, dict[str, str]], frozenset[str]]
# per parser state: token type -> (True, next state) or (False, (rule size, callback, rule name))
_Actions = dict[str, tuple[bool, Any]]


class GiveUp(Exception):
    """The fast driver met something it leaves to Lark."""


class FastParser:
    """Built once from a Lark LALR parser with a contextual lexer and resdsl's post-lexer."""

    def __init__(self, lark: Lark, keywords: tuple[str, ...]) -> None:
        frontend = lark.parser
        parser = frontend.parser.parser
        table = parser.parse_table
        lexer = frontend.lexer.lexer  # PostLexConnector -> ContextualLexer
        if any(isinstance(k, str) for k in parser.callbacks):
            raise GiveUp("terminal callbacks")  # feed_token would call them on shift
        self.start = table.start_states["start"]
        self.end = table.end_states["start"]
        self.actions: dict[int, _Actions] = {}
        self.goto: dict[int, dict[str, int]] = {}
        for state, row in table.states.items():
            acts: _Actions = {}
            for name, (action, arg) in row.items():
                if action is Shift:
                    acts[name] = (True, arg)
                else:
                    acts[name] = (False, (len(arg.expansion), parser.callbacks[arg], arg.origin.name))
            self.actions[state] = acts
            self.goto[state] = {n: arg for n, (a, arg) in row.items() if a is Shift}
        self.lex: dict[int, _Lex] = {}
        built: dict[int, _Lex] = {}
        for state, basic in lexer.lexers.items():
            if id(basic) not in built:
                built[id(basic)] = self._lexer(basic)
            self.lex[state] = built[id(basic)]
        self.ignore = next(iter(lexer.lexers.values())).ignore_types
        if any(b.ignore_types != self.ignore for b in lexer.lexers.values()):
            raise GiveUp("lexers differ in ignored terminals")
        self.keywords = frozenset(keywords)

    @staticmethod
    def _lexer(basic: Any) -> _Lex:
        scanner = basic.scanner
        if len(scanner._mres) != 1:
            raise GiveUp("a scanner of several regexes")
        unless: dict[str, dict[str, str]] = {}
        for name, callback in basic.callback.items():
            if not isinstance(callback, UnlessCallback):
                raise GiveUp(f"a lexer callback for {name}")
            inner = callback.scanner
            words = {}
            for t in inner.terminals:
                if not isinstance(t.pattern, PatternStr) or t.pattern.flags:
                    raise GiveUp("a keyword that is not a plain string")
                words[t.pattern.value] = t.name
            if len(set(words.values())) != len(words) or any(inner.fullmatch(w) != n for w, n in words.items()):
                raise GiveUp("keywords that overlap")
            unless[name] = words
        if set(basic.callback) & basic.ignore_types:
            raise GiveUp("a callback on an ignored terminal")
        return scanner._mres[0].match, unless, basic.newline_types

    def parse(self, text: str) -> Any:
        """The tree Lark would build for `text` (its callbacks called in the same order), or GiveUp."""
        actions, goto, lexers = self.actions, self.goto, self.lex
        ignore, keywords = self.ignore, self.keywords
        new_token = Token._future_new
        word = _WORD
        states = [self.start]
        values: list[Any] = []
        brackets: list[str] = []  # the post-lexer's open brackets
        pos, line, line_start, end = 0, 1, 0, len(text)
        prev_end, prev_keyword = -1, False
        tok: Token | None = None
        while pos < end:
            match, unless, newline = lexers[states[-1]]
            m = match(text, pos)
            if m is None:
                raise GiveUp("no terminal matches")
            value, kind = m.group(0), m.lastgroup
            start, col = pos, pos - line_start + 1
            start_line = line
            pos += len(value)
            if kind in newline:
                n = value.count("\n")
                if n:
                    line += n
                    line_start = start + value.rindex("\n") + 1
            if kind in ignore:
                continue
            if kind in unless:
                kind = unless[kind].get(value, kind)
            # the post-lexer: glued keywords, separators inside (...) and [...], bracket nesting
            if prev_keyword and prev_end == start and word.match(value):
                raise GiveUp("a glued keyword")
            prev_end, prev_keyword = pos, kind == value.upper() and value in keywords
            if kind == "_SEP":
                if brackets and brackets[-1] in "([":
                    continue
            elif kind != "STRING":
                if value in ("(", "[", "{"):
                    brackets.append(value)
                elif value in _CLOSE and brackets and brackets[-1] == _CLOSE[value]:
                    brackets.pop()
            tok = new_token(kind, value, start, start_line, col, line, pos - line_start + 1, pos)
            # Lark's feed_token
            while True:
                try:
                    shift, arg = actions[states[-1]][kind]
                except KeyError:
                    raise GiveUp("unexpected token") from None
                if shift:
                    states.append(arg)
                    values.append(tok)
                    break
                size, callback, origin = arg
                if size:
                    children = values[-size:]
                    del states[-size:]
                    del values[-size:]
                else:
                    children = []
                values.append(callback(children))
                states.append(goto[states[-1]][origin])
        # the end of the text
        while True:
            try:
                shift, arg = actions[states[-1]]["$END"]
            except KeyError:
                raise GiveUp("unexpected end") from None
            if shift:
                raise GiveUp("shift at the end")
            size, callback, origin = arg
            if size:
                children = values[-size:]
                del states[-size:]
                del values[-size:]
            else:
                children = []
            values.append(callback(children))
            states.append(goto[states[-1]][origin])
            if states[-1] == self.end:
                return values[-1]


_WORD = re.compile(r"[A-Za-z0-9_]")
_CLOSE = {")": "(", "]": "[", "}": "{"}
