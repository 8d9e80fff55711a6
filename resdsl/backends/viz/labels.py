"""Text for ops, block uses, stage layouts and shortcuts, as the diagrams and the paper write them."""

from __future__ import annotations

from typing import Any

from resdsl.backends.report import human
from resdsl.backends.viz.style import LOOKS
from resdsl.ir.graph import BlockInstance, NetworkIR, Op, OpKind, Section, ShortcutPlan

# ---------------------------------------------------------------- text for ops and sections


def op_label(op: Op) -> str:
    """The paper's wording: `3x3 conv, 128, /2`, `BN`, `ReLU`, `fc 1000` (style.LOOKS)."""
    return LOOKS[op.kind].label(op)


def op_abbrev(op: Op) -> str:
    """A few characters for the coloured strip of a collapsed node."""
    return LOOKS[op.kind].abbrev(op)


def _value_text(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return f"{v:g}"
    if isinstance(v, str):
        return v if v.isidentifier() else f'"{v}"'
    return str(v)


def call_text(ir: NetworkIR, inst: BlockInstance) -> str:
    """`basic(128, stride: 2)`: the evaluated call, leaving out arguments that took or equal a constant default."""
    template = ir.blocks.get(inst.definition)
    if template is None:
        return f"{inst.definition}(" + ", ".join(f"{k}: {_value_text(v)}" for k, v in inst.args.items()) + ")"
    parts = []
    for formal in template.formals:
        if formal.name not in inst.args:
            continue
        value = inst.args[formal.name]
        if formal.default is None:
            parts.append(_value_text(value))
        elif formal.name in template.constant_defaults and template.constant_defaults[formal.name] == value:
            continue
        else:
            parts.append(f"{formal.name}: {_value_text(value)}")
    return f"{inst.definition}({', '.join(parts)})"


def block_runs(ir: NetworkIR, section: Section) -> list[tuple[BlockInstance, int]]:
    """Consecutive uses of one block with the same arguments (later copies at stride 1) as one run."""
    runs: list[tuple[BlockInstance, int]] = []

    def key(inst: BlockInstance) -> tuple:
        return inst.definition, tuple(sorted((k, repr(v)) for k, v in inst.args.items() if k != "stride"))

    for inst in section.blocks:
        if runs and key(runs[-1][0]) == key(inst) and inst.args.get("stride", 1) == 1:
            runs[-1] = (runs[-1][0], runs[-1][1] + 1)
        else:
            runs.append((inst, 1))
    return runs


def layout_text(ir: NetworkIR, section: Section) -> str:
    """`basic(128, stride: 2) x 4` for a stage (counts evaluated); the op list for stem and head."""
    if section.blocks:
        return ", ".join(call_text(ir, inst) + (f" x {n}" if n > 1 else "") for inst, n in block_runs(ir, section))
    return " · ".join(op_label(ir.op(n)) for n in section.nodes if ir.op(n).kind is not OpKind.SHORTCUT)


def shortcut_text(ir: NetworkIR, op: Op) -> str:
    """identity / zero-pad (A) / projection (B) or (C), as the paper names them."""
    plan: ShortcutPlan = op.shortcut
    option = op.attrs["option"].value
    if plan.mode == "identity":
        return "identity"
    if plan.mode == "pad":
        return f"zero-pad ({option})"
    return f"projection ({option})"


def shortcut_detail(op: Op) -> str:
    plan: ShortcutPlan = op.shortcut
    if plan.mode == "pad":
        return f"/{plan.stride}, +{plan.out_channels - plan.in_channels} zero channels"
    if plan.mode == "projection":
        text = f"1x1 conv, {plan.out_channels}" + (f", /{plan.stride}" if plan.stride > 1 else "")
        return text + (" + BN" if plan.bn else "") + f"\n {human(op.params)} params"
    return ""


def shortcut_source(ir: NetworkIR, op: Op) -> int:
    """The node a shortcut reads: x, or the pre-activated x for a pre-activation projection."""
    sources = ir.inputs(op.id)
    if len(sources) == 2 and op.shortcut.mode == "projection":
        return sources[1]
    return sources[0]
