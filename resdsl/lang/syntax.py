"""Typed syntax tree of a spec file; every node carries its source span."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from functools import cache

from resdsl.diagnostics import Span
from resdsl.lang.expr import (  # noqa: F401 - expressions are part of the syntax tree
    Arg,
    BinOp,
    Bool,
    Call,
    Cond,
    Expr,
    ListExpr,
    Literal,
    Name,
    Number,
    SizeLit,
    String,
    Unary,
)

# ---------------------------------------------------------------- statements


@dataclass
class Stmt:
    span: Span


@dataclass
class OpStmt(Stmt):
    """`conv 3x3, 64, stride: 2` in a body, or a setting such as `classes 10`."""

    name: str
    args: list[Arg]
    name_span: Span


@dataclass
class InvokeStmt(Stmt):
    """`basic(64, stride: 2)`: a block used inside a body."""

    call: Call


@dataclass
class SectionStmt(Stmt):
    """`residual { ... }`, `residual(shortcut: C) { ... }`, `stem { ... }`."""

    name: str
    args: list[Arg]
    body: list[Stmt]
    name_span: Span


@dataclass
class StageItem:
    call: Call
    count: Expr | None
    span: Span


@dataclass
class StageStmt(Stmt):
    name: str
    args: list[Arg]
    items: list[StageItem]
    name_span: Span


@dataclass
class ExpectStmt(Stmt):
    expr: Expr


@dataclass
class IfStmt(Stmt):
    """`if t != 1 { ... } else { ... }` in a block, stem or head (`else if` nests another IfStmt)."""

    test: Expr
    then: list[Stmt]
    orelse: list[Stmt]


# ---------------------------------------------------------------- top level


@dataclass
class Import:
    path: str
    span: Span


@dataclass
class ParamDef:
    name: str
    value: Expr
    span: Span


@dataclass
class Formal:
    name: str
    default: Expr | None
    span: Span


@dataclass
class BlockDef:
    name: str
    formals: list[Formal]
    body: list[Stmt]
    span: Span
    module: str = ""  # path of the file that defines it


@dataclass
class NetworkDef:
    name: str
    body: list[Stmt]
    span: Span


@dataclass
class TrainDef:
    body: list[Stmt]
    span: Span


@dataclass
class Module:
    """One parsed file."""

    path: str
    imports: list[Import] = field(default_factory=list)
    params: list[ParamDef] = field(default_factory=list)
    blocks: list[BlockDef] = field(default_factory=list)
    networks: list[NetworkDef] = field(default_factory=list)
    trains: list[TrainDef] = field(default_factory=list)


@cache
def node_fields(cls: type) -> tuple[str, ...]:
    """The fields of a syntax node class that hold other nodes or values, its span left out (a walk over
    the tree reads these; dataclasses.fields costs more than the walk itself)."""
    return tuple(f.name for f in fields(cls) if f.name != "span")
