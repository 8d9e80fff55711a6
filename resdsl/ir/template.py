"""Block templates: each block definition bound once, the one source of what its body does.

A template is a block's body with every op's arguments matched to the op catalogue and
completed with its defaults, and the spec's params folded in as constants: what is left
symbolic are the block's own arguments (`Name` nodes of its formals). Lowering
(resdsl.ir.expand) evaluates a template at every use of the block to build the concrete op
graph; the PyTorch back end writes one class per template. Neither re-reads the syntax tree.

A statement that cannot be lowered (an unknown op, a misplaced section) becomes an `Invalid`
item holding its errors, reported at every use of the block, as if lowered each time.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from resdsl.diagnostics import Span, SpecError
from resdsl.ir.ops import OpKind
from resdsl.lang.expr import Call, Expr

if TYPE_CHECKING:  # opaque to back ends: only lowering evaluates bindings
    from resdsl.lang.signatures import Binding


@dataclass
class OpItem:
    """`conv 3x3, width, stride: stride`: one op, its arguments bound."""

    op: str  # the catalogue's name: conv, bn, relu, maxpool, avgpool, fc, dropout
    kind: OpKind  # GLOBAL_AVGPOOL for `avgpool global`
    args: dict[str, Expr]  # every argument: as written (params folded) or its default, as an expression
    binding: Binding  # for lowering: evaluation, checks and their messages
    span: Span
    name_span: Span
    derived: tuple[str, ...] = ()  # arguments not given whose default follows from the kernel (a conv's pad)
    module_name: str | None = None  # `name: "norm1"`: the module's attribute or path (resdsl.ir.modnames)
    module_name_span: Span | None = None  # where that name is written
    attr: str | None = None  # in a block: its attribute (or path) in the block's class (resdsl.ir.naming)
    reads: dict[str, tuple[str, ...]] = field(default_factory=dict)  # argument (keyword; "" positional) -> params read
    key: str = ""  # unique in the program (`basic:3`): the origin of the ops it makes (Op.origin)


@dataclass
class CallItem:
    """`basic(64, stride: 2)` inside a block: another block used here."""

    block: str
    call: Call  # its arguments with the spec's params folded in
    key: str = ""  # the origin of the uses it makes (BlockInstance.origin)
    attr: str | None = None  # its attribute in the calling block's class (resdsl.ir.paths)
    module_name: str | None = None  # `se(name: "block.2")`: an attribute or a container's position
    module_name_span: Span | None = None


@dataclass
class ResidualItem:
    """`residual { }` (kind add), `dense { }` (kind concat) or `gate { }` (kind mul); a residual may
    open with `preact { }`."""

    kind: str  # "add" | "concat" | "mul"
    options: Binding  # shortcut: and survival: of a residual
    preact: list[Item] | None
    body: list[Item]
    span: Span
    name_span: Span
    preact_error: SpecError | None = None  # `preact` opening a dense section
    shortcut: list[Item] | None = None  # `shortcut { avgpool 2x2, ceil: true; conv 1x1, w; bn }` inside
    shortcut_span: Span | None = None
    key: str = ""  # the origin of its shortcut and merge ops
    shortcut_attr: str | None = None  # the Sequential of a written shortcut's ops (resdsl.ir.paths)


@dataclass
class IfItem:
    """`if test { then } else { orelse }` whose test uses the block's arguments (a test on the spec's
    params alone is decided when the template is built: only its branch is kept)."""

    test: Expr
    then: list[Item]
    orelse: list[Item]
    span: Span


@dataclass
class Invalid:
    """A statement that cannot be lowered: its errors, reported at every use."""

    errors: list[SpecError]


Item = OpItem | CallItem | ResidualItem | IfItem | Invalid


@dataclass
class Formal:
    name: str
    default: Expr | None  # params folded; may use earlier formals
    span: Span


@dataclass
class BlockTemplate:
    name: str
    formals: list[Formal]
    body: list[Item]
    span: Span
    module: str  # the file that defines it, as displayed
    header: str  # its first line as written: `block basic(width, stride = 1) {`
    signature: str = ""  # its name and formals as written, for messages: `basic(width, stride = 1)`
    constant_defaults: dict[str, Any] = field(default_factory=dict)  # formal -> value, where the default uses nothing
    reads_input: bool = False  # its body or defaults read `in.channels` (lowering infers the input's shape)
    params_read: frozenset[str] = frozenset()  # the spec's params folded into it (its body and defaults)
    max_ops: int | None = None  # at most how many ops a use emits (Templates.max_ops), once counted

    def formal(self, name: str) -> Formal | None:
        return next((f for f in self.formals if f.name == name), None)


def walk(items: list[Item]):
    """Every item, depth first, sections before their contents."""
    for item in items:
        yield item
        if isinstance(item, ResidualItem):
            yield from walk(item.preact or [])
            yield from walk(item.body)
            yield from walk(item.shortcut or [])
        elif isinstance(item, IfItem):
            yield from walk(item.then)
            yield from walk(item.orelse)


def op_bound(items: list[Item], callee: Callable[[str], int], limit: int) -> int:
    """At most how many ops `items` emit, whatever the arguments: both branches of an `if` count, a
    section its preact, shortcut path and two more (shortcut and merge), a call its `callee` bound.
    Counting stops once past `limit` (a call would only multiply it further)."""
    total = 0
    for item in items:
        if isinstance(item, OpItem):
            total += 1
        elif isinstance(item, CallItem):
            total += callee(item.block)
        elif isinstance(item, ResidualItem):
            parts = (item.preact or [], item.body, item.shortcut or [])
            total += sum(op_bound(part, callee, limit) for part in parts) + 2
        elif isinstance(item, IfItem):
            total += op_bound(item.then, callee, limit) + op_bound(item.orelse, callee, limit)
        if total > limit:
            break
    return total
