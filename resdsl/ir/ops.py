"""The op registry: one entry per op, everything the language, the passes and the report know about it.

An `OpDef` gives an op kind's name in a spec and the names other frameworks use for it (aliases), its
signature (arguments, checks, defaults), its shape rule, its parameters, FLOPs and activations, whether it
is one of the paper's layers, and the base of the attribute name its module gets (`conv` -> conv1, conv2;
None: a stateless function, one module per class). The back ends keep one table each for what is theirs:
the PyTorch module and forward line (backends/pytorch/optable.py) and the diagram's colour and label
(backends/viz/style.py). Structural kinds (the input, shortcuts and merges) have entries without a name:
the passes resolve them from the graph. docs/contributing.md walks through adding an op.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from resdsl.lang.argspec import (
    Param,
    Signature,
    _bool,
    _kernel,
    _nonneg,
    _pool_kernel,
    _positive,
    _positive_real,
    _prob,
    _unit,
)

Shape = tuple[int, ...]
Attrs = dict[str, Any]


class OpKind(Enum):
    __hash__ = object.__hash__  # C's, not Enum's hash(self._name_) in Python: kinds key the registry's dicts
    INPUT = "input"
    CONV = "conv"
    BN = "bn"
    CONV1D = "conv1d"  # a 1-d conv across the channels of a Cx1x1 tensor (ECA-Net's gate)
    LAYERNORM = "layernorm"  # over the channels at each position (ConvNeXt's LayerNorm2d)
    LAYERSCALE = "layerscale"  # a learnt scale per channel, a [C, 1, 1] parameter (ConvNeXt's `layer_scale`)
    POINTWISE = "pointwise"  # a linear map of the channels at each position (ConvNeXt's nn.Linear in NHWC)
    RELU = "relu"
    RELU6 = "relu6"
    SIGMOID = "sigmoid"
    SILU = "silu"
    HARDSWISH = "hardswish"
    HARDSIGMOID = "hardsigmoid"  # relu6(x + 3) / 6: MobileNetV3's gate
    GELU = "gelu"
    MAXPOOL = "maxpool"
    AVGPOOL = "avgpool"
    GLOBAL_AVGPOOL = "global_avgpool"
    ADAPTIVE_AVGPOOL = "adaptive_avgpool"  # average pooling to a fixed output size (VGG's 7x7 head)
    FC = "fc"
    DROPOUT = "dropout"
    PLACEHOLDER = "placeholder"  # nn.Identity where the original holds a parameterless module (a Permute)
    SHORTCUT = "shortcut"  # the skip path of a residual: identity, zero-pad (A) or projection
    ADD = "add"  # residual merge: body + shortcut
    CONCAT = "concat"  # dense merge: [input, body] along channels
    MUL = "mul"  # gate merge: input * body (a channel gate broadcast over the input)


class OpProblem(Exception):
    """An op that cannot take its input (a kernel larger than the image): the passes locate it."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint


@dataclass(frozen=True)
class OpDef:
    kind: OpKind
    name: str | None = None  # as written in a spec; None: a form of another op, or structural
    signature: Signature | None = None
    aliases: tuple[str, ...] = ()  # other frameworks' names, suggested when one is written
    written: str | None = None  # how a spec writes it where that is not `name` (`avgpool global`)
    shape: Callable[[Attrs, Shape], Shape] | None = None  # a one-input op's output shape
    image_input: bool = True  # needs a CxHxW input (not the vector after an fc)
    params: Callable[[Attrs, Shape], int] | None = None  # trainable elements, from its input shape
    flops: Callable[[Attrs, Shape, Shape], int] | None = None  # multiply-adds, from its input and output
    counts_acts: bool = False  # pycls counts its output elements as activations
    layer: bool = False  # a weighted layer: counted in the paper's depth on the main path
    module: str | None = None  # the base of its module's attribute name; None: a stateless function
    activation: bool = False  # an activation function
    parameter: bool = False  # a bare parameter of its class, not a module: never inside a container
    placeholder: bool = False  # only keeps a position in a container (nn.Identity): never outside one
    numbered: bool = False  # its modules are always numbered (conv1, bn1), not only where a class has several
    # Defaults that follow from the kernel: argument -> (the rule on the kernel's (height, width), and the
    # operator and operand of the expression a template writes for a kernel that is a block argument:
    # `k // 2`; None: `k` itself).
    derived: dict[str, tuple[Callable[[tuple[int, int]], Any], str | None, Any]] = field(default_factory=dict)
    # A derived default multiplied by another argument where that is given (a conv's padding by its
    # dilation: `dilation * (k // 2)` keeps the size for odd kernels).
    derived_scale: dict[str, str] = field(default_factory=dict)
    global_form: OpKind | None = None  # the kind it takes with the kernel `global` (avgpool -> GLOBAL_AVGPOOL)
    check: Callable[[Attrs], tuple[str, int | None] | None] | None = None  # a use's arguments: (message, slot)

    def derive(self, name: str, attrs: Attrs) -> Any:
        """A default that follows from the kernel (`derived`), times its `derived_scale` argument where given."""
        value = self.derived[name][0](attrs["kernel"])
        by = self.derived_scale.get(name)
        return scaled(value, attrs[by]) if by is not None and attrs.get(by) is not None else value


