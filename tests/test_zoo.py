"""The model zoo (specs/): params and FLOPs equal the published implementations', and the
generated modules compute what torchvision's and timm's networks do with the same weights, as
scripts/record_zoo.py recorded them (tests/golden/zoo_outputs.json): neither is needed here.

Published figures: torchvision 0.29's model table (params exact, GFLOPs to two decimals),
the WRN authors' code, kuangliu/pytorch-cifar's PreActResNet18, recorded here as numbers.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import pytest

from resdsl.backends.pytorch.codegen import render_model
from resdsl.backends.pytorch.verify import load_module
from resdsl.backends.pytorch.weights import rename_by_position
from resdsl.ir.pipeline import load_network
from resdsl.lang.overrides import parse_sets

SPECS = Path(__file__).resolve().parent.parent / "specs"

# spec: (params, GFLOPs as published (multiply-adds, 2 decimals), layers, where the figures come from)
PUBLISHED = {
    "resnet18": (11_689_512, 1.81, 18, "torchvision"),
    "resnet34": (21_797_672, 3.66, 34, "torchvision"),
    "resnet50": (25_557_032, 4.09, 50, "torchvision (v1.5: --set stride_at=middle)"),
    "resnet101": (44_549_160, 7.80, 101, "torchvision"),
    "resnet152": (60_192_808, 11.51, 152, "torchvision"),
    "wide_resnet50_2": (68_883_240, 11.40, 50, "torchvision"),
    "resnext50_32x4d": (25_028_904, 4.23, 50, "torchvision"),
    "resnext101_32x8d": (88_791_336, 16.41, 101, "torchvision"),
    "vgg16": (138_357_544, 15.47, 16, "torchvision"),
    "vgg19": (143_667_240, 19.63, 19, "torchvision"),
    "densenet121": (7_978_856, 2.83, 121, "torchvision"),
    "wrn28_10": (36_479_194, None, 26, "Zagoruyko & Komodakis' code"),
    "preact_resnet18_cifar": (11_171_146, None, 18, "kuangliu/pytorch-cifar"),
    "mobilenet_v2": (3_504_872, 0.30, 53, "torchvision"),
    "mobilenet_v3_large": (5_483_032, 0.22, 64, "torchvision (layers: 48 + two 1x1 convs per gate)"),
    "efficientnet_b0": (5_288_548, 0.39, 82, "torchvision (layers: 50 + two 1x1 convs per gate)"),
    "convnext_tiny": (
        28_589_128,
        4.46,
        59,
        "torchvision (layers: the stem, 18 x 3 and the 3 downsampling convs, the fc)",
    ),
    "seresnet50": (28_088_024, None, 82, "timm 1.0 seresnet50 (layers: 50 + two 1x1 convs per gate)"),
    # timm's 4.35 GMACs also count BN and pooling (its resnet50: 4.11 against torchvision's 4.09)
    "resnet50d": (25_576_264, None, 52, "timm 1.0 resnet50d (layers: 50 + two more stem convs)"),
}
V15 = {"resnet50", "resnet101", "resnet152"}


@cache
def ir_of(spec: str):
    sets = parse_sets(["stride_at=middle"]) if spec in V15 else {}
    return load_network(SPECS / f"{spec}.rd", sets)


@pytest.mark.parametrize("spec", sorted(PUBLISHED))
def test_params_flops_and_layers_equal_the_published_figures(spec: str) -> None:
    params, gflops, layers, _ = PUBLISHED[spec]
    ir = ir_of(spec)
    assert ir.totals.params == params
    assert ir.totals.layers == layers
    if gflops is not None:
        assert round(ir.totals.flops / 1e9, 2) == gflops


def test_the_published_table_can_fail(tmp_path: Path) -> None:
    """A spec one block short of ResNeXt-50 misses the published params (the test above would fail)."""
    text = (SPECS / "resnext50_32x4d.rd").read_text().replace("wpg) * 6", "wpg) * 5")
    path = tmp_path / "short.rd"
    path.write_text("\n".join(line for line in text.splitlines() if "expect" not in line))
    assert load_network(path).totals.params != PUBLISHED["resnext50_32x4d"][0]


# ---------------------------------------------------------------- the same function as the originals

GOLDEN = SPECS.parent / "tests" / "golden"
RECORDED = json.loads((GOLDEN / "zoo_outputs.json").read_text())
TOLERANCE = 1e-4  # relative to each number's scale: float32 rounding is ~1e-6, a wrong network ~1


@cache
def original_state_dicts(origin: str) -> dict[str, list]:
    return json.loads((GOLDEN / f"{origin}_state_dicts.json").read_text())


def test_the_weight_rule_makes_the_recorded_values() -> None:
    """If this fails, torch's generator changed, not a network: record again (scripts/record_zoo.py)."""
    import zoo_recorded  # imports torch: here, not at collection

    assert zoo_recorded.probe() == RECORDED["probe"]
    for origin in ("torchvision", "timm"):  # every original whose keys are recorded, on today's input
        for spec in original_state_dicts(origin):
            size = zoo_recorded.input_size(spec)
            assert RECORDED["networks"][spec]["from"] == f"{origin} {spec}"
            assert RECORDED["networks"][spec]["input"] == [zoo_recorded.BATCH, 3, size, size]
    assert len(RECORDED["networks"]) == 17


