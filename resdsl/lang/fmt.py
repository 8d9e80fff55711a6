"""`resdsl fmt`: one canonical layout for a spec, from the parser's tokens (fmttree.py).

The rules (docs/editors.md):
- four spaces a level of `{ }`; one space between words and around `=`, binary operators and the
  `*` of a stage; none inside brackets, before `,`, `:` and `)`, after a unary `-`; `name(` stays
  glued, `name (` apart (they parse differently); trailing commas dropped;
- the author's lines are kept: statements joined by `;` stay on their line, a body written on one
  line (`stem { conv 3x3, 16; bn; relu }`) stays inline, at most one blank line is kept, none at
  the start of a body or of the file;
- a line longer than WIDTH is split: its `;` statements onto lines of their own, an inline body
  opened (a statement a line), then a bracketed call or list broken after its opener (the last
  one whose opening line fits, as black does), its contents on one indented line or one item a
  line, `)` back at the statement's indentation;
- the trailing comments of consecutive lines are aligned, two spaces after the longest code of
  the run; the comparison operators of consecutive `expect` lines at one indentation are aligned;
- comments are kept word for word (trailing blanks dropped); a BOM, tabs, `\\r\\n` and `\\`
  line continuations do not survive.
Formatting twice gives the first result, and the formatted spec has the same IR.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from lark import Token

from resdsl.lang import fmttree
from resdsl.lang.fmttree import Body, Comment, Line, Stmt
from resdsl.lang.parser import parse_text

WIDTH = 120
INDENT = "    "


def format_source(text: str, path: str = "<string>") -> str:
    """The canonical layout of a spec's text. Raises what parse_text raises where it does not parse:
    a located SpecError (a syntax error), or SpecErrors (names that are keywords). Newlines
    are read as a spec file is read (imports.read_spec): `\\r\\n` and a lone `\\r` are one."""
    text = text.removeprefix("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
    parse_text(text, path)  # the usual located errors, before anything else
    outs = _Layout().body(fmttree.read(text), 0)
    return _emit(outs)


@dataclass
class Out:
    """One output line: its indentation level, code, trailing (or own-line, when code is "")
    comment, and for an `expect` its text split at the comparison."""

    depth: int
    code: str
    comment: str | None = None
    expect: tuple[str, str] | None = None


_BLANK = Out(-1, "")
_NO_SPACE_BEFORE = {"RPAR", "RSQB", "COMMA", "COLON", "DOT"}
_NO_SPACE_AFTER = {"LPAR", "LSQB", "DOT", "MINUS", "PLUS"}  # MINUS, PLUS: the unary ones
_NOT_ALIGNED = {"AND", "OR", "NOT", "IF", "ELSE"}


def _space(prev: Token, tok: Token) -> str:
    if tok.type in _NO_SPACE_BEFORE or prev.type in _NO_SPACE_AFTER:
        return ""
    if tok.type == "LPAR" and prev.type == "CALLNAME":
        return ""
    return " "


def _join(items: list) -> str:
    """Tokens on one line (no comments among them), a comma before a closing bracket dropped."""
    toks = [t for t in items if isinstance(t, Token)]
    out: list[str] = []
    prev: Token | None = None
    for k, tok in enumerate(toks):
        if tok.type == "COMMA" and k + 1 < len(toks) and toks[k + 1].type in ("RPAR", "RSQB"):
            continue
        if prev is not None:
            out.append(_space(prev, tok))
        out.append(tok.value)
        prev = tok
    return "".join(out)


def _fits(depth: int, code: str) -> bool:
    return len(INDENT) * depth + len(code) <= WIDTH


def _has_comment(items: list) -> bool:
    return any(isinstance(t, Comment) for t in items)


def _groups(items: list) -> list[tuple[int, int]]:
    """(opener, closer) indices of the top-level bracket groups."""
    out, depth, start = [], 0, 0
    for k, t in enumerate(items):
        if not isinstance(t, Token):
            continue
        if t.type in ("LPAR", "LSQB"):
            if depth == 0:
                start = k
            depth += 1
        elif t.type in ("RPAR", "RSQB"):
            depth -= 1
            if depth == 0:
                out.append((start, k))
    return out


def _attach(outs: list[Out], comment: str | None) -> None:
    if comment is None:
        return
    if outs and outs[-1].comment is None and outs[-1].code:
        outs[-1].comment = comment
    else:
        outs.append(Out(outs[-1].depth if outs else 0, "", comment))


@dataclass
class _Elem:
    items: list
    leading: list[str]  # own-line comments before it
    trailing: str | None = None
    after: list[str] = field(default_factory=list)  # own-line comments inside it or after it


def _elements(inner: list) -> tuple[list[_Elem], str | None, list[str]]:
    """A group's contents split at its top-level commas (each element keeps its comma), the
    comment after the opener, and own-line comments before the closer."""
    elems: list[_Elem] = []
    cur = _Elem([], [])
    head: str | None = None
    depth = 0
    for it in inner:
        if isinstance(it, Comment) and depth == 0:
            if it.own_line:
                (cur.after if cur.items else cur.leading).append(it.text)
                continue
            target = cur if cur.items else (elems[-1] if elems else None)
            if target is None:
                head = it.text
            elif target.trailing is None:
                target.trailing = it.text
            else:
                cur.leading.append(it.text)
            continue
        cur.items.append(it)
        if isinstance(it, Token):
            if it.type in ("LPAR", "LSQB"):
                depth += 1
            elif it.type in ("RPAR", "RSQB"):
                depth -= 1
            elif it.type == "COMMA" and depth == 0:
                elems.append(cur)
                cur = _Elem([], [])
    if any(isinstance(t, Token) for t in cur.items):
        elems.append(cur)
        cur = _Elem([], [])
    last = elems[-1].items if elems else []
    if last and isinstance(last[-1], Token) and last[-1].type == "COMMA":
        last.pop()  # every element on a line of its own ends with its comma, but the last
    return elems, head, cur.leading


class _Layout:
    def body(self, body: Body, depth: int) -> list[Out]:
        outs: list[Out] = []
        for k, line in enumerate(body.lines):
            if line.blank_before and k > 0:
                outs.append(_BLANK)
            if not line.stmts:
                outs.append(Out(depth, "", line.comment))
                continue
            lines = self.line(line, depth)
            _attach(lines, line.comment)
            outs += lines
        return outs

    def line(self, line: Line, depth: int) -> list[Out]:
        parts = [self.stmt(s, depth) for s in line.stmts]
        if len(parts) == 1:
            return parts[0]
        if all(len(p) == 1 and p[0].comment is None for p in parts):
            joined = "; ".join(p[0].code for p in parts)
            if _fits(depth, joined):
                return [Out(depth, joined)]
        return [o for p in parts for o in p]

    def stmt(self, stmt: Stmt, depth: int) -> list[Out]:
        items = [_inline_or_empty(p) for p in stmt.parts]
        if not any(isinstance(p, Body) for p in items):
            outs = self.layout(items, depth)
            if len(outs) == 1 and outs[0].comment is None and items and items[0].type == "EXPECT":
                outs[0].expect = _expect_split(items)
            return outs
        if all(_inlinable(p) for p in stmt.parts if isinstance(p, Body)):
            flat = _join([_inline_token(p) if isinstance(p, Body) else p for p in stmt.parts])
            if _fits(depth, flat) and not _has_comment(stmt.parts):
                return [Out(depth, flat)]
        outs: list[Out] = []
        seg: list = []
        for p in items:
            if isinstance(p, Body):
                outs += self.layout([*seg, Token("LBRACE", "{")], depth)
                _attach(outs, p.head_comment)
                if p.inline:  # a one-line body opened: a statement a line
                    p = Body([Line([st]) for line in p.lines for st in line.stmts], inline=False)
                outs += self.body(p, depth + 1)
                seg = [Token("RBRACE", "}")]
            else:
                seg.append(p)
        return outs + self.layout(seg, depth)

    def layout(self, items: list, depth: int) -> list[Out]:
        """Tokens (and comments inside brackets) of one statement, wrapped to WIDTH."""
        if not _has_comment(items):
            flat = _join(items)
            if _fits(depth, flat):
                return [Out(depth, flat)]
        groups = [g for g in _groups(items) if g[1] > g[0] + 1]  # `f()` is never broken
        if not groups:
            return [Out(depth, _join(items))]
        commented = [g for g in groups if _has_comment(items[g[0] : g[1]])]
        if commented:
            o, c = commented[0]
        else:
            fitting = [g for g in groups if _fits(depth, _join(items[: g[0] + 1]))]
            o, c = fitting[-1] if fitting else groups[0]
        outs = [Out(depth, _join(items[: o + 1]))]
        inner = items[o + 1 : c]
        if not _has_comment(inner) and _fits(depth + 1, _join(_untrailed(inner))):
            if inner:
                outs.append(Out(depth + 1, _join(_untrailed(inner))))
        else:
            elems, head, tail = _elements(inner)
            _attach(outs, head)
            for elem in elems:
                outs += [Out(depth + 1, "", text) for text in elem.leading]
                lines = self.layout(elem.items, depth + 1)
                _attach(lines, elem.trailing)
                outs += lines + [Out(depth + 1, "", text) for text in elem.after]
            outs += [Out(depth + 1, "", text) for text in tail]
        rest = self.layout(items[c:], depth)
        return outs + rest


def _untrailed(items: list) -> list:
    """Without a trailing comma."""
    if items and isinstance(items[-1], Token) and items[-1].type == "COMMA":
        return items[:-1]
    return items


def _inlinable(body: Body) -> bool:
    return body.inline and all(
        not _has_comment(s.parts) and all(_inlinable(p) for p in s.parts if isinstance(p, Body))
        for line in body.lines
        for s in line.stmts
    )


def _inline_text(body: Body) -> str:
    stmts = [s for line in body.lines for s in line.stmts]
    if not stmts:
        return "{ }"
    texts = [_join([_inline_token(p) if isinstance(p, Body) else p for p in s.parts]) for s in stmts]
    return "{ " + "; ".join(texts) + " }"


def _inline_token(body: Body) -> Token:
    return Token("BODY", _inline_text(body))


def _inline_or_empty(part):
    """An empty body without comments is the token `{ }` wherever it stands."""
    if isinstance(part, Body) and not part.lines and part.head_comment is None:
        return Token("BODY", "{ }")
    return part


def _expect_split(items: list) -> tuple[str, str] | None:
    """`expect LHS OP RHS` at its comparison, when it has one at the top and nothing looser."""
    depth, at = 0, None
    for k, t in enumerate(items):
        if t.type in ("LPAR", "LSQB"):
            depth += 1
        elif t.type in ("RPAR", "RSQB"):
            depth -= 1
        elif depth == 0 and t.type in _NOT_ALIGNED:
            return None
        elif depth == 0 and t.type == "COMP_OP":
            if at is not None:
                return None
            at = k
    if at is None:
        return None
    return _join(items[:at]), _join(items[at:])


def _emit(outs: list[Out]) -> str:
    _align_expects(outs)
    _align_comments(outs)
    lines = []
    for o in outs:
        if o is _BLANK:
            lines.append("")
            continue
        text = INDENT * o.depth + o.code
        if o.comment is not None:
            text = text.ljust(o.comment_col) + o.comment if o.code else INDENT * o.depth + o.comment
        lines.append(text.rstrip())
    return "\n".join(lines) + "\n" if lines else ""


def _runs(outs: list[Out], pred) -> list[list[Out]]:
    """Runs of consecutive lines at one indentation that satisfy pred."""
    runs: list[list[Out]] = []
    for o in outs:
        if o is _BLANK or not pred(o):
            runs.append([])
        elif runs and runs[-1] and runs[-1][-1].depth == o.depth:
            runs[-1].append(o)
        else:
            runs.append([o])
    return [r for r in runs if r]


def _trailing(o: Out) -> bool:
    return bool(o.code) and o.comment is not None


def _align_expects(outs: list[Out]) -> None:
    for run in _runs(outs, lambda o: o.expect is not None):
        width = max(len(o.expect[0]) for o in run)
        for o in run:
            lhs, rest = o.expect
            o.code = lhs.ljust(width) + " " + rest


def _align_comments(outs: list[Out]) -> None:
    for run in _runs(outs, _trailing):
        col = max(len(INDENT * o.depth + o.code) + 2 for o in run)
        for o in run:
            o.comment_col = col
