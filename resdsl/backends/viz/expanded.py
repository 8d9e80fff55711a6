"""The expanded view: every op, a cluster per section and per top-level block."""

from __future__ import annotations

from html import escape

import graphviz

from resdsl.backends.report import human
from resdsl.backends.viz.elements import DrawCtx, draw_ops, edge, html_label, op_node
from resdsl.backends.viz.labels import call_text, layout_text
from resdsl.backends.viz.style import COLOURS
from resdsl.ir.graph import OpKind


def expanded(ctx: DrawCtx, target: graphviz.Digraph) -> None:
    """Every op; a cluster per section and per top-level block; shortcuts as their own edges."""
    ir = ctx.ir
    ctx.sparse_labels = True
    op_node(ctx, target, ir.op(ir.input_node))
    inside = set(ir.graph.nodes)
    for section, figures in zip(ir.sections, ir.totals.sections):
        if not section.nodes:
            continue
        cluster = graphviz.Digraph(name=f"cluster_{ctx.prefix}{section.name}")
        cluster.attr(
            label=html_label(
                f"<B>{escape(section.name)}</B>  {escape(layout_text(ir, section))}<BR/>"
                f'<FONT POINT-SIZE="10">{human(figures.params)} params · {human(figures.flops)} FLOPs</FONT>'
            ),
            labeljust="l",
            style="rounded,filled",
            fillcolor="#fafafa",
            color="#969696",
            id=ctx.nid(f"section_{section.name}"),
        )
        in_blocks: set[int] = set()
        for inst in section.blocks:
            sub = graphviz.Digraph(name=f"cluster_{ctx.prefix}{section.name}_{inst.index}")
            sub.attr(
                label=f"{section.name}.{inst.index} {call_text(ir, inst)}",
                id=ctx.nid(f"block_{section.name}.{inst.index}"),
                style="rounded",
                color="#d9d9d9",
                fillcolor="#ffffff",
                fontsize="9",
                labeljust="l",
            )
            draw_ops(ctx, sub, target, inst.nodes, inside, {})
            cluster.subgraph(sub)
            in_blocks.update(inst.nodes)
        draw_ops(ctx, cluster, target, [n for n in section.nodes if n not in in_blocks], inside, {})
        target.subgraph(cluster)
    last = ir.op(ir.output_node)
    out = ctx.nid("output")
    target.node(out, f"output\n{ir.classes} classes", fillcolor=COLOURS[OpKind.INPUT], id=out, style="filled")
    edge(target, ctx.nid(last.id), out, last.shape)
