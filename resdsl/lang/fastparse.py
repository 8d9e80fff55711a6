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
from lark.parse_tree_builder import ExpandSingleChild
from lark.parsers.lalr_analysis import Shift

# per parser state: the scanner's regex match; for the terminals a keyword may be read as (Lark's
# UnlessCallback), a {text: keyword terminal} map; the terminals that may hold a newline
_Lex = tuple[Callable[..., Any], dict[str, dict[str, str]], frozenset[str]]
# per parser state: token type -> (True, next state) or (False, (rule size, callback, rule name)); the
# callback None for a `?rule` of one child, which Lark's ExpandSingleChild hands up unchanged
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
                    size, callback = len(arg.expansion), parser.callbacks[arg]
                    unit = size == 1 and type(callback) is ExpandSingleChild
                    acts[name] = (False, (size, None if unit else callback, arg.origin.name))
            self.actions[state] = acts
            self.goto[state] = {n: arg for n, (a, arg) in row.items() if a is Shift}
        self._basic = lexer.lexers  # Lark's per-state lexers; their scanners are built when first used, as Lark does
        self._built: dict[int, _Lex] = {}  # id(Lark's lexer) -> ours
        self.lex: dict[int, _Lex] = {}  # parser state -> ours, filled as states are met
        self.ignore = next(iter(lexer.lexers.values())).ignore_types
        if any(b.ignore_types != self.ignore for b in lexer.lexers.values()):
            raise GiveUp("lexers differ in ignored terminals")
        self.keywords = frozenset(keywords)
        self.blanks = _blank_skipper(lark)

    def _lexer_of(self, state: int) -> _Lex:
        basic = self._basic[state]
        built = self._built.get(id(basic))
        if built is None:
            built = self._built[id(basic)] = self._lexer(basic)
        self.lex[state] = built
        return built

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
        ignore, keywords, skip = self.ignore, self.keywords, self.blanks
        new_str = str.__new__
        word = _WORD
        states = [self.start]
        values: list[Any] = []
        brackets: list[str] = []  # the post-lexer's open brackets
        pos, line, line_start, end = 0, 1, 0, len(text)
        prev_end, prev_keyword = -1, False
        tok: Token | None = None
        while pos < end:
            if skip is not None and text[pos] in _BLANKS:  # what only the ignored blanks terminal matches
                pos = skip(text, pos).end()
                if pos == end:
                    break
            lex = lexers.get(states[-1])
            match, unless, newline = lex if lex is not None else self._lexer_of(states[-1])
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
            prev_end, prev_keyword = pos, value in keywords and kind == value.upper()
            if kind == "_SEP":
                if brackets and brackets[-1] in "([":
                    continue
            elif kind != "STRING":
                if value in ("(", "[", "{"):
                    brackets.append(value)
                elif value in _CLOSE and brackets and brackets[-1] == _CLOSE[value]:
                    brackets.pop()
            tok = new_str(Token, value)  # Token._future_new's work, without its call
            tok.type, tok.start_pos, tok.value, tok.line, tok.column = kind, start, value, start_line, col
            tok.end_line, tok.end_column, tok.end_pos = line, pos - line_start + 1, pos
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
                if callback is None:  # the one child is the value
                    states.pop()
                elif size:
                    children = values[-size:]
                    del states[-size:]
                    del values[-size:]
                    values.append(callback(children))
                else:
                    values.append(callback([]))
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
            if callback is None:
                states.pop()
            elif size:
                children = values[-size:]
                del states[-size:]
                del values[-size:]
                values.append(callback(children))
            else:
                values.append(callback([]))
            states.append(goto[states[-1]][origin])
            if states[-1] == self.end:
                return values[-1]


_WORD = re.compile(r"[A-Za-z0-9_]")
_BLANKS = " \t\f\r"
_CLOSE = {")": "(", "]": "[", "}": "{"}


def _blank_skipper(lark: Lark) -> Callable[..., Any] | None:
    """The ignored terminal `[ \\t\\f\\r]+`'s match, if no other terminal can start with a blank: then a
    run of blanks is skipped whatever the parser's state, as every state's scanner would skip it."""
    blank = [t for t in lark.terminals if t.name in lark.lexer_conf.ignore and t.pattern.to_regexp() == "[ \t\x0c\r]+"]
    others = [t for t in lark.terminals if t not in blank]
    if len(blank) != 1:
        return None
    for t in others:
        regex = re.compile(t.pattern.to_regexp(), lark.lexer_conf.g_regex_flags)
        if any(regex.match(c + tail) for c in _BLANKS for tail in ("", "a", "0", "(", c)):
            return None
    return re.compile(blank[0].pattern.to_regexp()).match
