"""Checks a generated model.py against the IR it came from: built on the meta device, its
parameter count, stage shapes, output shape and multiply-adds must equal the analysis."""

from __future__ import annotations

from typing import Any

from resdsl.ir.graph import NetworkIR


def load_module(source: str, name: str = "resdsl_generated_model"):
    """Execute generated source as a fresh module."""
    import types

    module = types.ModuleType(name)
    module.__file__ = f"<{name}>"
    exec(compile(source, module.__file__, "exec"), module.__dict__)
    return module


def measure_model(
    model, input_shape: tuple[int, ...], stage_names: list[str] | dict[str, tuple[str, str]]
) -> dict[str, Any]:
    """Parameter count, stage output shapes (`stage_names`: module names, or label -> the paths of the
    stage's first and last module, as `ir.paths.stage_modules` gives them), stem output shape, output shape and the MACs of every
    conv and linear layer, from one forward pass of a batch of 1 (meta tensors work)."""
    import torch
    from torch import nn

    shapes: dict[str, tuple[int, ...]] = {}
    macs = [0]
    hooks = []

    def count(module, inputs, output) -> None:
        if isinstance(module, nn.Conv2d):
            kh, kw = module.kernel_size
            macs[0] += output[0].numel() * (module.in_channels // module.groups) * kh * kw
        elif isinstance(module, nn.Conv1d):  # across channels (ChannelConv1d): k per output
            macs[0] += output[0].numel() * module.in_channels * module.kernel_size[0]
        elif isinstance(module, nn.Linear):
            macs[0] += output[0].numel() * module.in_features  # at each position, over channels (PointwiseLinear)

    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Conv1d, nn.Linear)):
            hooks.append(m.register_forward_hook(count))
    paths = stage_names if isinstance(stage_names, dict) else {name: (name, name) for name in stage_names}
    for name, (_, last) in paths.items():
        stage = model.get_submodule(last)
        hooks.append(
            stage.register_forward_hook(lambda m, i, o, name=name: shapes.__setitem__(name, tuple(o.shape[1:])))
        )
    if paths:
        first = model.get_submodule(next(iter(paths.values()))[0])
        hooks.append(first.register_forward_pre_hook(lambda m, i: shapes.__setitem__("<stem>", tuple(i[0].shape[1:]))))
    device = next(model.parameters()).device
    model.eval()
    with torch.no_grad():
        out = model(torch.zeros((1, *input_shape), device=device))
    for h in hooks:
        h.remove()
    return {
        "params": sum(p.numel() for p in model.parameters()),
        "shapes": shapes,
        "output": tuple(out.shape[1:]),
        "macs": macs[0],
    }


def verify_model(ir: NetworkIR, source: str) -> list[str]:
    """Build the generated module on the meta device and compare it with the IR: parameter
    count, each stage's output shape, the output shape and the FLOPs. Returns the mismatches."""
    import torch

    from resdsl.ir.paths import stage_modules

    paths = stage_modules(ir)  # label (`layer1`, or the stage's name in a named layout) -> modules
    stages = [s for s in ir.sections if s.kind == "stage"]
    labelled = (
        [(s, label) for s, label in zip(stages, paths)]
        if "layer1" in paths
        else [(s, s.name) for s in stages if s.name in paths]
    )
    try:
        module = load_module(source)
        with torch.device("meta"):
            model = module.build_model()
        got = measure_model(model, ir.input_shape, paths)
    except Exception as err:  # noqa: BLE001 - any failure of generated code is the generator's bug
        return [f"the generated module fails to build or run: {type(err).__name__}: {err}"]
    problems = []
    if got["params"] != ir.totals.params:
        problems.append(f"parameters: the module has {got['params']:,}, the IR {ir.totals.params:,}")
    out_of: dict[int, tuple[int, ...]] = {}  # section -> its output shape (an empty stage passes its input on)
    shape = tuple(ir.input_shape)
    for s in ir.sections:
        if s.nodes:
            shape = ir.op(s.nodes[-1]).shape
        out_of[id(s)] = shape
    for s, name in labelled:
        want = out_of[id(s)]
        if got["shapes"].get(name) != want:
            problems.append(f"stage {s.name} ({name}): the module gives {got['shapes'].get(name)}, the IR {want}")
    sections = ir.sections
    if stages and sections[0].kind == "stem" and sections[0].nodes:
        want = ir.op(sections[0].nodes[-1]).shape
        if got["shapes"].get("<stem>") != want:
            problems.append(f"stem: the module gives {got['shapes'].get('<stem>')}, the IR {want}")
    if got["output"] != ir.output_shape:
        problems.append(f"output: the module gives {got['output']}, the IR {ir.output_shape}")
    if got["macs"] != ir.totals.flops:
        problems.append(f"FLOPs: the module's convs and linears do {got['macs']:,}, the IR {ir.totals.flops:,}")
    return problems
