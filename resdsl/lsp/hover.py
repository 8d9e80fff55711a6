"""Hover: an op's, a block use's or a stage's output shape, params and FLOPs (per use), a
param's value and where it was defined."""

from __future__ import annotations

from lsprotocol import types

from resdsl.ir.graph import NetworkIR, fmt_shape
from resdsl.lang import syntax
from resdsl.lsp.analysis import Analysis
from resdsl.lsp.figures import instance_row, instances_at, instances_of, op_row, ops_at, rows
from resdsl.lsp.locate import enclosing_block, to_range, under, word_at
from resdsl.lsp.symbols import block_signature, find_param


def hover(a: Analysis, line: int, col: int, others: list[Analysis] | None = None) -> types.Hover | None:
    """The hover at 1-based (line, col) of the document, or None. Inside a block that this document's
    network does not use (a library's), the figures come from an open document whose network does."""
    if a.module is None:
        return None
    word = word_at(a.text, line, col)
    block = enclosing_block(a.module, line, col)
    if word and (block is None or word[0] not in {f.name for f in block.formals}):
        text = _param(a, word[0]) if _is_param_use(a, line, word) else None
        if text:
            return _result(text, line, word)
    ir = _block_ir(a, others or [], block.name) if block is not None else a.ir
    for node in under(a.module, line, col):
        text = _describe(a, ir, node, block)
        if text:
            return types.Hover(types.MarkupContent(types.MarkupKind.Markdown, text), to_range(node.span))
    return None


def _result(text: str, line: int, word: tuple[str, int, int]) -> types.Hover:
    _, start, end = word
    rng = types.Range(types.Position(line - 1, start - 1), types.Position(line - 1, end - 1))
    return types.Hover(types.MarkupContent(types.MarkupKind.Markdown, text), rng)


def _is_param_use(a: Analysis, line: int, word: tuple[str, int, int]) -> bool:
    """A param's name, not an argument's (`stride:`) nor a block's or op's."""
    name, _, end = word
    rest = a.text.split("\n")[line - 1][end - 1 :]
    return find_param(a, name) is not None and not rest.lstrip().startswith(":")


def _block_ir(a: Analysis, others: list[Analysis], name: str) -> NetworkIR | None:
    """The first checked network among this document's and the others' that uses block `name`."""
    irs = [x.ir for x in [a, *others] if x.ir is not None]
    return next((ir for ir in irs if instances_of(ir, name)), a.ir)


def _describe(a: Analysis, ir: NetworkIR | None, node: object, block: syntax.BlockDef | None) -> str | None:
    if isinstance(node, syntax.Call | syntax.InvokeStmt):
        call = node.call if isinstance(node, syntax.InvokeStmt) else node
        if a.program is not None and call.name in a.program.blocks:
            return _block_use(a, ir, call)
        return None
    if isinstance(node, syntax.OpStmt) and ir is not None:
        ops = ops_at(ir, node.span)
        if ops:
            title = f"**{node.name}**" + (f": {len(ops)} uses" if len(ops) > 1 else "")
            return f"{title}\n\n{rows([op_row(ir, op) for op in ops])}"
        return None
    if isinstance(node, syntax.StageStmt | syntax.SectionStmt) and ir is not None and block is None:
        return _section(ir, node.name)
    if isinstance(node, syntax.ExpectStmt | syntax.NetworkDef) and a.ir is not None and block is None:
        return _network(a.ir)
    if isinstance(node, syntax.BlockDef):
        return _block(ir, node)
    if isinstance(node, syntax.ParamDef):
        return _param(a, node.name)
    return None


def _network(ir: NetworkIR) -> str:
    """The totals an `expect` can test, as the network has them."""
    t = ir.totals
    return (
        f"**network {ir.name}**: {fmt_shape(ir.input_shape)} -> {ir.classes} classes, shortcut {ir.shortcut.value}\n\n"
        f"layers {t.layers}, params {t.params:,}, FLOPs {t.flops:,}, {t.ops} ops"
    )


def _section(ir: NetworkIR, name: str) -> str | None:
    figures = next((s for s in ir.totals.sections if s.name == name), None)
    if figures is None:
        return None
    shape = fmt_shape(tuple(figures.output)) if figures.output else "-"
    text = (
        f"**{figures.kind} {name}**: output **{shape}**\n\n"
        f"{figures.params:,} params, {figures.flops:,} FLOPs, {figures.layers} layers"
    )
    section = ir.section(name)
    if section.blocks:
        text += f", {len(section.blocks)} blocks\n\n" + rows([instance_row(ir, section, i) for i in section.blocks])
    return text


def _block_use(a: Analysis, ir: NetworkIR | None, call: syntax.Call) -> str:
    text = block_signature(a.program.blocks[call.name])
    if ir is not None:
        uses = instances_at(ir, call.span)
        if uses:
            label = "use" if len(uses) == 1 else f"{len(uses)} uses"
            text += f"\n\n{label}:\n\n" + rows([instance_row(ir, s, i) for s, i in uses])
    return text


def _block(ir: NetworkIR | None, block: syntax.BlockDef) -> str:
    text = block_signature(block)
    if ir is not None:
        uses = instances_of(ir, block.name)
        text += f"\n\nused {len(uses)} times in `{ir.name}`" if uses else f"\n\nnot used by `{ir.name}`"
        if uses:
            text += "\n\n" + rows([instance_row(ir, s, i) for s, i in uses])
    return text


def _param(a: Analysis, name: str) -> str | None:
    found = find_param(a, name)
    if found is None:
        return None
    definition, shadowed = found
    text = f"**param {name}**"
    if a.ir is not None and name in a.ir.params:
        text += f" = `{a.ir.params[name]}`"
    line = definition.span.source.line(definition.span.line).strip()
    text += f"\n\nfrom `{line}` at {definition.span}"
    for other in shadowed:
        text += f"\n\n(overrides `{other.span.source.line(other.span.line).strip()}` at {other.span})"
    if a.ir is not None and name not in a.ir.params_used:
        text += f"\n\nnot read by `{a.ir.name}`"
    return text
