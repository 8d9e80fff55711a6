"""Python names for generated code: classes, locals and attributes that cannot clash or inject.

Identifiers in the output come only from spec names the grammar accepted (letters, digits,
underscores), made safe against Python keywords and the file's own names; spec text copied into
comments is stripped of control characters.
"""

from __future__ import annotations

import re

from resdsl.ir.pynames import RESERVED, Names, safe_local

__all__ = ["RESERVED", "Names", "safe_local"]

MODULE_NAMES = {"ZeroPadShortcut", "projection", "survival_probability", "INPUT_SHAPE", "NUM_CLASSES"}
MODULE_NAMES |= {"LayerNorm2d", "PointwiseLinear", "ChannelConv1d"}  # optable.HELPERS' classes
_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029\x85]")


# How the literature writes the families' names (torchvision's and timm's class names).
FAMILY_NAMES = {
    "resnet": "ResNet", "resnext": "ResNeXt", "seresnet": "SEResNet", "seresnext": "SEResNeXt",
    "densenet": "DenseNet", "mobilenet": "MobileNet", "vgg": "VGG", "nin": "NIN", "preact": "PreAct",
    "wrn": "WRN", "stochdepth": "StochDepth", "efficientnet": "EfficientNet", "convnext": "ConvNeXt",
    "regnet": "RegNet", "shufflenet": "ShuffleNet", "squeezenet": "SqueezeNet", "googlenet": "GoogLeNet",
    "mnasnet": "MNASNet", "pyramidnet": "PyramidNet", "res2net": "Res2Net", "alexnet": "AlexNet",
}  # fmt: skip
_WORD = re.compile(r"([A-Za-z]+)(.*)\Z", re.S)


def network_class_name(name: str) -> str:
    """The network's class: `resnet50` -> `ResNet50`, `mobilenet_v2` -> `MobileNetV2`,
    `wide_resnet50_2` -> `WideResNet50_2` (an underscore stays only between two numbers)."""
    out = ""
    for part in (p for p in name.split("_") if p):
        m = _WORD.match(part)
        word, rest = (m.group(1), m.group(2)) if m else ("", part)
        cased = FAMILY_NAMES.get(word.lower(), word[:1].upper() + word[1:]) + rest
        out += ("_" if out[-1:].isdigit() and cased[:1].isdigit() else "") + cased
    return out or "Network"


def camel(name: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in name.split("_") if part) or "Block"


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


def reach(parts: list[str]) -> str:
    """A module path as Python reaches it: `conv.0.0` -> `conv[0][0]`, `self.features.3` -> `self.features[3]`."""
    return parts[0] + "".join(f"[{p}]" if p.isdigit() else f".{p}" for p in parts[1:])
