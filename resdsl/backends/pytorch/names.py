"""Python names for generated code: classes, locals and attributes that cannot clash or inject.

Identifiers in the output come only from spec names the grammar accepted (letters, digits,
underscores), made safe against Python keywords and the file's own names; spec text copied into
comments is stripped of control characters.
"""

from __future__ import annotations

import keyword
import re

RESERVED = set(keyword.kwlist) | set(keyword.softkwlist) | {
    "self", "x", "out", "in_channels", "out_channels", "shortcut", "downsample", "survival", "plain", "torch",
    "nn", "F", "Tensor", "super", "int", "float", "bool", "str", "tuple", "range", "unit", "build_model",
    "blocks", "layers", "num_classes", "math",
}  # fmt: skip
MODULE_NAMES = {"ZeroPadShortcut", "projection", "survival_probability", "INPUT_SHAPE", "NUM_CLASSES"}
_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029\x85]")


def camel(name: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in name.split("_") if part) or "Block"


def safe_local(name: str) -> str:
    return name + "_" if name in RESERVED or keyword.iskeyword(name) else name


def local_names(formals: list[str], avoid: set[str] = frozenset()) -> dict[str, str]:
    """Each formal's Python name: `safe_local`, then `_`s until it is neither another formal's
    name (`def` and `def_` become `def__` and `def_`) nor one of `avoid` (the file's classes and
    module-level names, which a parameter would hide: `ZeroPadShortcut`, `BasicBlock`)."""
    out: dict[str, str] = {}
    for name in formals:
        local = safe_local(name)
        while local in avoid or local in out.values() or (local != name and local in formals):
            local += "_"
        out[name] = local
    return out


def clean_comment(text: str) -> str:
    return _CONTROL.sub(" ", text)


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


def attr_name(base: str, totals: dict[str, int], counters: dict[str, int]) -> str:
    """torchvision's names: conv1, bn1, ... always numbered; maxpool, avgpool, fc, dropout only
    when their scope (a class) has several."""
    counters[base] = counters.get(base, 0) + 1
    if base in ("conv", "bn") or totals.get(base, 0) > 1:
        return f"{base}{counters[base]}"
    return base


def reach(parts: list[str]) -> str:
    """A module path as Python reaches it: `conv.0.0` -> `conv[0][0]`, `self.features.3` -> `self.features[3]`."""
    return parts[0] + "".join(f"[{p}]" if p.isdigit() else f".{p}" for p in parts[1:])