def _same(attrs: Attrs, x: Shape) -> Shape:
    return x


def _pair(v: int | tuple[int, int]) -> tuple[int, int]:
    """A stride or padding, one number or (height, width), as (height, width)."""
    return (v[0], v[1]) if isinstance(v, tuple) else (v, v)


def out_size(n: int, k: int, s: int, p: int, ceil: bool) -> int:
    """PyTorch's output size of a window; with ceil_mode a last window that starts inside the
    (left-padded) input counts."""
    if not ceil:
        return (n + 2 * p - k) // s + 1
    out = -(-(n + 2 * p - k) // s) + 1
    return out - 1 if (out - 1) * s >= n + p else out


def scaled(value: int | tuple[int, int], factor: int) -> int | tuple[int, int]:
    """A derived default (one number or (height, width)) times a factor (OpDef.derived_scale)."""
    return (value[0] * factor, value[1] * factor) if isinstance(value, tuple) else value * factor


def _window(what: str, attrs: Attrs, x: Shape) -> Shape:
    c, h, w = x
    d = attrs.get("dilation") or 1
    kh, kw = (d * (k - 1) + 1 for k in attrs["kernel"])  # the dilated kernel's extent
    (sh, sw), (ph, pw) = _pair(attrs["stride"]), _pair(attrs["pad"])
    if kh > h + 2 * ph or kw > w + 2 * pw:
        pad = f"{ph}x{pw}" if ph != pw else str(ph)
        dilated = "{}x{} dilated by {} ({}x{})".format(*attrs["kernel"], d, kh, kw) if d > 1 else f"{kh}x{kw}"
        raise OpProblem(
            f"{what} kernel {dilated} is larger than its {h}x{w} input"
            + (f" (padded by {pad})" if ph or pw else "")
            + ": the output size would reach 0",
            f"use a smaller kernel{' or dilation' if d > 1 else ''}, more padding, or fewer downsampling steps before it",
        )
    if sh > h + 2 * ph or sw > w + 2 * pw:
        raise OpProblem(
            f"{what} stride {sh}x{sw} is larger than its {h}x{w} input"
            + (f" (padded by {ph}x{pw})" if ph or pw else ""),
            f"every stride past {h + 2 * ph}x{w + 2 * pw} gives the same 1x1 output; use at most that",
        )
    if what != "conv" and (ph > kh // 2 or pw > kw // 2):
        raise OpProblem(
            f"{what} padding {ph}x{pw} is more than half its {kh}x{kw} kernel",
            f"PyTorch's pools take at most half the kernel as padding: pad: {min(ph, kh // 2)} here",
        )
    if what == "conv":
        if c % attrs["groups"]:
            raise OpProblem(f"{c} input channels do not split into {attrs['groups']} groups")
        c = attrs["channels"]
    ceil = bool(attrs.get("ceil"))
    return (c, out_size(h, kh, sh, ph, ceil), out_size(w, kw, sw, pw, ceil))


def numel(shape: Shape) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


def _conv_params(a: Attrs, x: Shape) -> int:
    kh, kw = a["kernel"]
    return x[0] // a["groups"] * kh * kw * a["channels"] + (a["channels"] if a["bias"] else 0)


def _conv_flops(a: Attrs, x: Shape, y: Shape) -> int:
    kh, kw = a["kernel"]
    return y[1] * y[2] * a["channels"] * (x[0] // a["groups"]) * kh * kw


def same_padding(kernel: tuple[int, int]) -> int | tuple[int, int]:
    """A conv's default padding: half the kernel in each dimension (`same` output at stride 1 for
    odd kernels); one number for a square kernel, (height, width) for another."""
    ph, pw = kernel[0] // 2, kernel[1] // 2
    return ph if ph == pw else (ph, pw)


def kernel_stride(kernel: tuple[int, int]) -> int | tuple[int, int]:
    """A pool's default stride: its kernel (PyTorch's default too)."""
    return kernel[0] if kernel[0] == kernel[1] else (kernel[0], kernel[1])


MAX_CHANNELS = 1 << 20


def _width_check(channels: int) -> tuple[str, int | None] | None:
    if channels > MAX_CHANNELS:
        return f"{channels:,} channels is more than the limit of {MAX_CHANNELS:,}", 0
    return None


def _conv_check(a: Attrs) -> tuple[str, int | None] | None:
    if a["channels"] > MAX_CHANNELS:
        return f"{a['channels']:,} channels is more than the limit of {MAX_CHANNELS:,}", 1
    if a["channels"] % a["groups"]:
        return f"{a['channels']} channels do not split into {a['groups']} groups", None
    return None


def _across_channels(a: Attrs, x: Shape) -> Shape:
    if x[1:] != (1, 1):
        raise OpProblem(
            f"`conv1d` runs across the channels of a Cx1x1 tensor, but it gets {'x'.join(map(str, x))}",
            "pool first, as ECA-Net's gate does: `avgpool global; conv1d 3; sigmoid`",
        )
    return x


def _odd(a: Attrs) -> tuple[str, int | None] | None:
    if a["k"] % 2 == 0:
        return f"`conv1d` needs an odd kernel, got {a['k']}: only an odd one keeps the number of channels", 0
    return None


def _activation(kind: OpKind, name: str, *aliases: str) -> OpDef:
    return OpDef(kind, name, Signature([]), aliases, shape=_same, image_input=False, activation=True)


_KERNEL = "a kernel size such as 3x3 or 3"

REGISTRY: dict[OpKind, OpDef] = {
    d.kind: d
    for d in [
        OpDef(OpKind.INPUT),
        OpDef(
            OpKind.CONV, "conv", Signature(
                [
                    Param("kernel", _kernel, _KERNEL, required=True),
                    Param("channels", _positive, "a positive whole number of channels", required=True),
                ],
                [
                    Param("stride", _positive, "a positive whole number", 1),
                    Param("pad", _nonneg, "a whole number >= 0"),
                    Param("bias", _bool, "true or false", False),
                    Param("groups", _positive, "a positive whole number", 1),
                    Param("dilation", _positive, "a positive whole number"),  # None: 1, kept out of the IR
                ],
                "conv 3x3, 64, stride: 2",
            ),
            ("conv2d", "convolution"),
            shape=lambda a, x: _window("conv", a, x), params=_conv_params, flops=_conv_flops,
            counts_acts=True, layer=True, module="conv", numbered=True,
            derived={"pad": (same_padding, "//", 2)}, derived_scale={"pad": "dilation"}, check=_conv_check,
        ),
        OpDef(
            OpKind.BN, "bn", Signature(
                [],
                [  # None: PyTorch's defaults (1e-5, 0.1), kept out of the IR and the code
                    Param("eps", _positive_real, "a positive number"),
                    Param("momentum", _unit, "a number in [0, 1]"),
                ],
                "bn eps: 0.001, momentum: 0.01",
            ),
            ("batchnorm", "batch_norm", "bn2d", "batchnorm2d"),
            shape=_same, image_input=False, params=lambda a, x: 2 * x[0], module="bn", numbered=True,
        ),
        OpDef(
            OpKind.CONV1D, "conv1d", Signature(
                [Param("k", _positive, "an odd kernel size such as 3", required=True)],
                [Param("bias", _bool, "true or false", False)],
                "conv1d 3",
            ),
            ("conv_1d", "conv1d_channels"),
            shape=_across_channels, params=lambda a, x: a["k"] + (1 if a["bias"] else 0),
            flops=lambda a, x, y: y[0] * a["k"], counts_acts=True, layer=True, module="conv", numbered=True,
            check=_odd,
        ),
        OpDef(
            OpKind.LAYERNORM, "layernorm", Signature(
                [],
                [Param("eps", _positive_real, "a positive number")],  # None: 1e-6, torchvision's convnext
                "layernorm eps: 1e-6",
            ),
            ("layer_norm", "layernorm2d", "ln"),
            shape=_same, params=lambda a, x: 2 * x[0], module="norm", numbered=True,
        ),
        OpDef(
            OpKind.LAYERSCALE, "layerscale", Signature(
                [Param("init", _positive_real, "a positive number (the scale's initial value)", 1e-6)],
                [],
                "layerscale 1e-6",
            ),
            ("layer_scale", "gamma"),
            shape=_same, params=lambda a, x: x[0], module="layer_scale", parameter=True,
        ),
        OpDef(
            OpKind.POINTWISE, "pointwise", Signature(
                [Param("out", _positive, "a positive whole number of channels", required=True)],
                [Param("bias", _bool, "true or false", True)],
                "pointwise 4 * in.channels",
            ),
            ("pwconv", "linear_c"),
            shape=lambda a, x: (a["out"], x[1], x[2]),
            params=lambda a, x: x[0] * a["out"] + (a["out"] if a["bias"] else 0),
            flops=lambda a, x, y: y[1] * y[2] * x[0] * a["out"], counts_acts=True, layer=True, module="pwconv",
            numbered=True, check=lambda a: _width_check(a["out"]),
        ),
        _activation(OpKind.RELU, "relu"),
        _activation(OpKind.RELU6, "relu6", "relu_6"),
        _activation(OpKind.SIGMOID, "sigmoid", "logistic"),
        _activation(OpKind.SILU, "silu", "swish"),
        _activation(OpKind.HARDSWISH, "hardswish", "hard_swish", "hswish"),
        _activation(OpKind.GELU, "gelu"),
        _activation(OpKind.HARDSIGMOID, "hardsigmoid", "hard_sigmoid", "hsigmoid"),
        OpDef(
            OpKind.MAXPOOL, "maxpool", Signature(
                [Param("kernel", _kernel, _KERNEL, required=True)],
                [
                    Param("stride", _positive, "a positive whole number"),
                    Param("pad", _nonneg, "a whole number >= 0", 0),
                    Param("ceil", _bool, "true or false", False),  # PyTorch's ceil_mode: a partial last window counts
                ],
                "maxpool 3x3, stride: 2, pad: 1",
            ),
            ("maxpool2d", "pool"), shape=lambda a, x: _window("maxpool", a, x), counts_acts=True, module="maxpool",
            derived={"stride": (kernel_stride, None, None)},
        ),
        OpDef(
            OpKind.AVGPOOL, "avgpool", Signature(
                [Param("kernel", _pool_kernel, "`global` or " + _KERNEL, required=True)],
                [
                    Param("stride", _positive, "a positive whole number"),
                    Param("pad", _nonneg, "a whole number >= 0", 0),
                    Param("ceil", _bool, "true or false", False),
                    Param("count_pad", _bool, "true or false", True),  # count_include_pad: padding zeros in the mean
                ],
                "avgpool global",
            ),
            ("avgpool2d",), shape=lambda a, x: _window("avgpool", a, x), counts_acts=True, module="avgpool",
            derived={"stride": (kernel_stride, None, None)}, global_form=OpKind.GLOBAL_AVGPOOL,
        ),
        OpDef(
            OpKind.GLOBAL_AVGPOOL, aliases=("gap", "globalavgpool"), written="avgpool global",
            shape=lambda a, x: (x[0], 1, 1), module="avgpool",
        ),
        OpDef(
            OpKind.ADAPTIVE_AVGPOOL, "adaptive_avgpool", Signature(
                [Param("size", _kernel, "an output size such as 7x7 or 7", required=True)],
                [],
                "adaptive_avgpool 7x7",
            ),
            shape=lambda a, x: (x[0], *a["size"]), module="avgpool",
        ),
        OpDef(
            OpKind.FC, "fc", Signature(
                [Param("out", _positive, "a positive whole number of outputs", required=True)],
                [Param("bias", _bool, "true or false", True)],
                "fc classes",
            ),
            ("linear", "dense"), shape=lambda a, x: (a["out"],), image_input=False,
            params=lambda a, x: numel(x) * a["out"] + (a["out"] if a["bias"] else 0),
            flops=lambda a, x, y: numel(x) * a["out"], counts_acts=True, layer=True, module="fc",
        ),
        OpDef(
            OpKind.DROPOUT, "dropout", Signature([Param("p", _prob, "a probability in [0, 1)", 0.5)], [], "dropout 0.5"), ("drop",),
            shape=_same, image_input=False, module="dropout",
        ),
        OpDef(
            OpKind.PLACEHOLDER, "placeholder", Signature([], [], 'placeholder name: "block.1"'), ("identity", "nn_identity"),
            shape=_same, image_input=False, module="placeholder", placeholder=True,
        ),
        OpDef(OpKind.SHORTCUT),
        OpDef(OpKind.ADD),
        OpDef(OpKind.CONCAT),
        OpDef(OpKind.MUL),
    ]
}  # fmt: skip

OPS: dict[str, Signature] = {d.name: d.signature for d in REGISTRY.values() if d.name and d.signature}
KIND_OF: dict[str, OpKind] = {d.name: d.kind for d in REGISTRY.values() if d.name}
OP_ALIASES: dict[str, str] = {
    a: d.written or d.name for d in REGISTRY.values() for a in d.aliases if d.written or d.name
}
WEIGHTED = tuple(k for k, d in REGISTRY.items() if d.layer)  # the paper's "layers"
COUNTED_ACTS = tuple(k for k, d in REGISTRY.items() if d.counts_acts)  # pycls's "acts", with projections
ACTIVATIONS = tuple(k for k, d in REGISTRY.items() if d.activation)
GLOBAL_FORMS = frozenset(d.global_form for d in REGISTRY.values() if d.global_form)  # `avgpool global`
