"""Building the `graphviz.Digraph` of one or more networks: collapsed, block and expanded views."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from html import escape
from typing import Any

import graphviz

from resdsl.backends.report import human
from resdsl.backends.viz.labels import (
    block_runs,
    call_text,
    layout_text,
    op_abbrev,
    op_label,
    shortcut_detail,
    shortcut_source,
    shortcut_text,
)
from resdsl.backends.viz.style import (
    COLOURS,
    EDGE_COLOUR,
    FONT,
    LARGE,
    LEGEND_NAMES,
    SECTION_FILL,
    SHORTCUT_COLOUR,
    VIEWS,
)
from resdsl.diagnostics import UsageError, did_you_mean
from resdsl.ir.graph import BlockInstance, NetworkIR, Op, OpKind, Role, Section, fmt_shape

# ---------------------------------------------------------------- drawing


@dataclass
class _Ctx:
    """One network being drawn into a (sub)graph; `prefix` keeps node names unique side by side."""

    ir: NetworkIR
    prefix: str
    kinds: set[OpKind]
    shortcut_edges: bool = False
    sparse_labels: bool = False  # label only edges where the shape changes or a block ends

    def nid(self, node: int | str) -> str:
        return f"{self.prefix}n{node}" if isinstance(node, int) else f"{self.prefix}{node}"


def draw(
    networks: Sequence[tuple[str, NetworkIR]],
    view: str = "collapsed",
    block: str | None = None,
) -> graphviz.Digraph:
    """Draw one network, or several side by side (one column each), in the given view.

    `networks` pairs a display name (the spec's file name) with its checked IR. For the block
    view, `block` names a stage (its first block), `stage.i` (block i) or a block definition
    (its first use); None draws the first block of every stage.
    """
    if view not in VIEWS:
        raise UsageError(f"unknown view `{view}`; views: {', '.join(VIEWS)}")
    g = graphviz.Digraph(name=" vs ".join(n for n, _ in networks) or "resdsl", engine="dot")
    g.attr(rankdir="TB", fontname=FONT, fontsize="12", nodesep="0.3", ranksep="0.3", newrank="true")
    g.attr("node", fontname=FONT, fontsize="11", style="filled,rounded", shape="box", color="#737373")
    g.attr("edge", fontname=FONT, fontsize="9", fontcolor="#525252", color=EDGE_COLOUR, arrowsize="0.6")
    kinds: set[OpKind] = set()
    shortcut_edges = False
    many = len(networks) > 1
    for i, (name, ir) in enumerate(networks):
        ctx = _Ctx(ir, f"s{i}_" if many else "", kinds)
        target = g
        if many:
            column = graphviz.Digraph(name=f"cluster_net{i}")
            t = ir.totals
            column.attr(
                label=_html(
                    f"<B>{escape(name)}</B><BR/>{t.layers} layers · {human(t.params)} params · {human(t.flops)} FLOPs"
                ),
                labelloc="t",
                style="rounded",
                color="#bdbdbd",
                fontsize="13",
                id=f"net{i}",
            )
            target = column
        if view == "collapsed":
            _collapsed(ctx, target)
        elif view == "block":
            _blocks(ctx, target, select_blocks(ir, block))
        else:
            _expanded(ctx, target)
        if many:
            g.subgraph(column)
        shortcut_edges |= ctx.shortcut_edges
    _legend(g, kinds, shortcut_edges)
    if sum(ir.graph.number_of_nodes() for _, ir in networks) > LARGE and view == "expanded":
        # Bound dot's network-simplex passes: CIFAR ResNet-1202 lays out in about a third of the time.
        g.attr(nslimit="1", nslimit1="1")
    return g


def _html(inner: str) -> str:
    return f"<{inner}>"


def _edge(target: graphviz.Digraph, a: str, b: str, shape: tuple[int, ...] | None, **attrs: str) -> None:
    target.edge(a, b, label=f" {fmt_shape(shape)}" if shape is not None else None, **attrs)


def _op_node(ctx: _Ctx, target: graphviz.Digraph, op: Op) -> None:
    ctx.kinds.add(op.kind)
    group = ctx.nid("shortcut" if op.role is Role.SHORTCUT else "main")  # a written shortcut's ops beside the body
    attrs = {"fillcolor": COLOURS[op.kind], "id": ctx.nid(op.id), "tooltip": _tooltip(op), "group": group}
    if op.kind in (OpKind.ADD, OpKind.CONCAT, OpKind.MUL):
        label = {OpKind.ADD: "+", OpKind.CONCAT: "C", OpKind.MUL: "×"}[op.kind]
        r = ctx.ir.residuals[op.residual] if op.residual is not None else None
        if r is not None and r.survival < 1:
            label = f"{label}\np={r.survival:.2f}"
            attrs["tooltip"] += f"; stochastic depth: the residual body survives with p = {r.survival:.3f}"
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


def _shortcut_edge(ctx: _Ctx, target: graphviz.Digraph, op: Op, source: str) -> None:
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


def _draw_ops(
    ctx: _Ctx,
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
        _op_node(ctx, target, op)
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
                _edge(edges, a, ctx.nid(n), src_op.shape if shown else None, **style)
                continue
            _edge(edges, a, ctx.nid(n), src_op.shape if shown else None)


# ---------------------------------------------------------------- collapsed


def _collapsed(ctx: _Ctx, target: graphviz.Digraph) -> None:
    ir = ctx.ir
    ctx.kinds.add(OpKind.INPUT)
    target.node(
        ctx.nid("input"),
        f"input\n{fmt_shape(ir.input_shape)}",
        fillcolor=COLOURS[OpKind.INPUT],
        id=ctx.nid("input"),
        shape="box",
        style="filled",
    )
    prev, shape = ctx.nid("input"), ir.input_shape
    for section, figures in zip(ir.sections, ir.totals.sections):
        if not section.nodes:
            continue
        name = ctx.nid(f"section_{section.name}")
        target.node(
            name,
            _html(_section_html(ctx, section, figures)),
            shape="plain",
            style="",
            id=name,
            tooltip=f"{section.kind} {section.name}: {figures.params:,} params, {figures.flops:,} FLOPs",
        )
        _edge(target, prev, name, shape)
        prev, shape = name, ir.op(section.nodes[-1]).shape
    out = ctx.nid("output")
    target.node(out, f"output\n{ir.classes} classes", fillcolor=COLOURS[OpKind.INPUT], id=out, style="filled")
    _edge(target, prev, out, shape)


def _section_html(ctx: _Ctx, section: Section, figures: dict[str, Any]) -> str:
    ir = ctx.ir
    strip, width = _strip(ctx, section)
    fill = SECTION_FILL[section.kind]
    title = f"<B>{escape(section.name)}</B>"
    layout = "<BR/>".join(escape(line) for line in _wrap(layout_text(ir, section), 44))
    numbers = (
        f"{fmt_shape(ir.op(section.nodes[-1]).shape)} · {human(figures.params)} params · {human(figures.flops)} FLOPs"
    )
    rows = [
        f'<TR><TD COLSPAN="{width}" ALIGN="LEFT">{title}  {layout}</TD></TR>',
        f"<TR>{strip}</TR>",
        f'<TR><TD COLSPAN="{width}" ALIGN="LEFT"><FONT POINT-SIZE="10">{escape(numbers)}</FONT></TD></TR>',
    ]
    extra = _section_notes(ir, section)
    if extra:
        rows.append(
            f'<TR><TD COLSPAN="{width}" ALIGN="LEFT"><FONT POINT-SIZE="9" COLOR="{SHORTCUT_COLOUR}">'
            f"{escape(extra)}</FONT></TD></TR>"
        )
    return (
        f'<TABLE BORDER="1" CELLBORDER="0" CELLSPACING="2" CELLPADDING="3" STYLE="ROUNDED" '
        f'BGCOLOR="{fill}" COLOR="#737373">{"".join(rows)}</TABLE>'
    )


def _wrap(text: str, width: int) -> list[str]:
    """Break a `a · b · c` or `a, b` list into lines of about `width` characters."""
    sep = " · " if " · " in text else ", "
    lines: list[str] = []
    for item in text.split(sep):
        if lines and len(lines[-1]) + len(sep) + len(item) <= width:
            lines[-1] += sep + item
        else:
            if lines:
                lines[-1] += sep.rstrip()
            lines.append(item)
    return lines or [""]


def _strip(ctx: _Ctx, section: Section) -> tuple[str, int]:
    """Coloured cells: the ops of one block per run (then `x N`), or the section's own ops."""
    ir = ctx.ir
    groups: list[tuple[list[int], int]] = []
    if section.blocks:
        groups = [(inst.nodes, n) for inst, n in block_runs(ir, section)]
    else:
        groups = [(section.nodes, 1)]
    cells = []
    for nodes, count in groups:
        for n in nodes:
            op = ir.op(n)
            if op.kind is OpKind.SHORTCUT:
                continue
            ctx.kinds.add(op.kind)
            cells.append(
                f'<TD BGCOLOR="{COLOURS[op.kind]}" BORDER="1" COLOR="#969696"><FONT POINT-SIZE="9">'
                f"{escape(op_abbrev(op))}</FONT></TD>"
            )
        if count > 1:
            cells.append(f'<TD><FONT POINT-SIZE="9">x{count}</FONT></TD>')
    cells = cells or ["<TD></TD>"]
    return "".join(cells), len(cells)


def _section_notes(ir: NetworkIR, section: Section) -> str:
    """Shortcut kinds in a section (`projection (B) x1, identity x3`) and stochastic-depth survival."""
    counts: dict[str, int] = {}
    survivals = []
    for n in section.nodes:
        op = ir.op(n)
        if op.kind is OpKind.SHORTCUT:
            text = shortcut_text(ir, op)
            counts[text] = counts.get(text, 0) + 1
        if op.kind in (OpKind.ADD, OpKind.CONCAT) and op.residual is not None:
            survivals.append(ir.residuals[op.residual].survival)
        if op.kind is OpKind.CONCAT:
            counts["concatenation"] = counts.get("concatenation", 0) + 1
    parts = [f"{k} x{v}" for k, v in counts.items()]
    notes = ("shortcuts: " + ", ".join(parts)) if parts else ""
    if survivals and min(survivals) < 1:
        sd = f"survival {max(survivals):.2f} → {min(survivals):.2f}"
        notes = f"{notes} · {sd}" if notes else sd
    return notes


# ---------------------------------------------------------------- block view


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


def _blocks(ctx: _Ctx, target: graphviz.Digraph, chosen: list[tuple[Section, BlockInstance]]) -> None:
    for section, inst in chosen:
        _block(ctx, target, section, inst)


def _block(ctx: _Ctx, target: graphviz.Digraph, section: Section, inst: BlockInstance) -> None:
    """One block: an `x` node, its ops, residual bodies in dashed clusters, the output edge."""
    ir = ctx.ir
    nodes = inst.nodes
    inside = set(nodes)
    tag = f"{section.name}.{inst.index}"
    cluster = graphviz.Digraph(name=f"cluster_{ctx.prefix}block_{tag}")
    params = sum(ir.op(n).params for n in nodes)
    flops = sum(ir.op(n).flops for n in nodes)
    cluster.attr(
        label=_html(
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
            title += f" · survives with p = {r.survival:.2f}"
        sub.attr(
            label=title, style="dashed", color="#bdbdbd", fontsize="10", labeljust="l", id=ctx.nid(f"body_{tag}_{rid}")
        )
        _draw_ops(ctx, sub, cluster, body, inside, outside)
        cluster.subgraph(sub)
    _draw_ops(ctx, cluster, cluster, loose, inside, outside)
    last = ir.op(nodes[-1])
    out = ctx.nid(f"out_{tag}")
    cluster.node(out, "", shape="point", width="0.05", style="", id=out)
    _edge(cluster, ctx.nid(last.id), out, last.shape)
    target.subgraph(cluster)


# ---------------------------------------------------------------- expanded


def _expanded(ctx: _Ctx, target: graphviz.Digraph) -> None:
    """Every op; a cluster per section and per top-level block; shortcuts as their own edges."""
    ir = ctx.ir
    ctx.sparse_labels = True
    _op_node(ctx, target, ir.op(ir.input_node))
    inside = set(ir.graph.nodes)
    for section, figures in zip(ir.sections, ir.totals.sections):
        if not section.nodes:
            continue
        cluster = graphviz.Digraph(name=f"cluster_{ctx.prefix}{section.name}")
        cluster.attr(
            label=_html(
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
            _draw_ops(ctx, sub, target, inst.nodes, inside, {})
            cluster.subgraph(sub)
            in_blocks.update(inst.nodes)
        _draw_ops(ctx, cluster, target, [n for n in section.nodes if n not in in_blocks], inside, {})
        target.subgraph(cluster)
    last = ir.op(ir.output_node)
    out = ctx.nid("output")
    target.node(out, f"output\n{ir.classes} classes", fillcolor=COLOURS[OpKind.INPUT], id=out, style="filled")
    _edge(target, ctx.nid(last.id), out, last.shape)


# ---------------------------------------------------------------- legend


def _legend(g: graphviz.Digraph, kinds: set[OpKind], shortcut_edges: bool) -> None:
    seen: dict[str, str] = {}
    for kind in COLOURS:
        if kind in kinds and kind in LEGEND_NAMES:
            seen.setdefault(LEGEND_NAMES[kind], COLOURS[kind])
    rows = [
        f'<TR><TD BGCOLOR="{colour}" WIDTH="14" HEIGHT="10" BORDER="1" COLOR="#969696"></TD>'
        f'<TD ALIGN="LEFT"><FONT POINT-SIZE="9">{escape(name)}</FONT></TD></TR>'
        for name, colour in seen.items()
    ]
    if shortcut_edges:
        rows.append(
            f'<TR><TD><FONT COLOR="{SHORTCUT_COLOUR}" POINT-SIZE="9">- - →</FONT></TD>'
            f'<TD ALIGN="LEFT"><FONT POINT-SIZE="9">shortcut</FONT></TD></TR>'
        )
    if not rows:
        return
    table = (
        '<TABLE BORDER="1" CELLBORDER="0" CELLSPACING="1" CELLPADDING="1" COLOR="#bdbdbd" BGCOLOR="white">'
        f'<TR><TD COLSPAN="2"><FONT POINT-SIZE="9"><B>legend</B></FONT></TD></TR>{"".join(rows)}</TABLE>'
    )
    g.node("legend", _html(table), shape="plain", style="", id="legend")
