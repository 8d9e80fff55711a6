"""The parser's rule callbacks: syntax-tree nodes (resdsl.lang.syntax) built while Lark's LALR parser
reduces each rule, so no parse tree is built and walked again.

Lark passes a callback every child of its rule, its tokens included (`keep_all_tokens`), and no
positions: a node's span runs from the start of its first child to the end of its last, as Lark's
`propagate_positions` would give it. A parenthesised expression (and `+x`) is the inner node, whose
span stays its own, while its parent reaches over the brackets. `_Extents` holds, per node, that outer
extent and the node's height in Lark's parse tree, which the nesting guard (MAX_DEPTH) reads.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from lark import Token

from resdsl.diagnostics import SourceFile, Span, SpecError
from resdsl.lang import syntax

# The grammar's keywords. The parser reads them as names where no keyword can stand, so nothing
# stops `param true = 1`; but a param, block, argument, network or stage so named could never be
# used (`true` is then the boolean), so defining one is an error.
KEYWORDS = (
    "import", "param", "block", "network", "train", "stage", "expect",
    "if", "else", "and", "or", "not", "true", "false",
)  # fmt: skip

INPUT_NAMES = ("in.channels",)  # what a block may read of its input tensor

MAX_DEPTH = 100  # nesting of the parse tree; later stages recurse over it

_SUFFIX = {"K": 10**3, "M": 10**6, "G": 10**9}
_KIND = {
    syntax.ParamDef: "param",
    syntax.BlockDef: "block",
    syntax.NetworkDef: "network",
    syntax.TrainDef: "train section",
}
MAX_DIGITS = 40  # far past any value a spec may hold (and past Python's int-from-text limit)

# id(node) -> (height, line, col, end_line, end_col): the node's height in Lark's tree and its outer extent
_Extents = dict[int, tuple[int, int, int, int, int]]


def parse_number(text: str) -> int | float:
    scale = 1
    if text[-1] in _SUFFIX:
        scale, text = _SUFFIX[text[-1]], text[:-1]
    if "." in text or "e" in text or "E" in text:
        value = float(text) * scale
        return int(value) if scale > 1 and value.is_integer() else value
    if len(text) > MAX_DIGITS:
        return math.inf
    return int(text) * scale


def _span(source: SourceFile, line: int, col: int, end_line: int, end_col: int) -> Span:
    """Span(...) as its frozen dataclass __init__ makes it (the same fields, in order), without its five
    object.__setattr__ calls: a large spec makes a quarter of a million."""
    span = _new(Span)
    span.__dict__.update(source=source, line=line, col=col, end_line=end_line, end_col=end_col)
    return span


_new = object.__new__


def _rule(build: Callable[[SyntaxBuilder, Span, list], Any]) -> Callable[[SyntaxBuilder, list], Any]:
    """A rule's callback: the span from its children, the node built, its extent and height noted."""

    def callback(self: SyntaxBuilder, children: list) -> Any:
        extents = self.extents
        first, last = children[0], children[-1]
        if type(first) is Token:  # noqa: E721 - Lark's tokens are Tokens; the nodes are never str
            line, col = first.line, first.column
        else:
            _, line, col, _, _ = extents[id(first)]
        if type(last) is Token:  # noqa: E721
            end_line, end_col = last.end_line, last.end_column
        else:
            _, _, _, end_line, end_col = extents[id(last)]
        height = 0
        for child in children:
            if type(child) is not Token:  # noqa: E721
                below = extents[id(child)][0]
                if below > height:
                    height = below
        node = build(self, _span(self.source, line, col, end_line, end_col), children)
        extents[id(node)] = (height + 1, line, col, end_line, end_col)
        return node

    callback.__name__ = build.__name__
    return callback


def _wrapped(self: SyntaxBuilder, children: list) -> Any:
    """`( expr )` and `+ expr`: the inner node itself; its parent's span reaches over the brackets."""
    inner = children[1] if len(children) == 3 else children[-1]
    first, last = children[0], children[-1]
    height, *_ = self.extents[id(inner)]
    if isinstance(last, Token):
        end = (last.end_line, last.end_column)
    else:
        end = self.extents[id(last)][3:]
    self.extents[id(inner)] = (height, first.line, first.column, *end)
    return inner


def _nodes(children: list) -> list:
    return [c for c in children if not isinstance(c, Token)]


