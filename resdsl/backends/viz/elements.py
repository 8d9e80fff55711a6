"""What every view draws with: the drawing context, op nodes, shape-labelled edges and shortcut edges."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import graphviz

from resdsl.backends.viz.labels import op_label, shortcut_detail, shortcut_source, shortcut_text
from resdsl.backends.viz.style import COLOURS, SHORTCUT_COLOUR
from resdsl.ir.graph import NetworkIR, Op, OpKind, Role, fmt_shape


@dataclass
class DrawCtx:
    """One network being drawn into a (sub)graph; `prefix` keeps node names unique side by side."""

    ir: NetworkIR
    prefix: str
    kinds: set[OpKind]
    shortcut_edges: bool = False
    sparse_labels: bool = False  # label only edges where the shape changes or a block ends

    def nid(self, node: int | str) -> str:
        return f"{self.prefix}n{node}" if isinstance(node, int) else f"{self.prefix}{node}"


def html_label(inner: str) -> str:
    return f"<{inner}>"


def edge(target: graphviz.Digraph, a: str, b: str, shape: tuple[int, ...] | None, **attrs: str) -> None:
    target.edge(a, b, label=f" {fmt_shape(shape)}" if shape is not None else None, **attrs)


def op_node(ctx: DrawCtx, target: graphviz.Digraph, op: Op) -> None:
    ctx.kinds.add(op.kind)
    group = ctx.nid("shortcut" if op.role is Role.SHORTCUT else "main")  # a written shortcut's ops beside the body
    attrs = {"fillcolor": COLOURS[op.kind], "id": ctx.nid(op.id), "tooltip": _tooltip(op), "group": group}
    if op.kind in (OpKind.ADD, OpKind.CONCAT, OpKind.MUL):
        label = {OpKind.ADD: "+", OpKind.CONCAT: "C", OpKind.MUL: "×"}[op.kind]
        r = ctx.ir.residuals[op.residual] if op.residual is not None else None
        if r is not None and r.survival < 1:
            label = f"{label}\np={r.survival:.2f}"
            each = " per sample, rescaled by 1/p in training" if ctx.ir.survival_mode == "per_sample" else ""
            attrs["tooltip"] += f"; stochastic depth: the residual body survives with p = {r.survival:.3f}{each}"
        target.node(ctx.nid(op.id), label, shape="circle", width="0.3", margin="0.02", fontsize="10", **attrs)
        return
    target.node(ctx.nid(op.id), op_label(op), **attrs)


def _tooltip(op: Op) -> str:
    figures = []
    if op.params:
        figures.append(f"{op.params:,} params")
    if op.flops:
        figures.append(f"{op.flops:,} FLOPs")
    return f"%{op.id} {op.kind.value} -> {fmt_shape(op.shape)}" + (f" ({', '.join(figures)})" if figures else "")


def _shortcut_edge(ctx: DrawCtx, target: graphviz.Digraph, op: Op, source: str) -> None:
    """The skip path as its own edge into the merge, labelled with its kind."""
    ctx.shortcut_edges = True
    merge = next(iter(ctx.ir.graph.successors(op.id)))
    label = shortcut_text(ctx.ir, op)
    detail = shortcut_detail(op)
    flat = detail.replace("\n", ",")
    width = "2.2" if op.shortcut.mode == "projection" else "1.4"
    target.edge(
        source,
        ctx.nid(merge),
        label=f" {label}" + (f"\n {detail}" if detail else ""),
        color=SHORTCUT_COLOUR,
        fontcolor=SHORTCUT_COLOUR,
        style="dashed" if op.shortcut.mode != "projection" else "solid",
        penwidth=width,
        id=ctx.nid(f"shortcut{op.id}"),
        tooltip=f"shortcut: {label}" + (f" ({flat})" if flat else ""),
    )


def _shape_changes(ir: NetworkIR, op: Op) -> bool:
    ins = op.in_shapes or []
    return op.kind is OpKind.INPUT or not ins or ins[0] != op.shape


def draw_ops(
    ctx: DrawCtx,
    target: graphviz.Digraph,
    edges: graphviz.Digraph,
    nodes: Iterable[int],
    inside: set[int],
    outside: dict[int, str],
) -> None:
    """Op nodes into `target`, their edges into `edges` (Graphviz puts an edge's ends into the
    subgraph that states it, so edges live in the enclosing graph); an input from outside
    `inside` comes from `outside[src]`."""
    ir = ctx.ir
    for n in nodes:
        op = ir.op(n)
        if op.kind is OpKind.SHORTCUT:
            src = shortcut_source(ir, op)
            _shortcut_edge(ctx, edges, op, ctx.nid(src) if src in inside else outside[src])
            continue
        op_node(ctx, target, op)
        for port, src in enumerate(ir.inputs(n)):
            src_op = ir.op(src)
            if src_op.kind is OpKind.SHORTCUT:
                continue  # drawn as the shortcut's own edge
            a = ctx.nid(src) if src in inside else outside[src]
            if op.kind in (OpKind.CONCAT, OpKind.MUL) and port == 0:
                ctx.shortcut_edges = True
                edges.edge(
                    a,
                    ctx.nid(n),
                    label=f" {'concatenation' if op.kind is OpKind.CONCAT else 'gated input'}\n {fmt_shape(src_op.shape)}",
                    color=SHORTCUT_COLOUR,
                    fontcolor=SHORTCUT_COLOUR,
                    style="dashed",
                    id=ctx.nid(f"shortcut{n}"),
                )
                continue
            shown = not ctx.sparse_labels or _shape_changes(ir, src_op) or src_op.scope != op.scope
            if op.role is Role.SHORTCUT or (op.kind is OpKind.ADD and port == 1):  # a `shortcut { }` written by hand
                ctx.shortcut_edges = True
                identity = op.kind is OpKind.ADD and src_op.role is not Role.SHORTCUT
                style = {
                    "color": SHORTCUT_COLOUR,
                    "fontcolor": SHORTCUT_COLOUR,
                    "style": "dashed" if identity else "solid",
                }
                edge(edges, a, ctx.nid(n), src_op.shape if shown else None, **style)
                continue
            edge(edges, a, ctx.nid(n), src_op.shape if shown else None)
