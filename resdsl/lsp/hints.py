"""Inlay hints: the output shape at the end of each stem, stage and head, and of each op line of
a block (at its first use)."""

from __future__ import annotations

from lsprotocol import types

from resdsl.ir.graph import OpKind, fmt_shape
from resdsl.lsp.analysis import Analysis
from resdsl.lsp.figures import instances, output

MERGES = (OpKind.SHORTCUT, OpKind.ADD, OpKind.CONCAT, OpKind.MUL)  # made by a section, not by an op line


def inlay_hints(a: Analysis, first: int, last: int, others: list[Analysis] | None = None) -> list[types.InlayHint]:
    """The hints on 1-based lines first..last of the document. A block's op lines are shown at its
    first use in this document's network, else in another open document's (a library: std.rd)."""
    shown = a.display
    at: dict[int, tuple[int, str]] = {}  # line -> (column, label); the last op on a line wins (`conv; bn; relu`)
    seen: set[str] = set()
    for ir in [x.ir for x in [a, *(others or [])] if x.ir is not None]:
        for _, inst in instances(ir):
            if inst.definition in seen or inst.def_span.path != shown:
                continue
            seen.add(inst.definition)
            for node in inst.nodes:
                op = ir.op(node)
                if op.span.path == shown and op.shape is not None and op.kind not in MERGES:
                    at[op.span.end_line] = (op.span.end_col, fmt_shape(op.shape))
    if a.ir is not None:
        for section in a.ir.sections:
            if section.span.path == shown:
                at[section.span.end_line] = (section.span.end_col, output(a.ir, section.nodes))
    return [
        types.InlayHint(
            types.Position(line - 1, col - 1), f"-> {label}", kind=types.InlayHintKind.Type, padding_left=True
        )
        for line, (col, label) in sorted(at.items())
        if first <= line <= last
    ]
