"""How each op kind becomes a PyTorch module: one table for stems, heads, block classes and named
trees. The arguments come as Python source text: literal values where the graph gives them (a stem
or head op) or expressions of a block's own arguments (a block's class); `c_in` is the input's
channels (an fc: its input features), `dims` 2 for a CxHxW input and 1 for a vector (BatchNorm1d).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from resdsl.backends.pytorch.pyexpr import paren
from resdsl.ir.graph import Op
from resdsl.ir.ops import ACTIVATIONS, OpKind

Args = Mapping[str, str]


def conv_module(
    c_in: str, c_out: str, kernel: str, stride: str, pad: str, bias: str, groups: str, dilation: str = "1"
) -> str:
    args = [c_in, c_out, kernel]
    if stride != "1":
        args.append(f"stride={stride}")
    if pad != "0":
        args.append(f"padding={pad}")
    if dilation != "1":
        args.append(f"dilation={dilation}")
    if groups != "1":
        args.append(f"groups={groups}")
    if bias != "True":
        args.append(f"bias={bias}")
    return f"nn.Conv2d({', '.join(args)})"


def dilated_pad(pad: str, dilation: str) -> str:
    """A conv's derived padding (a number, a `(h, w)` tuple or an expression) times its dilation."""
    if pad == "1":
        return dilation
    if pad.isdigit() and dilation.isdigit():
        return str(int(pad) * int(dilation))
    pair = re.fullmatch(r"\((\d+), (\d+)\)", pad)
    if pair:
        return "(" + ", ".join(dilated_pad(p, dilation) for p in pair.groups()) + ")"
    return f"{paren(dilation)} * {paren(pad)}"


def pool_module(kind: OpKind, kernel: str, stride: str, pad: str, ceil: str = "False", count_pad: str = "True") -> str:
    """PyTorch's stride defaults to the kernel, as resdsl's does for square kernels."""
    cls = "nn.MaxPool2d" if kind is OpKind.MAXPOOL else "nn.AvgPool2d"
    args = [kernel]
    if stride != kernel or kernel.startswith("("):
        args.append(f"stride={stride}")
    if pad != "0":
        args.append(f"padding={pad}")
    if ceil != "False":
        args.append(f"ceil_mode={ceil}")
    if count_pad != "True" and kind is OpKind.AVGPOOL:
        args.append(f"count_include_pad={count_pad}")
    return f"{cls}({', '.join(args)})"


def _pool(kind: OpKind) -> Callable[[Args, str, int], str]:
    return lambda a, c, d: pool_module(
        kind, a["kernel"], a["stride"], a["pad"], a.get("ceil", "False"), a.get("count_pad", "True")
    )


def _norm_options(a: Args, defaults: Mapping[str, str]) -> str:
    """`, eps=0.001`: a norm's options other than PyTorch's defaults (none written: today's code)."""
    return "".join(f", {name}={a[name]}" for name, default in defaults.items() if a.get(name, default) != default)


def _fc(a: Args, c: str, d: int) -> str:
    return f"nn.Linear({c}, {a['out']}" + ("" if a["bias"] == "True" else f", bias={a['bias']}") + ")"


