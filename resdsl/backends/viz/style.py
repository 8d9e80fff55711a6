"""The diagrams' look: one table of how each op kind is drawn (colour, legend, label), fonts (the paper's palette)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from resdsl.ir.graph import Op, OpKind, fmt_shape

VIEWS = ("collapsed", "block", "expanded")
FORMATS = ("svg", "png", "pdf", "dot")
INSTALL_HINT = (
    "install Graphviz: `sudo apt-get install graphviz` (Debian/Ubuntu), `brew install graphviz` (macOS), "
    "or see https://graphviz.org/download/; `-o FILE.dot` works without it"
)

FONT = "Helvetica,Arial,sans-serif"


@dataclass(frozen=True)
class OpLook:
    """How a diagram draws one op kind: its fill, its legend entry, its label in the paper's wording
    (`3x3 conv, 128, /2`, `BN`, `fc 1000`) and a few characters for a collapsed node's strip."""

    colour: str
    legend: str | None  # None: not in the legend (the shortcut, drawn as an edge)
    label: Callable[[Op], str]
    abbrev: Callable[[Op], str]


def _text(text: str) -> Callable[[Op], str]:
    return lambda op: text


def _conv_label(op: Op) -> str:
    a = op.attrs
    kh, kw = a["kernel"]
    text = f"{kh}x{kw} conv, {a['channels']}"
    if a["stride"] > 1:
        text += f", /{a['stride']}"
    if a.get("groups", 1) > 1:
        text += f", groups {a['groups']}"
    if a.get("dilation", 1) > 1:
        text += f", dilation {a['dilation']}"
    return text


def _norm_label(text: str) -> Callable[[Op], str]:
    """`BN`, with the options that are not PyTorch's defaults: `BN, eps 0.001`."""

    def label(op: Op) -> str:
        return ", ".join([text, *(f"{name} {op.attrs[name]:g}" for name in ("eps", "momentum") if name in op.attrs)])

    return label


def _pool_label(kind: str) -> Callable[[Op], str]:
    def label(op: Op) -> str:
        kh, kw = op.attrs["kernel"]
        text = f"{kh}x{kw} {kind} pool"
        stride = op.attrs["stride"]
        if isinstance(stride, tuple):  # a non-square kernel's default stride
            return text + f", /{stride[0]}x{stride[1]}"
        return text + (f", /{stride}" if stride > 1 else "")

    return label


def _conv_abbrev(op: Op) -> str:
    kh, kw = op.attrs["kernel"]
    return f"{kh}x{kw}" + ("/2" if op.attrs["stride"] == 2 else "")


def _activation(name: str, colour: str = "#c7e9c0", legend: str | None = None) -> OpLook:
    return OpLook(colour, legend or name, _text(name), _text(name))


_POOL = "#fbb4c4"
LOOKS: dict[OpKind, OpLook] = {
    OpKind.INPUT: OpLook("#e5e5e5", "input", lambda op: f"input {fmt_shape(op.shape)}", _text("input")),
    OpKind.CONV: OpLook("#9ecae1", "conv", _conv_label, _conv_abbrev),
    OpKind.BN: OpLook("#fdd49e", "batch norm", _norm_label("BN"), _text("BN")),
    OpKind.CONV1D: OpLook("#9ecae1", "conv", lambda op: f"1-d conv across channels, k {op.attrs['k']}", _text("c1d")),
    OpKind.LAYERSCALE: OpLook("#fee391", "layer scale", lambda op: f"layer scale {op.attrs['init']:g}", _text("γ")),
    OpKind.LAYERNORM: OpLook("#fdd49e", "layer norm", _norm_label("LN"), _text("LN")),
    OpKind.POINTWISE: OpLook(
        "#c6dbef", "pointwise linear", lambda op: f"pointwise linear, {op.attrs['out']}", _text("pw")
    ),
    OpKind.RELU: _activation("ReLU"),
    OpKind.RELU6: _activation("ReLU6"),
    OpKind.SIGMOID: _activation("sigmoid", "#a1d99b"),
    OpKind.SILU: _activation("SiLU"),
    OpKind.HARDSWISH: _activation("hswish", legend="hardswish"),
    OpKind.GELU: _activation("GELU"),
    OpKind.HARDSIGMOID: _activation("hsigmoid", "#a1d99b", legend="hardsigmoid"),
    OpKind.MAXPOOL: OpLook(_POOL, "pooling", _pool_label("max"), _text("max")),
    OpKind.AVGPOOL: OpLook(_POOL, "pooling", _pool_label("avg"), _text("avg")),
    OpKind.GLOBAL_AVGPOOL: OpLook(_POOL, "pooling", _text("global avg pool"), _text("gap")),
    OpKind.ADAPTIVE_AVGPOOL: OpLook(
        _POOL, "pooling", lambda op: "adaptive avg pool to {}x{}".format(*op.attrs["size"]), _text("aap")
    ),
    OpKind.FC: OpLook("#cbb8e3", "fc", lambda op: f"fc {op.attrs['out']}", _text("fc")),
    OpKind.DROPOUT: OpLook("#d9d9d9", "dropout", lambda op: f"dropout {op.attrs['p']:g}", _text("drop")),
    OpKind.PLACEHOLDER: OpLook("#f0f0f0", "placeholder", _text("placeholder"), _text("·")),
    OpKind.SHORTCUT: OpLook("#d6604d", None, _text("shortcut"), _text("shortcut")),
    OpKind.ADD: OpLook("#fdae6b", "add / concat", _text("+"), _text("+")),
    OpKind.CONCAT: OpLook("#fdae6b", "add / concat", _text("concat"), _text("cat")),
    OpKind.MUL: OpLook("#fd8d3c", "gate (multiply)", _text("×"), _text("×")),
}
COLOURS: dict[OpKind, str] = {kind: look.colour for kind, look in LOOKS.items()}
LEGEND_NAMES: dict[OpKind, str] = {kind: look.legend for kind, look in LOOKS.items() if look.legend}
SHORTCUT_COLOUR = COLOURS[OpKind.SHORTCUT]
EDGE_COLOUR = "#525252"
LARGE = 1500  # ops in an expanded drawing beyond which dot's layout effort is bounded
SECTION_FILL = {"stem": "#f0f0f0", "stage": "#ffffff", "head": "#f0f0f0"}
