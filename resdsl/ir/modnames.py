"""Module names: the `name:` options that choose the generated module's attribute paths, and so
its state_dict keys (torchvision's `features.0`, `features.denseblock1.denselayer1.norm1`).

An op in a block names its attribute in the block's class (`bn name: "norm1"`), or a position in
nn.Sequential containers of the class (`conv 1x1, c, name: "conv.0.0"`: torchvision's MobileNetV2). An op in the
stem or head, a stage (`stage dense1(name: "features.denseblock1.denselayer{n}")`) and the stem or
head as a whole (`head(name: "classifier.#")`) name paths from the network: dotted parts, each
an identifier; in a stage `{i}` is the use's index in the stage (0, 1, ...) and `{n}` its number
(1, 2, ...); a last part `#` is the next free position of its container, counting every module
(torchvision's `nn.Sequential` numbering), a stage's blocks laid out op by op.
"""

from __future__ import annotations

import keyword
import re

# Public attributes and methods of torch.nn.Module (torch 2.13; tests/test_naming.py compares with
# the installed torch): a module registered under one of them breaks the class or shadows a method.
MODULE_ATTRIBUTES = frozenset(
    """T_destination add_module apply bfloat16 buffers call_super_init children compile cpu cuda double
    dump_patches eval extra_repr float forward get_buffer get_extra_state get_parameter get_submodule half
    ipu load_state_dict modules mtia named_buffers named_children named_modules named_parameters parameters
    register_backward_hook register_buffer register_forward_hook register_forward_pre_hook
    register_full_backward_hook register_full_backward_pre_hook register_load_state_dict_post_hook
    register_load_state_dict_pre_hook register_module register_parameter register_state_dict_post_hook
    register_state_dict_pre_hook requires_grad_ set_extra_state set_submodule share_memory state_dict to
    to_empty train training type xpu zero_grad""".split()
)
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
EXAMPLE = 'e.g. `name: "features.denseblock1.denselayer{n}"` or `name: "features.#"`'


def name_problem(name: str) -> str | None:
    """Why one attribute name (a path's part) cannot name a module of a generated class, or None."""
    if name.startswith("_"):
        return "a module name may not begin with an underscore (Python's and nn.Module's own attributes)"
    if name in MODULE_ATTRIBUTES:
        return f"`{name}` is an attribute of every nn.Module; a module of that name would break the class"
    if keyword.iskeyword(name):
        return f"`{name}` is a Python keyword"
    return None


def path_problem(text: str, *, dotted: bool, indexed: bool = False) -> str | None:
    """Why `text` cannot name a module, or None. `dotted`: a path from the network (else one
    attribute of a block's class); `indexed`: `{i}` and `{n}` may appear (a stage's name)."""
    if not dotted:
        if not _IDENT.match(text) or keyword.iskeyword(text):
            return "a name inside a block is one attribute: letters, digits and underscores, not a Python keyword"
        return name_problem(text)
    parts = text.split(".")
    for k, part in enumerate(parts):
        if part == "#":
            if k != len(parts) - 1 or k == 0:
                return "`#` (the next position of a container) is the last part of a path, after the container"
            continue
        filled = part.replace("{i}", "0").replace("{n}", "1") if indexed else part
        if filled.isdigit() and k > 0 and (part != filled or str(int(part)) == part):
            continue  # `layer1.{i}`, `features.18.0`: a position in a container
        if not _IDENT.match(filled) or keyword.iskeyword(filled):
            allowed = ", `{i}`, `{n}`" if indexed else ""
            return (
                f"`{part}` is not a module name: each part is letters, digits and underscores{allowed}, "
                "a position after the first (`features.0`) or a last `#`"
            )
        problem = name_problem(filled)
        if problem is not None:
            return problem
    return None


def is_indexed(text: str) -> bool:
    """Whether a stage's pattern tells its uses apart."""
    return "{i}" in text or "{n}" in text or text.endswith(".#")


def fill(pattern: str, index: int) -> str:
    """A stage's pattern for its use at `index` (0-based)."""
    return pattern.replace("{i}", str(index)).replace("{n}", str(index + 1))
