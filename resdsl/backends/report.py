"""`resdsl info`: the per-stage table (like the paper's Table 1) and its JSON form."""

from __future__ import annotations

from typing import Any

from resdsl.ir.graph import NetworkIR, OpKind, SectionFigures, fmt_shape


def human(n: float) -> str:
    """1234567 -> 1.23M; 3663761408 -> 3.66G."""
    for unit, scale in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(n) >= scale:
            return f"{n / scale:.2f}{unit}"
    return str(int(n))


def _section_label(ir: NetworkIR, s: SectionFigures) -> str:
    if s.description:
        return s.description
    section = ir.section(s.name)
    kinds = [ir.op(n).kind.value for n in section.nodes]
    return ", ".join(kinds[:6]) + (", ..." if len(kinds) > 6 else "")


def to_json(ir: NetworkIR, spec: str) -> dict[str, Any]:
    t = ir.totals
    output = ir.op(ir.output_node).shape
    return {
        "name": ir.name,
        "spec": spec,
        "params": t.params,
        "flops": t.flops,
        "layers": t.layers,
        "ops": t.ops,
        "input": list(ir.input_shape),
        "output": list(output) if output else None,
        "classes": ir.classes,
        "shortcut": ir.shortcut.value,
        "param_values": {k: v if isinstance(v, (int, float, bool)) else str(v) for k, v in ir.params.items()},
        "stages": [
            {
                "name": s.name,
                "kind": s.kind,
                "output": s.output,
                "blocks": s.blocks,
                "description": s.description,
                "params": s.params,
                "flops": s.flops,
                "layers": s.layers,
            }
            for s in t.sections
        ],
        "residual_units": sum(1 for r in ir.residuals if r.merge is not None and r.kind == "add"),
        "projections": sum(1 for op in ir.ops() if op.kind is OpKind.SHORTCUT and op.shortcut.mode == "projection"),
        "expected_training_flops": t.expected_flops,
        "recipe": ir.recipe.to_json() if ir.recipe else None,
    }


def table(ir: NetworkIR, spec: str) -> str:
    t = ir.totals
    settings = ", ".join(f"{k}={v}" for k, v in ir.params.items())
    rows = [("stage", "output", "blocks", "layout", "params", "FLOPs")]
    for s in t.sections:
        rows.append(
            (
                s.name,
                fmt_shape(tuple(s.output)) if s.output else "-",
                str(s.blocks or "-"),
                _section_label(ir, s),
                f"{s.params:,}",
                human(s.flops),
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    right = {4, 5}
    lines = [
        f"{ir.name}  ({spec}; input {fmt_shape(ir.input_shape)}, {ir.classes} classes, shortcut {ir.shortcut.value}"
        + (f"; {settings}" if settings else "")
        + ")",
        "",
    ]
    for i, r in enumerate(rows):
        cells = [c.rjust(widths[j]) if j in right else c.ljust(widths[j]) for j, c in enumerate(r)]
        lines.append("  ".join(cells).rstrip())
        if i == 0:
            lines.append("  ".join("-" * w for w in widths))
    lines.append("")
    lines.append(
        f"layers {t.layers}   params {t.params:,} ({human(t.params)})   FLOPs {t.flops:,} ({human(t.flops)} multiply-adds)"
    )
    if t.expected_flops != t.flops:
        lines.append(f"stochastic depth: expected training FLOPs {human(t.expected_flops)}")
    return "\n".join(lines)
