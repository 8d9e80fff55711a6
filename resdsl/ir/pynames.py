"""Python names that module paths and generated code may use: unique, and never a keyword or one of
the generated file's own names (the IR decides module attributes with them: resdsl.ir.paths)."""

from __future__ import annotations

import keyword

# `out`, the forward's tensor, may name a parameter: no formal is read in forward (only in __init__).
RESERVED = set(keyword.kwlist) | set(keyword.softkwlist) | {
    "self", "x", "in_channels", "out_channels", "shortcut", "downsample", "survival", "plain", "torch",
    "nn", "F", "Tensor", "super", "int", "float", "bool", "str", "tuple", "range", "unit", "build_model",
    "blocks", "layers", "num_classes", "math",
}  # fmt: skip


def safe_local(name: str) -> str:
    return name + "_" if name in RESERVED or keyword.iskeyword(name) else name


class Names:
    """Unique Python names: `taken` grows as names are handed out."""

    def __init__(self, taken: set[str]) -> None:
        self.taken = set(taken)

    def get(self, wanted: str) -> str:
        name = wanted if not keyword.iskeyword(wanted) else wanted + "_"
        while name in self.taken:
            name += "_"
        self.taken.add(name)
        return name
