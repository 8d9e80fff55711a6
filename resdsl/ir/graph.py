"""The graph IR: a networkx DiGraph of typed ops, plus the network/stage/block hierarchy.

Every node holds one `Op` under the key "op". Edges carry the input `port` (0, 1) of their
target. The passes (resdsl.ir.passes) fill in the typed result fields of each `Op`: in_shapes,
shape and shortcut (shapes), params, flops, acts.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any

import networkx as nx

from resdsl.diagnostics import Span
from resdsl.ir.ops import ACTIVATIONS, COUNTED_ACTS, WEIGHTED, OpKind  # noqa: F401 (the kinds live in ir/ops.py)

if TYPE_CHECKING:
    from resdsl.ir.template import BlockTemplate


class ShortcutOption(Enum):
    A = "A"  # identity; stride-subsample and zero-pad channels where the shape grows
    B = "B"  # identity; 1x1 projection (+BN) where the shape changes
    C = "C"  # 1x1 projection (+BN) on every shortcut
    NONE = "none"  # no shortcut: the plain counterpart
    IDENTITY = "identity"  # identity only; a shape change is an error
    IDENTITY_OR_NONE = "identity_or_none"  # identity where the body keeps the shape, else no shortcut (MobileNetV2)


class Role(Enum):
    MAIN = "main"
    SHORTCUT = "shortcut"


@dataclass(frozen=True)
class Scope:
    """Where an op sits: its section (stem, a stage, head) and top-level block instance."""

    section: str
    section_kind: str  # "stem" | "stage" | "head"
    block: int | None = None  # index into Section.blocks


@dataclass(frozen=True)
class ShortcutPlan:
    """How a SHORTCUT node maps x to the body's shape."""

    mode: str  # "identity" | "pad" (option A) | "projection" (1x1 conv, + BN unless projection conv)
    stride: int
    in_channels: int
    out_channels: int
    bn: bool


@dataclass
class Op:
    id: int
    kind: OpKind
    attrs: dict[str, Any]
    span: Span
    scope: Scope
    role: Role = Role.MAIN
    residual: int | None = None  # Residual.id of the innermost residual this op belongs to
    module_name: str | None = None  # `name:`: its attribute (in a block) or path (stem, head); ir/modnames.py
    module_name_span: Span | None = None  # where that name is written
    origin: str = ""  # the key of the template item that made it (OpItem.key; a section's ResidualItem.key)
    path: str | None = None  # ir/naming.decide_paths: its module's path in the network (`layer2.0.bn1`)
    # Written by the passes (resdsl.ir.passes), each by one pass:
    in_shapes: list[tuple[int, ...]] | None = None  # infer_shapes: the input shapes, by port
    shape: tuple[int, ...] | None = None  # infer_shapes: the output shape, (C, H, W) or (N,)
    shortcut: ShortcutPlan | None = None  # infer_shapes, on SHORTCUT nodes: how x maps to the body's shape
    params: int = 0  # count_params: trainable elements
    flops: int = 0  # count_flops: multiply-accumulates (the paper's FLOPs)
    acts: int = 0  # count_acts: output elements for one image, where pycls counts them


@dataclass
class Residual:
    """A `residual { }` (kind add) or `dense { }` (kind concat) section, lowered."""

    id: int
    kind: str  # "add" (residual) | "concat" (dense) | "mul" (gate)
    option: ShortcutOption
    projection_bn: bool
    input: int  # node whose output enters the residual
    preact: list[int]
    body: list[int]
    shortcut: int | None  # SHORTCUT node (None for option none, for concat, and for a written path)
    merge: int | None  # ADD / CONCAT / MUL node (None for option none)
    survival: float
    span: Span
    path: list[int] | None = None  # the ops of a `shortcut { }` written by hand (empty: the identity)
    by_shape: bool = False  # `identity_or_none`: `option` (identity or none) followed from the body's shape


@dataclass
class BlockInstance:
    """One use of a block definition: `basic(128, stride: 2)`, with its evaluated arguments."""

    definition: str
    args: dict[str, Any]
    call_span: Span
    def_span: Span
    index: int
    nodes: list[int] = field(default_factory=list)
    children: list[BlockInstance] = field(default_factory=list)
    shortcut: ShortcutOption | None = None  # a `shortcut:` given at the call
    defaulted: set[str] = field(default_factory=set)  # arguments that took the block's default
    origin: str = ""  # inside a block: the key of the CallItem that made it ("" in a network section)
    path: str | None = None  # ir/naming.decide_paths: its module's path in the network (`layer2.0`)


@dataclass
class Section:
    name: str
    kind: str  # "stem" | "stage" | "head"
    span: Span
    description: str  # "basic(16) x n" as written
    blocks: list[BlockInstance] = field(default_factory=list)
    nodes: list[int] = field(default_factory=list)
    shortcut: ShortcutOption | None = None  # a stage-level override
    module_name: str | None = None  # `name:` of a stage, stem or head: a path pattern (ir/modnames.py)
    path: str | None = None  # ir/paths.py: a stage's own container in the default layout (`layer2`)


@dataclass
class Expectation:
    text: str
    span: Span
    check: Any  # callable(measures: dict) -> tuple[bool, str]


@dataclass
class SectionFigures:
    """A stem, stage or head, as the report's table shows it (resdsl.ir.passes.summarize)."""

    name: str
    kind: str  # "stem" | "stage" | "head"
    output: list[int] | None
    blocks: int
    description: str
    params: int
    flops: int
    layers: int
    activations: int  # pycls's acts: output elements of convs, fcs, projections and windowed pools


