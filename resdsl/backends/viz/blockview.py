"""The block view: the ops inside chosen blocks (the paper's Figures 2 and 5), residual bodies boxed."""

from __future__ import annotations

from html import escape

import graphviz

from resdsl.backends.report import human
from resdsl.backends.viz.elements import DrawCtx, draw_ops, edge, html_label
from resdsl.backends.viz.labels import call_text
from resdsl.diagnostics import UsageError, did_you_mean
from resdsl.ir.graph import BlockInstance, NetworkIR, Section


def select_blocks(ir: NetworkIR, name: str | None) -> list[tuple[Section, BlockInstance]]:
    """`conv3` (its first block), `conv3.2` (block 2, from 0), `bottleneck` (its first use), or
    None (the first block of every stage)."""
    stages = [s for s in ir.sections if s.blocks]
    if name is None:
        if not stages:
            raise UsageError(f"`{ir.name}` has no blocks to draw: it uses no block definitions")
        return [(s, s.blocks[0]) for s in stages]
    section_name, dot, index = name.partition(".")
    for s in stages:
        if s.name == section_name:
            if not dot:
                return [(s, s.blocks[0])]
            if index.isdigit() and int(index) < len(s.blocks):
                return [(s, s.blocks[int(index)])]
            raise UsageError(f"--block {name}: `{s.name}` has blocks {s.name}.0 to {s.name}.{len(s.blocks) - 1}")
    for s in stages:
        for inst in s.blocks:
            if inst.definition == name:
                return [(s, inst)]
    known = [s.name for s in stages] + sorted({inst.definition for s in stages for inst in s.blocks})
    hint = did_you_mean(name, known)
    raise UsageError(
        f"--block {name}: `{ir.name}` has no stage or block of that name"
        + (f"; {hint}" if hint else f" (stages and blocks: {', '.join(known) or 'none'})")
    )


def block_views(ctx: DrawCtx, target: graphviz.Digraph, chosen: list[tuple[Section, BlockInstance]]) -> None:
    for section, inst in chosen:
        _block(ctx, target, section, inst)


def _block(ctx: DrawCtx, target: graphviz.Digraph, section: Section, inst: BlockInstance) -> None:
    """One block: an `x` node, its ops, residual bodies in dashed clusters, the output edge."""
    ir = ctx.ir
    nodes = inst.nodes
    inside = set(nodes)
    tag = f"{section.name}.{inst.index}"
    cluster = graphviz.Digraph(name=f"cluster_{ctx.prefix}block_{tag}")
    params = sum(ir.op(n).params for n in nodes)
    flops = sum(ir.op(n).flops for n in nodes)
    cluster.attr(
        label=html_label(
            f"<B>{escape(tag)}</B>  {escape(call_text(ir, inst))}<BR/>"
            f'<FONT POINT-SIZE="10">block {inst.index + 1} of {len(section.blocks)} · {human(params)} params · '
            f"{human(flops)} FLOPs</FONT>"
        ),
        labelloc="t",
        style="rounded",
        color="#969696",
        id=ctx.nid(f"block_{tag}"),
    )
    outside: dict[int, str] = {}
    for n in nodes:
        for src in ir.inputs(n):
            if src not in inside and src not in outside:
                outside[src] = ctx.nid(f"x_{tag}_{src}")
                cluster.node(
                    outside[src],
                    "x",
                    shape="plaintext",
                    style="",
                    fontsize="12",
                    id=outside[src],
                    tooltip=f"the block's input, from %{src}",
                )
    residuals = {ir.op(n).residual for n in nodes if ir.op(n).residual is not None}
    body_of: dict[int, int] = {}
    for rid in residuals:
        for b in ir.residuals[rid].body:
            body_of.setdefault(b, rid)
    # Draw residual bodies in their own dashed cluster, the rest of the block around them.
    order = list(nodes)
    loose = [n for n in order if n not in body_of]
    for rid in sorted(residuals):
        r = ir.residuals[rid]
        body = [n for n in order if body_of.get(n) == rid]
        if not body:
            continue
        sub = graphviz.Digraph(name=f"cluster_{ctx.prefix}body_{tag}_{rid}")
        title = "residual F(x)" if r.kind == "add" else "dense: new features"
        if r.survival < 1:
            each = " per sample" if ir.survival_mode == "per_sample" else ""
            title += f" · survives{each} with p = {r.survival:.2f}"
        sub.attr(
            label=title, style="dashed", color="#bdbdbd", fontsize="10", labeljust="l", id=ctx.nid(f"body_{tag}_{rid}")
        )
        draw_ops(ctx, sub, cluster, body, inside, outside)
        cluster.subgraph(sub)
    draw_ops(ctx, cluster, cluster, loose, inside, outside)
    last = ir.op(nodes[-1])
    out = ctx.nid(f"out_{tag}")
    cluster.node(out, "", shape="point", width="0.05", style="", id=out)
    edge(cluster, ctx.nid(last.id), out, last.shape)
    target.subgraph(cluster)
