"""`resdsl info`: the per-stage table (like the paper's Table 1) and its JSON form, with activations and the
training-memory estimate at a batch size."""

from __future__ import annotations

from typing import Any

from resdsl.ir.graph import NetworkIR, OpKind, SectionFigures, fmt_shape
from resdsl.ir.memory import EVAL_BATCH, FLOAT, TrainingMemory, fmt_bytes, kept_per_image, training_memory


def human(n: float) -> str:
    """1234567 -> 1.23M; 3663761408 -> 3.66G."""
    for unit, scale in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(n) >= scale:
            return f"{n / scale:.2f}{unit}"
    return str(int(n))


def section_label(ir: NetworkIR, s: SectionFigures) -> str:
    """The table's layout column: a stage's `basic(32, stride: 2) x n`, a stem's or head's ops."""
    if s.description:
        return s.description
    section = ir.section(s.name)
    kinds = [ir.op(n).kind.value for n in section.nodes]
    return ", ".join(kinds[:6]) + (", ..." if len(kinds) > 6 else "")


def memory(ir: NetworkIR, batch: int | None = None) -> TrainingMemory | None:
    """The float32 training estimate at `batch` (default: the recipe's batch, which `resdsl train` uses), with
    the recipe's padding; None for an IR without a recipe and no batch given."""
    if batch is None and ir.recipe is None:
        return None
    pad = ir.recipe.pad if ir.recipe else 0
    return training_memory(ir, batch if batch is not None else ir.recipe.batch, pad)


def _memory_json(ir: NetworkIR, m: TrainingMemory | None) -> dict[str, Any] | None:
    if m is None:
        return None
    return {
        "batch": m.batch,
        "bytes": m.total,
        "parameters": m.params,
        "activations": m.train,
        "evaluation": m.evaluation,
        "kept_per_image": kept_per_image(ir),
    }


def to_json(ir: NetworkIR, spec: str, batch: int | None = None) -> dict[str, Any]:
    t = ir.totals
    output = ir.output_shape
    return {
        "name": ir.name,
        "spec": spec,
        "params": t.params,
        "flops": t.flops,
        "layers": t.layers,
        "activations": t.activations,
        "activation_bytes": FLOAT * t.activations,
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
                "activations": s.activations,
                "activation_bytes": FLOAT * s.activations,
            }
            for s in t.sections
        ],
        "residual_units": sum(1 for r in ir.residuals if r.merge is not None and r.kind == "add"),
        "projections": sum(1 for op in ir.ops() if op.kind is OpKind.SHORTCUT and op.shortcut.mode == "projection"),
        "expected_training_flops": t.expected_flops,
        "training_memory": _memory_json(ir, memory(ir, batch)),
        "recipe": ir.recipe.to_json() if ir.recipe else None,
    }


def table(ir: NetworkIR, spec: str, batch: int | None = None) -> str:
    t = ir.totals
    settings = ", ".join(f"{k}={v}" for k, v in ir.params.items())
    rows = [("stage", "output", "blocks", "layout", "params", "FLOPs", "acts", "acts f32")]
    for s in t.sections:
        rows.append(
            (
                s.name,
                fmt_shape(tuple(s.output)) if s.output else "-",
                str(s.blocks or "-"),
                section_label(ir, s),
                f"{s.params:,}",
                human(s.flops),
                human(s.activations),
                fmt_bytes(FLOAT * s.activations),
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    right = {4, 5, 6, 7}
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
    lines.append(
        f"acts {t.activations:,}{_short(t.activations)} per image, {fmt_bytes(FLOAT * t.activations)} in float32"
        " (outputs of convs, fcs, projections and pools)"
    )
    lines.extend(_memory_lines(ir, memory(ir, batch)))
    return "\n".join(lines)


def _short(n: int) -> str:
    """` (1.23M)` beside a long number, nothing beside one that is short already."""
    return f" ({human(n)})" if human(n) != str(n) else ""


def _memory_lines(ir: NetworkIR, m: TrainingMemory | None) -> list[str]:
    if m is None:
        return []
    rows = [
        ("weights, gradients, momentum", m.params),
        (f"activations, forward and backward ({kept_per_image(ir):,} kept an image)", m.train),
        (f"evaluation ({EVAL_BATCH} images, no gradients)", m.evaluation),
    ]
    width = max(len(name) for name, _ in rows)
    return [
        "",
        f"training memory at batch {m.batch}: about {fmt_bytes(m.total)} (float32 estimate, without the data set)",
        *(f"  {name.ljust(width)}  {fmt_bytes(value):>8}" for name, value in rows),
    ]
