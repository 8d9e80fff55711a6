"""The collapsed view: input, one node per section (its layout, a strip of op cells, its figures), output."""

from __future__ import annotations

from html import escape
from typing import Any

import graphviz

from resdsl.backends.report import human
from resdsl.backends.viz.elements import DrawCtx, edge, html_label
from resdsl.backends.viz.labels import block_runs, layout_text, op_abbrev, shortcut_text
from resdsl.backends.viz.style import COLOURS, SECTION_FILL, SHORTCUT_COLOUR
from resdsl.ir.graph import NetworkIR, OpKind, Section, fmt_shape


def collapsed(ctx: DrawCtx, target: graphviz.Digraph) -> None:
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
            html_label(_section_html(ctx, section, figures)),
            shape="plain",
            style="",
            id=name,
            tooltip=f"{section.kind} {section.name}: {figures.params:,} params, {figures.flops:,} FLOPs",
        )
        edge(target, prev, name, shape)
        prev, shape = name, ir.op(section.nodes[-1]).shape
    out = ctx.nid("output")
    target.node(out, f"output\n{ir.classes} classes", fillcolor=COLOURS[OpKind.INPUT], id=out, style="filled")
    edge(target, prev, out, shape)


def _section_html(ctx: DrawCtx, section: Section, figures: dict[str, Any]) -> str:
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


def _strip(ctx: DrawCtx, section: Section) -> tuple[str, int]:
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
        sd += " per sample" if ir.survival_mode == "per_sample" else ""
        notes = f"{notes} · {sd}" if notes else sd
    return notes