def _conv1d(a: Args, c: str, d: int) -> str:
    k = a["k"]
    pad = str(int(k) // 2) if k.isdigit() else f"{paren(k)} // 2"
    return f"ChannelConv1d(1, 1, {k}, padding={pad}" + (", bias=False" if a["bias"] != "True" else "") + ")"


def _float(text: str) -> str:
    """A float argument's text: a literal as it is, an expression of a block's argument made a float."""
    return text if re.fullmatch(r"[\d.]+(e-?\d+)?", text) and not text.isdigit() else f"float({text})"


def _pointwise(a: Args, c: str, d: int) -> str:
    return f"PointwiseLinear({c}, {a['out']}" + ("" if a["bias"] == "True" else f", bias={a['bias']}") + ")"


# Classes a generated file defines where it uses their kind, in this order (model.py.j2 writes them
# after the shortcut helpers). Each keeps the state_dict keys of the torch module it extends.
HELPERS: dict[OpKind, str] = {
    OpKind.LAYERNORM: '''class LayerNorm2d(nn.LayerNorm):
    """LayerNorm over the channels of an NCHW tensor, at each position (torchvision's convnext)."""

    def forward(self, x: Tensor) -> Tensor:
        return super().forward(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)''',
    OpKind.CONV1D: '''class ChannelConv1d(nn.Conv1d):
    """nn.Conv1d(1, 1, k) across the channels of an NxCx1x1 tensor (ECA-Net's gate; timm's EcaModule)."""

    def forward(self, x: Tensor) -> Tensor:
        return super().forward(x.view(x.shape[0], 1, -1)).view(x.shape)''',
    OpKind.POINTWISE: '''class PointwiseLinear(nn.Linear):
    """nn.Linear over the channels of an NCHW tensor, at each position (ConvNeXt's pointwise layers)."""

    def forward(self, x: Tensor) -> Tensor:
        return super().forward(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)''',
}


# Stateless activations: one module per kind and class, shared by its uses (ReLU: in place where safe).
ACTIVATION_MODULES: dict[OpKind, str] = {
    OpKind.RELU6: "nn.ReLU6()",
    OpKind.SIGMOID: "nn.Sigmoid()",
    OpKind.SILU: "nn.SiLU()",
    OpKind.HARDSWISH: "nn.Hardswish()",
    OpKind.GELU: "nn.GELU()",
    OpKind.HARDSIGMOID: "nn.Hardsigmoid()",
}
assert set(ACTIVATION_MODULES) | {OpKind.RELU} == set(ACTIVATIONS), "every activation needs a module here"

MODULES: dict[OpKind, Callable[[Args, str, int], str]] = {
    OpKind.CONV: lambda a, c, d: conv_module(
        c, a["channels"], a["kernel"], a["stride"], a["pad"], a["bias"], a["groups"], a.get("dilation", "1")
    ),
    OpKind.BN: lambda a, c, d: f"nn.BatchNorm{d}d({c}{_norm_options(a, {'eps': '1e-05', 'momentum': '0.1'})})",
    OpKind.LAYERNORM: lambda a, c, d: f"LayerNorm2d({c}, eps={a.get('eps', '1e-06')})",
    OpKind.POINTWISE: _pointwise,
    OpKind.LAYERSCALE: lambda a, c, d: f"nn.Parameter(torch.full(({c}, 1, 1), {_float(a['init'])}))",
    OpKind.CONV1D: _conv1d,
    OpKind.MAXPOOL: _pool(OpKind.MAXPOOL),
    OpKind.AVGPOOL: _pool(OpKind.AVGPOOL),
    OpKind.GLOBAL_AVGPOOL: lambda a, c, d: "nn.AdaptiveAvgPool2d(1)",
    OpKind.ADAPTIVE_AVGPOOL: lambda a, c, d: f"nn.AdaptiveAvgPool2d({a['size']})",
    OpKind.FC: _fc,
    OpKind.DROPOUT: lambda a, c, d: f"nn.Dropout({a['p']})",
    OpKind.PLACEHOLDER: lambda a, c, d: "nn.Identity()",
    **{kind: (lambda a, c, d, text=text: text) for kind, text in ACTIVATION_MODULES.items()},
}


@dataclass(frozen=True)
class Behaviour:
    """What the writers must know of a kind beyond its module."""

    shared_in_place: bool = False  # one module per class, in place where the input may change (ReLU)
    stateless: bool = False  # no parameters or buffers: one module may serve every use of its kind
    flattens: bool = False  # reads a vector: a CxHxW input is flattened first; its `c_in` is the input's size
    output_width: str | None = None  # the argument giving its output's channels (features)
    output_aliases_input: bool = False  # may return its input itself (dropout at test time): not fresh
    ends_branch_norm: bool = False  # `zero_init_residual` zeroes it where it ends a residual branch
    vector_form: bool = False  # has a 1-d form for the vector after an fc (`dims` 1: BatchNorm1d)
    float_args: tuple[str, ...] = ()  # arguments written as Python floats (`0.0`, not `0`)
    parameter: bool = False  # an nn.Parameter, not a module: its forward line is `self.<attr> * x`
    keeps_size: bool = False  # its output has its input's height and width (a norm, a pointwise linear)
    elementwise: bool = False  # acts on each value alone: a flatten may come before it (`dropout; fc`)


BEHAVIOUR: dict[OpKind, Behaviour] = {
    OpKind.CONV: Behaviour(output_width="channels"),
    OpKind.BN: Behaviour(ends_branch_norm=True, vector_form=True, float_args=("eps", "momentum")),
    OpKind.LAYERNORM: Behaviour(float_args=("eps",), keeps_size=True),
    OpKind.POINTWISE: Behaviour(output_width="out", keeps_size=True),
    OpKind.CONV1D: Behaviour(keeps_size=True),
    OpKind.LAYERSCALE: Behaviour(parameter=True, float_args=("init",), keeps_size=True),
    OpKind.RELU: Behaviour(shared_in_place=True, stateless=True, elementwise=True),
    OpKind.FC: Behaviour(flattens=True, output_width="out"),
    OpKind.DROPOUT: Behaviour(stateless=True, output_aliases_input=True, float_args=("p",), elementwise=True),
    OpKind.PLACEHOLDER: Behaviour(stateless=True, output_aliases_input=True, elementwise=True),
    **{kind: Behaviour(stateless=True, elementwise=True) for kind in ACTIVATION_MODULES},
}
PLAIN = Behaviour()


def behaviour(kind: OpKind) -> Behaviour:
    return BEHAVIOUR.get(kind, PLAIN)


def flatten_points(ops: Sequence[Op | None]) -> set[int]:
    """Where a run of modules flattens its CxHxW tensor: before each fc that reads one, moved back
    past the elementwise ops just before it (`avgpool global; dropout; fc` flattens after the pool,
    as torchvision's classifiers do, so `classifier` runs as one Sequential). None is a block use."""

    def elementwise(op: Op | None) -> bool:
        return op is not None and behaviour(op.kind).elementwise

    points = set()
    for k, op in enumerate(ops):
        if op is None or not behaviour(op.kind).flattens or len(op.in_shapes[0]) <= 1:
            continue
        start = k
        while start > 0 and elementwise(ops[start - 1]):
            start -= 1
        points.add(start)
    return points


def apply_text(kind: OpKind, module: str, x: str) -> str:
    """How forward applies an op's module (or parameter) `module` to `x`."""
    return f"{module} * {x}" if behaviour(kind).parameter else f"{module}({x})"


def module_text(kind: OpKind, args: Args, c_in: str, dims: int = 2, inplace: bool = True) -> str | None:
    """The module of one op, or None for a kind without one (the input, shortcuts, merges)."""
    if behaviour(kind).shared_in_place:
        return "nn.ReLU(inplace=True)" if inplace else "nn.ReLU()"
    rule = MODULES.get(kind)
    return rule(args, c_in, dims) if rule is not None else None
