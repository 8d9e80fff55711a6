"""Passes over the graph IR: shapes, shortcut resolution, params, FLOPs, activations, layers, expectations.

Each pass is a function of the IR that writes its own fields of each `Op` and reports problems
as located SpecErrors. `analyze` runs them all and raises every error found at once.
"""

from __future__ import annotations

from typing import Protocol

from resdsl.diagnostics import Note, SpecError, collect
from resdsl.ir.graph import (
    NetworkIR,
    Op,
    OpKind,
    Role,
    SectionFigures,
    ShortcutOption,
    ShortcutPlan,
    Totals,
    fmt_shape,
)
from resdsl.ir.ops import COUNTED_ACTS, REGISTRY, WEIGHTED, OpProblem, numel

Shape = tuple[int, ...]


# ---------------------------------------------------------------- shapes


class GraphView(Protocol):
    """What shape inference reads of a graph: a NetworkIR, or the Builder's graph while it grows."""

    def op(self, node: int) -> Op: ...
    def inputs(self, node: int) -> list[int]: ...


def infer_shapes(ir: NetworkIR) -> list[SpecError]:
    """Fill in each op's in_shapes and shape (C, H, W or (N,)); resolve shortcuts into ShortcutPlans."""
    errors: list[SpecError] = []
    for op in ir.ops():
        try:
            infer_op(ir, op)
        except SpecError as err:
            err.notes.extend(_context(ir, op))
            errors.append(err)
    return errors


def infer_op(graph: GraphView, op: Op) -> None:
    """One op's in_shapes and shape, from its inputs' (which must be inferred already); None where an
    input's shape is unknown. Lowering calls it too, on the graph built so far (`in.channels`)."""
    if op.kind is OpKind.SHORTCUT:
        return  # resolved together with its ADD, which knows the body's shape
    sources = graph.inputs(op.id)
    if op.kind is OpKind.ADD and graph.op(sources[1]).kind is OpKind.SHORTCUT:
        sources = sources[:1] + graph.inputs(sources[1])[:1]  # body, and x under the shortcut
    ins = [graph.op(i).shape for i in sources]
    op.in_shapes = ins
    op.shape = None
    if any(s is None for s in ins):
        return
    op.shape = _shape_of(graph, op, ins)


def _shape_of(ir: GraphView, op: Op, ins: list[Shape]) -> Shape:
    k = op.kind
    if k is OpKind.INPUT:
        return tuple(op.attrs["shape"])
    if k is OpKind.ADD:
        return _resolve_add(ir, op, ins)
    if k is OpKind.CONCAT:
        return _concat(op, ins)
    if k is OpKind.MUL:
        return _gate(op, ins)
    rule, x = REGISTRY[k], ins[0]
    if rule.shape is None:
        raise AssertionError(f"no shape rule for {k}")
    if rule.image_input and len(x) != 3:
        raise SpecError(
            f"`{k.value}` needs a CxHxW input, but it gets {fmt_shape(x)} (after an fc)", op.span, "put fc last"
        )
    try:
        return rule.shape(op.attrs, x)
    except OpProblem as problem:
        raise SpecError(str(problem), op.span, problem.hint) from None


def _resolve_add(ir: GraphView, op: Op, ins: list[Shape]) -> Shape:
    body, x = ins
    sc = ir.op(ir.inputs(op.id)[1])
    if sc.kind is not OpKind.SHORTCUT:  # a shortcut { } written by hand: no option adapts it
        if x != body:
            raise SpecError(
                f"the body gives {fmt_shape(body)} but the written `shortcut {{ }}` gives {fmt_shape(x)}",
                op.span,
                "make the shortcut's ops end in the body's shape (e.g. `conv 1x1, channels, stride: s; bn`)",
            )
        return body
    sources = ir.inputs(sc.id)
    if len(sources) == 2 and ir.op(sources[1]).shape not in (None, x):  # x and the preactivated x
        raise SpecError(
            f"this residual's `preact {{ }}` changes the shape ({fmt_shape(x)} -> "
            f"{fmt_shape(ir.op(sources[1]).shape)}): the identity and projection shortcuts would disagree",
            sc.span,
            "keep only ops that keep the shape in `preact { }` (bn, activations); downsample in the body",
        )
    plan = plan_shortcut(sc, x, body)
    sc.in_shapes = [x]
    sc.shortcut = plan
    sc.shape = body
    return body


