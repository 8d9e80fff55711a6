"""The diagrams' look: colours by op kind, fonts, legend names (the paper's palette)."""

from __future__ import annotations

from resdsl.ir.graph import OpKind

VIEWS = ("collapsed", "block", "expanded")
FORMATS = ("svg", "png", "pdf", "dot")
INSTALL_HINT = (
    "install Graphviz: `sudo apt-get install graphviz` (Debian/Ubuntu), `brew install graphviz` (macOS), "
    "or see https://graphviz.org/download/; `-o FILE.dot` works without it"
)

FONT = "Helvetica,Arial,sans-serif"

# Fill colour per op kind (the legend shows the ones a diagram uses).
COLOURS: dict[OpKind, str] = {
    OpKind.INPUT: "#e5e5e5",
    OpKind.CONV: "#9ecae1",
    OpKind.BN: "#fdd49e",
    OpKind.RELU: "#c7e9c0",
    OpKind.RELU6: "#c7e9c0",
    OpKind.SIGMOID: "#a1d99b",
    OpKind.SILU: "#c7e9c0",
    OpKind.HARDSWISH: "#c7e9c0",
    OpKind.GELU: "#c7e9c0",
    OpKind.MAXPOOL: "#fbb4c4",
    OpKind.AVGPOOL: "#fbb4c4",
    OpKind.GLOBAL_AVGPOOL: "#fbb4c4",
    OpKind.ADAPTIVE_AVGPOOL: "#fbb4c4",
    OpKind.FC: "#cbb8e3",
    OpKind.DROPOUT: "#d9d9d9",
    OpKind.SHORTCUT: "#d6604d",
    OpKind.ADD: "#fdae6b",
    OpKind.CONCAT: "#fdae6b",
    OpKind.MUL: "#fd8d3c",
}
LEGEND_NAMES: dict[OpKind, str] = {
    OpKind.INPUT: "input",
    OpKind.CONV: "conv",
    OpKind.BN: "batch norm",
    OpKind.RELU: "ReLU",
    OpKind.RELU6: "ReLU6",
    OpKind.SIGMOID: "sigmoid",
    OpKind.SILU: "SiLU",
    OpKind.HARDSWISH: "hardswish",
    OpKind.GELU: "GELU",
    OpKind.MAXPOOL: "pooling",
    OpKind.AVGPOOL: "pooling",
    OpKind.GLOBAL_AVGPOOL: "pooling",
    OpKind.ADAPTIVE_AVGPOOL: "pooling",
    OpKind.FC: "fc",
    OpKind.DROPOUT: "dropout",
    OpKind.ADD: "add / concat",
    OpKind.CONCAT: "add / concat",
    OpKind.MUL: "gate (multiply)",
}
SHORTCUT_COLOUR = COLOURS[OpKind.SHORTCUT]
EDGE_COLOUR = "#525252"
LARGE = 1500  # ops in an expanded drawing beyond which dot's layout effort is bounded
SECTION_FILL = {"stem": "#f0f0f0", "stage": "#ffffff", "head": "#f0f0f0"}