def recorded_difference(spec: str, source: str) -> list[str]:
    """What the module generated from `source` computes, with the recorded weights, that differs
    from what the original computed (scripts/record_zoo.py): [] when it is the same network."""
    import torch
    import zoo_recorded  # torch: imported where a test needs it, not at collection

    entry = RECORDED["networks"][spec]
    origin = entry["from"].split()[0]
    theirs = zoo_recorded.state_dict(original_state_dicts(origin)[spec])
    assert zoo_recorded.weights_fingerprint(theirs) == entry["weights"], "the weight rule changed: record again"
    with torch.device("meta"):
        ours = load_module(source).build_model()
    # timm names its modules otherwise (`conv1.0`, `se.fc1`): `resdsl weights rename` pairs them by position
    weights = theirs if origin == "torchvision" else rename_by_position(ours, theirs, spec)[0]
    ours.load_state_dict(weights, strict=True, assign=True)
    return zoo_recorded.differences(entry, zoo_recorded.record(ours, entry["input"][-1]), TOLERANCE)


@pytest.mark.parametrize("spec", list(RECORDED["networks"]))
def test_outputs_equal_the_recorded_originals(spec: str) -> None:
    """torchvision's and timm's networks, recorded with weights made from each key's name and shape
    (tests/zoo_recorded.py): the generated module computes the same outputs in eval and train mode
    and the same gradients. Neither torchvision nor timm is needed."""
    assert recorded_difference(spec, render_model(ir_of(spec), f"specs/{spec}.rd")) == []


def test_the_recorded_comparison_can_fail(tmp_path: Path) -> None:
    """A ResNet-18 without the stem's ReLU has torchvision's keys and shapes (a state_dict has no
    activations), so the recorded weights load, but it computes another function."""
    text = (SPECS / "resnet18.rd").read_text()
    assert "bn; relu; maxpool" in text
    path = tmp_path / "resnet18.rd"
    path.write_text(text.replace("bn; relu; maxpool", "bn; maxpool"))
    problems = recorded_difference("resnet18", render_model(load_network(path), "resnet18.rd"))
    assert any(p.startswith("eval head[0]: ") for p in problems)
    assert any(p.startswith("train head[") for p in problems)  # within train mode's wider tolerance too
    assert any(p.startswith("grad input head[") for p in problems)  # and the gradients' (zoo_recorded.py)


def test_docs_zoo_table_is_current() -> None:
    """docs/zoo.md's table is what scripts/zoo_table.py makes from specs/ (regenerate it after a change)."""
    import runpy

    script = runpy.run_path(str(SPECS.parent / "scripts" / "zoo_table.py"))
    doc = (SPECS.parent / "docs" / "zoo.md").read_text()
    assert script["render"](doc) == doc, "run: .venv/bin/python scripts/zoo_table.py"