def plan_shortcut(sc: Op, x: Shape, body: Shape) -> ShortcutPlan:
    option: ShortcutOption = sc.attrs["option"]
    if len(x) != 3 or len(body) != 3:
        raise SpecError("a residual needs CxHxW tensors on both paths", sc.span)
    (cx, hx, wx), (cb, hb, wb) = x, body
    same = x == body
    stride = hx // hb if hb and hx % hb == 0 and wx // wb == hx // hb and wx % wb == 0 else 0
    mismatch = f"the body gives {fmt_shape(body)} but the shortcut gives {fmt_shape(x)}"
    bn = bool(sc.attrs["projection_bn"])
    if option is ShortcutOption.C or (option is ShortcutOption.B and not same):
        if stride == 0:
            raise SpecError(
                f"{mismatch}: a 1x1 projection cannot map {hx}x{wx} to {hb}x{wb}",
                sc.span,
                "the body must keep the size or shrink it by a whole stride",
            )
        return ShortcutPlan("projection", stride, cx, cb, bn)
    if same:
        return ShortcutPlan("identity", 1, cx, cb, False)
    if option is ShortcutOption.A:
        if stride == 0 or cb < cx:
            why = "fewer channels" if cb < cx else f"a size {hx}x{wx} -> {hb}x{wb} that is no whole stride"
            raise SpecError(
                f"{mismatch}: option A pads channels with zeros and cannot handle {why}",
                sc.span,
                "use shortcut B or C (projection) here",
            )
        return ShortcutPlan("pad", stride, cx, cb, False)
    raise SpecError(
        f"{mismatch}: use shortcut A, B or C", sc.span, "an identity shortcut needs the body to keep the shape"
    )


def _concat(op: Op, ins: list[Shape]) -> Shape:
    x, body = ins
    if len(x) != 3 or len(body) != 3 or x[1:] != body[1:]:
        raise SpecError(
            f"a dense section joins its input {fmt_shape(x)} and its body's {fmt_shape(body)}: their sizes must match",
            op.span,
            "keep stride 1 inside `dense { }`; downsample between dense sections",
        )
    return (x[0] + body[0], x[1], x[2])


def _gate(op: Op, ins: list[Shape]) -> Shape:
    """x * g: the gate g has x's channels, and x's size or 1x1 (one weight per channel, broadcast)."""
    x, g = ins
    if len(x) != 3 or len(g) != 3 or g[0] != x[0] or g[1:] not in ((1, 1), x[1:]):
        raise SpecError(
            f"a gate multiplies its input {fmt_shape(x)} by its body's {fmt_shape(g)}: the body must give "
            f"{x[0]}x1x1 (one weight per channel) or {fmt_shape(x)}",
            op.span,
            "end the body with a conv to `in.channels` channels and a `sigmoid`, after `avgpool global`",
        )
    return x


def _context(ir: NetworkIR, op: Op) -> list[Note]:
    """Name the block instance an op was expanded from."""
    if op.scope.block is None:
        return []
    section = ir.section(op.scope.section)
    inst = section.blocks[op.scope.block]
    if inst.def_span.source is op.span.source and inst.def_span.line <= op.span.line <= inst.def_span.end_line:
        return [
            Note(f"in block {op.scope.block + 1} of `{section.name}`, `{inst.definition}` used here", inst.call_span)
        ]
    return []


def check_output(ir: NetworkIR) -> list[SpecError]:
    out = ir.op(ir.output_node).shape
    if out is None:
        return []
    flat = 1
    for d in out:
        flat *= d
    if flat != ir.classes or (len(out) == 3 and out[1:] != (1, 1)):
        return [
            SpecError(
                f"the network ends with {fmt_shape(out)}, but classes is {ir.classes}",
                ir.op(ir.output_node).span,
                "end the head with `fc classes`, or with `avgpool global` after a conv to `classes` channels",
            )
        ]
    return []


# ---------------------------------------------------------------- params, FLOPs, layers


def count_params(ir: NetworkIR) -> None:
    """Op.params: trainable elements (conv weights, BN weight+bias, fc weight+bias)."""
    for op in ir.ops():
        op.params = _params_of(op)