@dataclass
class Totals:
    """The network's figures (resdsl.ir.passes.summarize)."""

    params: int = 0
    flops: int = 0
    layers: int = 0  # the paper's depth: conv and fc layers
    ops: int = 0
    expected_flops: int = 0  # training FLOPs under stochastic depth
    activations: int = 0  # pycls's acts for one image (Op.acts summed)
    sections: list[SectionFigures] = field(default_factory=list)


@dataclass
class NetworkIR:
    name: str
    graph: nx.DiGraph
    input_node: int
    input_shape: tuple[int, ...]
    classes: int
    shortcut: ShortcutOption
    sections: list[Section]
    residuals: list[Residual]
    params: dict[str, Any]  # the spec's `param` values after overrides
    blocks: dict[str, BlockTemplate]  # block templates, in definition order (resdsl.ir.template)
    span: Span
    expectations: list[Expectation] = field(default_factory=list)
    recipe: Any = None  # resdsl.recipe.Recipe or None
    survival: tuple | None = None  # the `survival` rule: ("uniform", p) | ("linear", last) | ("span", first, last)
    survival_mode: str = "per_batch"  # per_batch (Huang et al.) | per_sample (torchvision's "row" mode)
    output_node: int = -1
    totals: Totals = field(default_factory=Totals)  # written by the passes
    files: list[Path] = field(default_factory=list)  # the files read to build it: the spec and its imports
    params_used: list[str] = field(default_factory=list)  # the params this network reads (std.rd's may go unread)

    def op(self, node: int) -> Op:
        return self.graph._node[node]["op"]  # networkx's node-attribute dict: `nodes[n]` builds a view per call

    @property
    def output_shape(self) -> tuple[int, ...]:
        """What the network returns per image: `classes` logits. A last op of shape Cx1x1 (NIN's
        `avgpool global` after a conv to `classes` channels) is flattened, as the generated module does."""
        return (self.classes,)

    def ops(self) -> Iterator[Op]:
        """Ops in creation order, which is a topological order."""
        for data in self.graph._node.values():
            yield data["op"]

    def inputs(self, node: int) -> list[int]:
        """Input nodes of `node`, by port."""
        return inputs_of(self.graph, node)

    def units(self) -> list[Residual]:
        """The residual units stochastic depth counts (additions), in network order."""
        return residual_units(self.residuals)

    def section(self, name: str) -> Section:
        return next(s for s in self.sections if s.name == name)

    def verify(self) -> None:
        """Internal invariants (a failure is a bug in resdsl, not in the spec)."""
        g = self.graph
        forward = all(src < dst for src, nbrs in g._succ.items() for dst in nbrs)  # then no cycle can close
        assert forward or nx.is_directed_acyclic_graph(g), "IR has a cycle"
        arity = {OpKind.INPUT: 0, OpKind.ADD: 2, OpKind.CONCAT: 2, OpKind.MUL: 2}
        pred, succ = g._pred, g._succ  # networkx's own dicts: in_degree(n) and out_degree(n) build views
        for op in self.ops():
            n_in = len(pred[op.id])
            if op.kind is OpKind.SHORTCUT:
                assert n_in in (1, 2), f"shortcut %{op.id} has {n_in} inputs"
            else:
                assert n_in == arity.get(op.kind, 1), f"%{op.id} {op.kind.value} has {n_in} inputs"
        sinks = [n for n in g.nodes if not succ[n]]
        assert sinks == [self.output_node], f"IR has outputs {sinks}"


def inputs_of(graph: nx.DiGraph, node: int) -> list[int]:
    """Input nodes of `node`, by port."""
    preds = graph._pred[node]  # networkx's own dict; `graph.pred[n]` wraps it in a view
    if len(preds) < 2:
        return list(preds)
    return sorted(preds, key=lambda src: preds[src]["port"])


def residual_units(residuals: list[Residual]) -> list[Residual]:
    return [r for r in residuals if r.kind == "add" and r.merge is not None]


def fmt_shape(shape: tuple[int, ...] | None) -> str:
    if shape is None:
        return "?"
    return "x".join(str(d) for d in shape)


def fmt_attrs(op: Op) -> str:
    parts = []
    for key, value in op.attrs.items():
        if isinstance(value, tuple):
            value = "x".join(str(v) for v in value)
        elif isinstance(value, Enum):
            value = value.value
        parts.append(f"{key}={value}")
    return ", ".join(parts)


def print_ir(ir: NetworkIR) -> str:
    """One line per op: `%id = kind[attrs](inputs) : shape  params flops acts  # scope @ file:line`."""
    lines = [
        f"network {ir.name}  input {fmt_shape(ir.input_shape)}  classes {ir.classes}  shortcut {ir.shortcut.value}"
    ]
    for op in ir.ops():
        args = ", ".join(f"%{i}" for i in ir.inputs(op.id))
        resolved = op.shortcut
        kind = op.kind.value + (f":{resolved.mode}" if resolved else "")
        where = op.scope.section + (f".{op.scope.block}" if op.scope.block is not None else "")
        figures = f"params={op.params:,} flops={op.flops:,} acts={op.acts:,}"
        role = " (shortcut)" if op.role is Role.SHORTCUT and op.kind is not OpKind.SHORTCUT else ""
        lines.append(
            f"%{op.id:<4} = {kind}[{fmt_attrs(op)}]({args}){role} : {fmt_shape(op.shape)}"
            f"  {figures}  # {where} @ {op.span}"
        )
    return "\n".join(lines)
