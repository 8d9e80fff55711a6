"""Which module of the generated model runs which op of the IR: `module_paths(ir)` maps the id of every op
that owns a module (a conv, BN, fc, pool or dropout) to its path in `build_model()`'s module tree, the
name `model.get_submodule(path)` takes (`layer2.0.bn1`, `features.denseblock1.denselayer1.norm1`).

The paths are the ones the code generator chose while writing model.py (codegen.Generator records the
attribute of each template item and the path of each stem, head and stage use), so a tool that hooks a
layer of a trained network (resdsl responses, resdsl maps) finds it from the IR, never by guessing names.
An op inside a block use is found through its block's template: the op was made by the template item at
its source position, a nested use by the template's n-th block call.
"""

from __future__ import annotations

from resdsl.ir.graph import BlockInstance, NetworkIR, Role
from resdsl.ir.naming import OWN_MODULE
from resdsl.ir.template import CallItem, OpItem, ResidualItem, walk


def module_paths(ir: NetworkIR) -> dict[int, str]:
    """op id -> module path, for every op whose kind is in OWN_MODULE."""
    from resdsl.backends.pytorch.codegen import Generator

    gen = Generator(ir, ir.name)
    gen.view(False)  # writes the classes, recording where each module goes
    out = {op_id: path for op_id, path in gen.op_paths.items() if ir.op(op_id).kind in OWN_MODULE}
    for section in ir.sections:
        for inst in section.blocks:
            if id(inst) in gen.instance_paths:
                _inside(ir, gen.item_attrs, inst, gen.instance_paths[id(inst)], out)
    return out


def _inside(ir: NetworkIR, attrs: dict[int, str], inst: BlockInstance, prefix: str, out: dict[int, str]) -> None:
    items = list(walk(ir.blocks[inst.definition].body))
    calls = [item for item in items if isinstance(item, CallItem)]
    at = {_position(item.span): item for item in items if isinstance(item, OpItem)}
    written = {
        _position(item.shortcut_span): item for item in items if isinstance(item, ResidualItem) and item.shortcut
    }
    nested = set()
    for child, call in zip(inst.children, calls):
        nested.update(child.nodes)
        _inside(ir, attrs, child, f"{prefix}.{attrs[id(call)]}", out)
    for node in inst.nodes:
        op = ir.op(node)
        if node in nested or op.kind not in OWN_MODULE:
            continue
        if op.role is Role.SHORTCUT:  # a written shortcut's Sequential holds one module per op that ran
            r = ir.residuals[op.residual]
            section = written.get(_position(ir.op(r.merge).span)) if r.merge is not None else None
            if section is not None and id(section) in attrs:
                out[node] = f"{prefix}.{attrs[id(section)]}.{r.path.index(node)}"
            continue
        item = at.get(_position(op.span))
        if item is not None and id(item) in attrs:
            out[node] = f"{prefix}.{attrs[id(item)]}"


def _position(span) -> tuple[int, int, int]:
    return (id(span.source), span.line, span.col)
