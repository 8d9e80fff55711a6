"""Building the `graphviz.Digraph` of one or more networks: collapsed, block and expanded views
(collapsed.py, blockview.py, expanded.py, drawn with elements.py), side by side, and the legend."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

import graphviz

from resdsl.backends.report import human
from resdsl.backends.viz.blockview import block_views, select_blocks
from resdsl.backends.viz.collapsed import collapsed
from resdsl.backends.viz.elements import DrawCtx, html_label
from resdsl.backends.viz.expanded import expanded
from resdsl.backends.viz.style import COLOURS, EDGE_COLOUR, FONT, LARGE, LEGEND_NAMES, SHORTCUT_COLOUR, VIEWS
from resdsl.diagnostics import UsageError
from resdsl.ir.graph import NetworkIR, OpKind

__all__ = ["draw", "select_blocks"]


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
        ctx = DrawCtx(ir, f"s{i}_" if many else "", kinds)
        target = g
        if many:
            column = graphviz.Digraph(name=f"cluster_net{i}")
            t = ir.totals
            column.attr(
                label=html_label(
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
            collapsed(ctx, target)
        elif view == "block":
            block_views(ctx, target, select_blocks(ir, block))
        else:
            expanded(ctx, target)
        if many:
            g.subgraph(column)
        shortcut_edges |= ctx.shortcut_edges
    _legend(g, kinds, shortcut_edges)
    if sum(ir.graph.number_of_nodes() for _, ir in networks) > LARGE and view == "expanded":
        # Bound dot's network-simplex passes: CIFAR ResNet-1202 lays out in about a third of the time.
        g.attr(nslimit="1", nslimit1="1")
    return g


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
    g.node("legend", html_label(table), shape="plain", style="", id="legend")
