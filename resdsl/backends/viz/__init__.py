"""Diagrams: the checked IR drawn with Graphviz, top to bottom, like the paper's figures.

Four views, all built from the same IR (so a diagram cannot disagree with `resdsl info`):

- collapsed (default): input, stem, one node per stage, head, output; the tensor shape on
  every edge (CxHxW, as `resdsl info` prints it);
- block: the ops inside one block (the paper's Figure 2 / Figure 5), with the shortcut drawn
  as its own edge labelled identity / zero-pad (A) / projection (B, C);
- expanded: every op, in clusters per section and per block;
- side by side: several networks in columns (the paper's Figure 3), in any of the views above.

`draw` builds a `graphviz.Digraph`; `render` writes it as svg, png, pdf or dot (`diagram`: the bytes).
"""

from __future__ import annotations

from resdsl.backends.viz.draw import draw
from resdsl.backends.viz.output import GraphvizMissing, RenderError, diagram, output_format, render
from resdsl.backends.viz.style import FORMATS, VIEWS

__all__ = ["FORMATS", "VIEWS", "GraphvizMissing", "RenderError", "diagram", "draw", "output_format", "render"]