def _fixed_binop(op: str) -> Callable[[SyntaxBuilder, list], Any]:
    """The rule of an operator the grammar writes as a keyword or an anonymous token (`*`, `and`)."""

    @_rule
    def build(self: SyntaxBuilder, span: Span, c: list) -> syntax.BinOp:
        return syntax.BinOp(span, op, c[0], c[2])

    return build


class SyntaxBuilder:
    """The callbacks Lark calls as it reduces each rule (one method per rule of the grammar).
    `reset` before each parse; `errors` then holds the problems found (keywords used as names)."""

    def __init__(self) -> None:
        self.reset(SourceFile("<string>", ""))

    def reset(self, source: SourceFile) -> None:
        self.source = source
        self.errors: list[SpecError] = []
        self.extents: _Extents = {}

    def _defines(self, tok: Token, what: str) -> str:
        """A name a definition gives: not a keyword."""
        name = str(tok)
        if name in KEYWORDS:
            self.errors.append(
                SpecError(f"`{name}` is a keyword; it cannot name a {what}", self._tspan(tok), "choose another name")
            )
        return name

    def _tspan(self, tok: Token) -> Span:
        return _span(self.source, tok.line, tok.column, tok.end_line, tok.end_column)

    # top level
    def start(self, children: list) -> syntax.Module:
        module = syntax.Module(self.source.path)
        items = _nodes(children)
        self._check_depth(items)
        for item in items:
            if isinstance(item, syntax.Import):
                module.imports.append(item)
            elif isinstance(item, syntax.ParamDef):
                module.params.append(item)
            elif isinstance(item, syntax.BlockDef):
                item.module = self.source.path
                module.blocks.append(item)
            elif isinstance(item, syntax.NetworkDef):
                module.networks.append(item)
            elif isinstance(item, syntax.TrainDef):
                module.trains.append(item)
        self.extents = {}
        return module

    def _check_depth(self, items: list) -> None:
        """Refuse absurdly nested text (`((((...))))`, `- - - - 1`, `1+1+...+1`) before any recursive
        pass sees it: without this Python's recursion limit would end the run with a traceback. The
        last statement too deep is named, as a walk of Lark's tree from the end found it."""
        for item in reversed(items):
            height, line, col, _, _ = self.extents[id(item)]
            if height + 1 > MAX_DEPTH:
                raise SpecError(
                    f"this {_KIND.get(type(item), 'statement')} nests more than {MAX_DEPTH} levels deep",
                    Span(self.source, line, col, line, len(self.source.line(line)) + 1),
                    "split the expression with params, or the block into smaller blocks",
                )

    @_rule
    def import_stmt(self, span: Span, c: list) -> syntax.Import:
        return syntax.Import(c[1][1:-1], span)

    @_rule
    def param_stmt(self, span: Span, c: list) -> syntax.ParamDef:
        return syntax.ParamDef(self._defines(c[1], "param"), c[3], span)

    @_rule
    def block_def(self, span: Span, c: list) -> syntax.BlockDef:  # block NAME body | block NAME ( [formals] ) body
        formals = c[3] if len(c) == 6 else []
        return syntax.BlockDef(self._defines(c[1], "block"), formals, c[-1], span)

    @_rule
    def formals(self, span: Span, c: list) -> list:
        return _nodes(c)

    @_rule
    def formal(self, span: Span, c: list) -> syntax.Formal:
        return syntax.Formal(self._defines(c[0], "block argument"), c[2] if len(c) > 1 else None, span)

    @_rule
    def network_def(self, span: Span, c: list) -> syntax.NetworkDef:
        return syntax.NetworkDef(self._defines(c[1], "network"), c[2], span)

    @_rule
    def train_def(self, span: Span, c: list) -> syntax.TrainDef:
        return syntax.TrainDef(c[1], span)

    @_rule
    def body(self, span: Span, c: list) -> list:
        return _nodes(c)

    # statements
    @_rule
    def op_stmt(self, span: Span, c: list) -> syntax.OpStmt:
        return syntax.OpStmt(span, str(c[0]), c[1] if len(c) > 1 else [], self._tspan(c[0]))

    @_rule
    def invoke_stmt(self, span: Span, c: list) -> syntax.InvokeStmt:
        return syntax.InvokeStmt(span, c[0])

    @_rule
    def section_stmt(self, span: Span, c: list) -> syntax.SectionStmt:
        head, body = c
        if isinstance(head, syntax.Call):
            return syntax.SectionStmt(span, head.name, head.args, body, head.name_span)
        return syntax.SectionStmt(span, str(head), [], body, self._tspan(head))

    @_rule
    def stage_stmt(self, span: Span, c: list) -> syntax.StageStmt:  # stage NAME [( [args] )] = item, item, ...
        args = next((x for x in c if isinstance(x, list)), [])
        items = [x for x in c if isinstance(x, syntax.StageItem)]
        return syntax.StageStmt(span, self._defines(c[1], "stage"), args, items, self._tspan(c[1]))

    @_rule
    def stage_item(self, span: Span, c: list) -> syntax.StageItem:
        head = c[0]
        if isinstance(head, Token):
            name_span = self._tspan(head)
            head = syntax.Call(name_span, str(head), [], name_span)
        return syntax.StageItem(head, c[2] if len(c) > 1 else None, span)

    @_rule
    def expect_stmt(self, span: Span, c: list) -> syntax.ExpectStmt:
        return syntax.ExpectStmt(span, c[1])

    @_rule
    def if_stmt(self, span: Span, c: list) -> syntax.IfStmt:  # if expr body [else (body | if_stmt)]
        orelse = c[4] if len(c) > 3 else []
        return syntax.IfStmt(span, c[1], c[2], orelse if isinstance(orelse, list) else [orelse])

    # arguments
    @_rule
    def args(self, span: Span, c: list) -> list:
        return _nodes(c)

    @_rule
    def positional(self, span: Span, c: list) -> syntax.Arg:
        return syntax.Arg(None, c[0], span)

    @_rule
    def keyword(self, span: Span, c: list) -> syntax.Arg:
        return syntax.Arg(str(c[0]), c[2], span)

    # expressions
    @_rule
    def number(self, span: Span, c: list) -> syntax.Number:
        text = str(c[0])
        return syntax.Number(span, parse_number(text), text)

    @_rule
    def size(self, span: Span, c: list) -> syntax.SizeLit:
        dims = str(c[0]).split("x")
        if any(len(d) > 4000 for d in dims):  # int() refuses text past 4,300 digits; later checks see the rest
            digits = max(map(len, dims))
            hint = "sizes are small whole numbers, e.g. `3x3`, `3x224x224`"
            self.errors.append(SpecError(f"this size has a dimension of {digits:,} digits", span, hint))
            return syntax.SizeLit(span, (0,) * len(dims))
        return syntax.SizeLit(span, tuple(int(d) for d in dims))

    @_rule
    def string(self, span: Span, c: list) -> syntax.String:
        return syntax.String(span, str(c[0])[1:-1])

    @_rule
    def true(self, span: Span, c: list) -> syntax.Bool:
        return syntax.Bool(span, True)

    @_rule
    def false(self, span: Span, c: list) -> syntax.Bool:
        return syntax.Bool(span, False)

    @_rule
    def name(self, span: Span, c: list) -> syntax.Name:
        return syntax.Name(span, str(c[0]))

    @_rule
    def attribute(self, span: Span, c: list) -> syntax.Name:
        """`in.channels`, a name of its own (bound by lowering at each use of a block)."""
        obj, field = str(c[0]), str(c[2])
        if f"{obj}.{field}" not in INPUT_NAMES:
            self.errors.append(
                SpecError(
                    f"`{obj}.{field}` is not something a spec can read",
                    span,
                    "inside a block, `in.channels` is the number of channels of the block's input",
                )
            )
        return syntax.Name(span, f"{obj}.{field}")

    @_rule
    def list(self, span: Span, c: list) -> syntax.ListExpr:
        return syntax.ListExpr(span, _nodes(c))

    @_rule
    def call(self, span: Span, c: list) -> syntax.Call:  # CALLNAME ( [args] )
        return syntax.Call(span, str(c[0]), c[2] if len(c) == 4 else [], self._tspan(c[0]))

    @_rule
    def binop(self, span: Span, c: list) -> syntax.BinOp:
        return syntax.BinOp(span, str(c[1]), c[0], c[2])

    compare = binop

    mul = _fixed_binop("*")
    pow = _fixed_binop("**")
    or_op = _fixed_binop("or")
    and_op = _fixed_binop("and")

    @_rule
    def not_op(self, span: Span, c: list) -> syntax.Unary:
        return syntax.Unary(span, "not", c[1])

    @_rule
    def neg(self, span: Span, c: list) -> syntax.Unary:
        return syntax.Unary(span, "-", c[1])

    @_rule
    def cond(self, span: Span, c: list) -> syntax.Cond:  # then if test else orelse
        return syntax.Cond(span, c[2], c[0], c[4])

    atom = _wrapped  # ( expr )
    unary = _wrapped  # + expr