def _params_of(op: Op) -> int:
    if op.kind is OpKind.SHORTCUT:
        plan: ShortcutPlan = op.shortcut
        if plan.mode != "projection":
            return 0
        return plan.in_channels * plan.out_channels + (2 * plan.out_channels if plan.bn else 0)
    rule = REGISTRY[op.kind].params
    return rule(op.attrs, op.in_shapes[0]) if rule is not None else 0


def count_flops(ir: NetworkIR) -> None:
    """Op.flops: multiply-accumulates of conv, fc and projection shortcuts (the paper's FLOPs)."""
    for op in ir.ops():
        op.flops = _flops_of(op)


def _flops_of(op: Op) -> int:
    if op.kind is OpKind.SHORTCUT and op.shortcut.mode == "projection":
        c, h, w = op.shape
        return h * w * c * op.shortcut.in_channels
    rule = REGISTRY[op.kind].flops
    return rule(op.attrs, op.in_shapes[0], op.shape) if rule is not None else 0


def count_acts(ir: NetworkIR) -> None:
    """Op.acts: pycls's activations (pycls/models/blocks.py, `*_cx`): the output elements, for one image, of
    convs, fcs, projection shortcuts and windowed pools; BN, activation functions, dropout, additions,
    concatenations, identity and zero-pad shortcuts and global average pooling count zero."""
    for op in ir.ops():
        projection = op.kind is OpKind.SHORTCUT and op.shortcut.mode == "projection"
        op.acts = numel(op.shape) if op.kind in COUNTED_ACTS or projection else 0


def count_layers(ir: NetworkIR) -> int:
    """The paper's depth: conv and fc layers on the main path (not projections, nor written shortcuts)."""
    return sum(1 for op in ir.ops() if _is_layer(op))


def _is_layer(op: Op) -> bool:
    return op.kind in WEIGHTED and op.role is Role.MAIN


def summarize(ir: NetworkIR) -> None:
    """Totals and per-section figures into ir.totals."""
    sections = []
    for s in ir.sections:
        ops = [ir.op(n) for n in s.nodes]
        sections.append(
            SectionFigures(
                name=s.name,
                kind=s.kind,
                output=list(ops[-1].shape) if ops else None,
                blocks=len(s.blocks),
                description=s.description,
                params=sum(o.params for o in ops),
                flops=sum(o.flops for o in ops),
                layers=sum(1 for o in ops if _is_layer(o)),
                activations=sum(o.acts for o in ops),
            )
        )
    params = flops = layers = acts = 0
    expected: list[float] = []  # summed by sum() below, as before (3.12's sum() compensates floats)
    for o in ir.ops():  # one walk for every total
        params += o.params
        flops += o.flops
        layers += _is_layer(o)
        acts += o.acts
        expected.append(_expected_flops(ir, o))
    ir.totals = Totals(
        params=params,
        flops=flops,
        layers=layers,
        ops=ir.graph.number_of_nodes(),
        expected_flops=round(sum(expected)),
        activations=acts,
        sections=sections,
    )


def _expected_flops(ir: NetworkIR, op: Op) -> float:
    """Training-time FLOPs under stochastic depth: a residual body runs with its survival probability
    (per batch; dropped per sample, it runs for the whole batch and is masked)."""
    if op.residual is None or op.kind in (OpKind.SHORTCUT, OpKind.ADD) or ir.survival_mode == "per_sample":
        return op.flops
    return op.flops * ir.residuals[op.residual].survival


def check_expectations(ir: NetworkIR) -> list[SpecError]:
    measures = {"layers": ir.totals.layers, "params": ir.totals.params, "flops": ir.totals.flops}
    errors = []
    for exp in ir.expectations:
        try:
            ok, detail = exp.check(measures)
        except SpecError as err:
            errors.append(err)
            continue
        if not ok:
            errors.append(SpecError(f"expectation failed: {exp.text}" + (f" ({detail})" if detail else ""), exp.span))
    return errors


def analyze(ir: NetworkIR) -> NetworkIR:
    """Run every pass; raise all errors found together."""
    errors = infer_shapes(ir)
    collect(errors)
    collect(check_output(ir))
    ir.verify()
    count_params(ir)
    count_flops(ir)
    count_acts(ir)
    summarize(ir)
    collect(check_expectations(ir))
    return ir
