"""Names: where blocks and params are defined and used (across imports and std.rd), and the
outline of a document (network, stem, stages, head, blocks, params)."""

from __future__ import annotations

from lsprotocol import types

from resdsl.diagnostics import Span
from resdsl.lang import syntax
from resdsl.lsp.analysis import Analysis
from resdsl.lsp.locate import contains, enclosing_block, name_span, nodes, to_location, to_range, word_at


def block_signature(block: syntax.BlockDef) -> str:
    formals = ", ".join(f.name if f.default is None else f"{f.name} = {_text(f.default.span)}" for f in block.formals)
    return f"```\nblock {block.name}({formals})\n```\ndefined at {block.span}"


def _text(span: Span) -> str:
    if span.line != span.end_line:
        return "..."
    return span.source.line(span.line)[span.col - 1 : span.end_col - 1]


def find_param(a: Analysis, name: str) -> tuple[syntax.ParamDef, list[syntax.ParamDef]] | None:
    """The `param` that gives `name` its value, and those it overrides (an imported file's)."""
    defs = [p for m in a.modules() for p in m.params if p.name == name]
    if not defs:
        return None
    return defs[-1], defs[:-1][::-1]


def find_block(a: Analysis, name: str) -> syntax.BlockDef | None:
    if a.program is not None:
        return a.program.blocks.get(name)
    return next((b for m in a.modules() for b in m.blocks if b.name == name), None)


def target(a: Analysis, line: int, col: int) -> tuple[str, str] | None:
    """What the name at (line, col) refers to: ("block" | "param" | "formal", name)."""
    if a.module is None:
        return None
    word = word_at(a.text, line, col)
    if word is None:
        return None
    name = word[0]
    block = enclosing_block(a.module, line, col)
    if block is not None and name in {f.name for f in block.formals}:
        return "formal", name
    if find_block(a, name) is not None:
        return "block", name
    if find_param(a, name) is not None:
        return "param", name
    return None


def definition(a: Analysis, line: int, col: int) -> types.Location | None:
    found = target(a, line, col)
    if found is None:
        return None
    kind, name = found
    if kind == "formal":
        block = enclosing_block(a.module, line, col)
        formal = next(f for f in block.formals if f.name == name)
        return to_location(name_span(formal.span, name))
    if kind == "block":
        block = find_block(a, name)
        return to_location(name_span(block.span, name))
    param, _ = find_param(a, name)
    return to_location(name_span(param.span, name))


def references(
    analyses: list[Analysis], a: Analysis, line: int, col: int, declaration: bool
) -> list[types.Location] | None:
    """Every use of the block or param at (line, col) in the files of `a` and of the other open
    documents (`analyses`), its definition with `declaration`."""
    found = target(a, line, col)
    if found is None or found[0] == "formal":
        return None
    kind, name = found
    spans: dict[tuple[str, int, int], Span] = {}
    for other in [a, *analyses]:
        for module in other.modules():
            for span in _uses(module, kind, name, declaration):
                spans.setdefault((span.path, span.line, span.col), span)
    return [to_location(s) for s in spans.values()]


def _uses(module: syntax.Module, kind: str, name: str, declaration: bool) -> list[Span]:
    found: list[Span] = []
    if kind == "block":
        found += [n.name_span for n in nodes(module) if isinstance(n, syntax.Call) and n.name == name]
        if declaration:
            found += [name_span(b.span, name) for b in module.blocks if b.name == name]
        return found
    for item in [*module.params, *module.blocks, *module.networks, *module.trains]:
        shadowed = isinstance(item, syntax.BlockDef) and name in {f.name for f in item.formals}
        if not shadowed:
            found += [n.span for n in nodes(item) if isinstance(n, syntax.Name) and n.id == name]
    if declaration:
        found += [name_span(p.span, name) for p in module.params if p.name == name]
    return found


def document_symbols(a: Analysis) -> list[types.DocumentSymbol]:
    if a.module is None:
        return []
    out: list[types.DocumentSymbol] = []
    for p in a.module.params:
        value = a.ir.params.get(p.name) if a.ir is not None else None
        out.append(_symbol(p.name, types.SymbolKind.Constant, p.span, name_span(p.span, p.name), _str(value)))
    for b in a.module.blocks:
        formals = ", ".join(f.name for f in b.formals)
        out.append(_symbol(b.name, types.SymbolKind.Function, b.span, name_span(b.span, b.name), f"({formals})"))
    for net in a.module.networks:
        children = [_section_symbol(a, stmt) for stmt in net.body if _is_section(stmt)]
        out.append(_symbol(net.name, types.SymbolKind.Module, net.span, name_span(net.span, net.name), None, children))
    for train in a.module.trains:
        out.append(_symbol("train", types.SymbolKind.Namespace, train.span, name_span(train.span, "train"), None))
    return out


def _is_section(stmt: syntax.Stmt) -> bool:
    return isinstance(stmt, syntax.StageStmt) or (
        isinstance(stmt, syntax.SectionStmt) and stmt.name in ("stem", "head")
    )


def _section_symbol(a: Analysis, stmt: syntax.StageStmt | syntax.SectionStmt) -> types.DocumentSymbol:
    shape = None
    if a.ir is not None:
        figures = next((s for s in a.ir.totals.sections if s.name == stmt.name), None)
        if figures is not None and figures.output:
            shape = "x".join(str(d) for d in figures.output)
    kind = types.SymbolKind.Field if isinstance(stmt, syntax.StageStmt) else types.SymbolKind.Property
    return _symbol(stmt.name, kind, stmt.span, stmt.name_span, shape)


def _symbol(
    name: str,
    kind: types.SymbolKind,
    span: Span,
    selection: Span,
    detail: str | None,
    children: list[types.DocumentSymbol] | None = None,
) -> types.DocumentSymbol:
    whole = to_range(span)
    sel = to_range(selection)
    if not (contains(span, selection.line, selection.col)):
        sel = whole
    return types.DocumentSymbol(name, kind, whole, sel, detail=detail, children=children)


def _str(value: object) -> str | None:
    return None if value is None else str(value)
