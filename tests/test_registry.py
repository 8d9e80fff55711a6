"""One place per op: the registry (ir/ops.py), the PyTorch table and the diagram table, as
docs/contributing.md's recipe says; no other module of resdsl/ names an op."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from resdsl.backends.pytorch.optable import ACTIVATION_MODULES, MODULES, behaviour
from resdsl.backends.viz.style import LOOKS
from resdsl.ir.ops import REGISTRY, OpKind

ROOT = Path(__file__).resolve().parent.parent
RECIPE = (ROOT / "docs" / "contributing.md").read_text(encoding="utf-8")
TABLES = {"resdsl/ir/ops.py", "resdsl/backends/pytorch/optable.py", "resdsl/backends/viz/style.py"}
# Modules that mention an op's name for another reason (module, op) -> why.
OTHER_MEANINGS = {
    ("resdsl/ir/settings.py", "conv"): "the `projection conv` setting's value",
    ("resdsl/experiments/responses.py", "conv"): "Fig. 7 measures the responses of 3x3 convs",
    ("resdsl/experiments/responses.py", "bn"): "... after their BN",
    ("resdsl/backends/pytorch/initweights.py", "relu"): "kaiming_normal_'s `nonlinearity` argument",
}
NAMED = [d for d in REGISTRY.values() if d.name]


def test_the_recipe_names_the_three_tables() -> None:
    steps = re.findall(r"^\d\. \*\*`([^`]+)`\*\*", RECIPE, re.M)
    assert set(steps) == TABLES and all((ROOT / path).is_file() for path in steps)


@pytest.mark.parametrize("op", NAMED, ids=[d.name for d in NAMED])
def test_every_op_has_its_entry_in_each_table(op) -> None:
    assert op.signature is not None and op.shape is not None
    assert op.kind in LOOKS
    assert op.kind in MODULES or behaviour(op.kind).shared_in_place
    assert (op.kind in ACTIVATION_MODULES or behaviour(op.kind).shared_in_place) == op.activation


@pytest.mark.parametrize("op", NAMED, ids=[d.name for d in NAMED])
def test_no_other_module_names_an_op(op) -> None:
    pattern = re.compile(rf"OpKind\.{op.kind.name}\b|[\"']{re.escape(op.name)}[\"']")
    naming = {
        str(p.relative_to(ROOT))
        for p in (ROOT / "resdsl").rglob("*.py")
        if pattern.search(p.read_text(encoding="utf-8"))
    }
    others = {m for m in naming - TABLES if (m, op.name) not in OTHER_MEANINGS}
    assert others == set(), f"`{op.name}` is named outside the registry and the two back-end tables"
    assert naming & TABLES == TABLES


def test_structural_kinds_have_no_name() -> None:
    """The input, shortcuts and merges come from the graph's structure, not from an op statement."""
    structural = {OpKind.INPUT, OpKind.SHORTCUT, OpKind.ADD, OpKind.CONCAT, OpKind.MUL, OpKind.GLOBAL_AVGPOOL}
    assert {d.kind for d in REGISTRY.values() if not d.name} == structural
    assert set(REGISTRY) == set(OpKind)


def test_helper_classes_are_used_by_their_kinds_module() -> None:
    """A class the generated file defines (optable.HELPERS) is the one its kind's module builds."""
    from resdsl.backends.pytorch.names import MODULE_NAMES
    from resdsl.backends.pytorch.optable import HELPERS

    for kind, text in HELPERS.items():
        name = re.match(r"class (\w+)\(nn\.\w+\):", text).group(1)
        assert MODULES[kind]({"out": "8", "bias": "True", "k": "3"}, "4", 2).startswith(name + "(")
        assert name in MODULE_NAMES  # no class of a spec takes its name
