"""Expressions: the spec's arithmetic over numbers, sizes, names and calls, with source spans.

The parser builds them (resdsl.lang.syntax re-exports them); block templates (resdsl.ir.template)
keep them, with the spec's params folded into `Literal`s, as the symbolic arguments of a block's ops.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from resdsl.diagnostics import Span


@dataclass
class Expr:
    span: Span


@dataclass
class Number(Expr):
    value: int | float
    text: str


@dataclass
class String(Expr):
    value: str


@dataclass
class Bool(Expr):
    value: bool


@dataclass
class SizeLit(Expr):
    dims: tuple[int, ...]


@dataclass
class Name(Expr):
    id: str


@dataclass
class ListExpr(Expr):
    items: list[Expr]


@dataclass
class Arg:
    name: str | None  # None for a positional argument
    value: Expr
    span: Span


@dataclass
class Call(Expr):
    name: str
    args: list[Arg]
    name_span: Span


@dataclass
class BinOp(Expr):
    op: str  # + - * / // % ** == != < <= > >= ~= and or
    left: Expr
    right: Expr


@dataclass
class Unary(Expr):
    op: str  # - not
    operand: Expr


@dataclass
class Cond(Expr):
    test: Expr
    then: Expr
    orelse: Expr


@dataclass
class Literal(Expr):
    """A value folded in from the spec (a `param`, or a sub-expression that uses no block argument)."""

    value: Any
    param: str | None = None  # the param it was folded from, if it is one


def names_in(e: Expr) -> list[str]:
    """Every name an expression reads, in order."""
    if isinstance(e, Name):
        return [e.id]
    if isinstance(e, BinOp):
        return names_in(e.left) + names_in(e.right)
    if isinstance(e, Unary):
        return names_in(e.operand)
    if isinstance(e, Cond):
        return names_in(e.test) + names_in(e.then) + names_in(e.orelse)
    if isinstance(e, Call):
        return [n for a in e.args for n in names_in(a.value)]
    if isinstance(e, ListExpr):
        return [n for i in e.items for n in names_in(i)]
    return []
