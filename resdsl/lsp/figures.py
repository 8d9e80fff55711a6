"""The checked IR looked up by source position: the ops a statement made, the uses of a block
call, and one line of figures for each."""

from __future__ import annotations

from collections.abc import Iterator

from resdsl.diagnostics import Span
from resdsl.ir.graph import BlockInstance, NetworkIR, Op, Section, fmt_shape

MAX_ROWS = 12  # uses listed in a hover; the rest are counted


def same_place(a: Span, b: Span) -> bool:
    return (a.path, a.line, a.col) == (b.path, b.line, b.col)


def instances(ir: NetworkIR) -> Iterator[tuple[Section, BlockInstance]]:
    """Every block use, nested ones included, with its section, in network order."""
    for section in ir.sections:
        stack = list(reversed(section.blocks))
        while stack:
            inst = stack.pop()
            yield section, inst
            stack.extend(reversed(inst.children))


def ops_at(ir: NetworkIR, span: Span) -> list[Op]:
    return [op for op in ir.ops() if same_place(op.span, span)]


def instances_at(ir: NetworkIR, span: Span) -> list[tuple[Section, BlockInstance]]:
    return [(s, i) for s, i in instances(ir) if same_place(i.call_span, span)]


def instances_of(ir: NetworkIR, block: str) -> list[tuple[Section, BlockInstance]]:
    return [(s, i) for s, i in instances(ir) if i.definition == block]


def output(ir: NetworkIR, nodes: list[int]) -> str:
    return fmt_shape(ir.op(nodes[-1]).shape) if nodes else "-"


def op_row(ir: NetworkIR, op: Op) -> str:
    where = op.path or op.scope.section
    ins = " + ".join(fmt_shape(s) for s in op.in_shapes or [])
    return f"`{where}`: {ins} -> **{fmt_shape(op.shape)}**, {op.params:,} params, {op.flops:,} FLOPs"


def instance_row(ir: NetworkIR, section: Section, inst: BlockInstance) -> str:
    params = sum(ir.op(n).params for n in inst.nodes)
    flops = sum(ir.op(n).flops for n in inst.nodes)
    where = inst.path or f"{section.name}[{inst.index}]"
    return f"`{where}`: **{output(ir, inst.nodes)}**, {params:,} params, {flops:,} FLOPs"


def rows(lines: list[str]) -> str:
    """A bulleted list of at most MAX_ROWS lines, the rest counted."""
    shown = [f"- {line}" for line in lines[:MAX_ROWS]]
    if len(lines) > MAX_ROWS:
        shown.append(f"- ... {len(lines) - MAX_ROWS} more")
    return "\n".join(shown)
