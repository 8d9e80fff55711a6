"""`resdsl info`'s activations (pycls's acts) and training-memory estimate, against numbers counted by hand and
against forward hooks on the generated module; `resdsl train`'s refusal uses the same estimate."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from resdsl.cli.main import main
from resdsl.ir import memory as ir_memory
from resdsl.ir.pipeline import load_network
from resdsl.lang.overrides import parse_override

ROOT = Path(__file__).resolve().parent.parent
SPECS = ROOT / "specs"

# 3x8x8 -> stem conv 4x8x8, bn, relu, maxpool 4x4x4 -> basic(8, stride 2) with a projection (B): convs, bns,
# relu, shortcut, add, relu all 8x2x2 -> global pool 8x1x1 -> fc 10.
TINY = """\
import "std.rd"

network tiny {
    input 3x8x8
    classes 10
    shortcut B
    stem { conv 3x3, 4; bn; relu; maxpool 2x2 }
    stage s1 = basic(8, stride: 2)
    head { avgpool global; fc classes }
}
"""
STEM_ACTS = 4 * 8 * 8 + 4 * 4 * 4  # conv, maxpool
S1_ACTS = 3 * 8 * 2 * 2  # two convs and the projection
HEAD_ACTS = 10  # fc; the global pool does not count
KEPT = 3 * 8 * 8 + 3 * (4 * 8 * 8) + 4 * 4 * 4 + 8 * (8 * 2 * 2) + 8 + 10  # every op's output, the input's too
PARAMS = (3 * 9 * 4 + 8) + (4 * 9 * 8 + 16 + 8 * 9 * 8 + 16 + 4 * 8 + 16) + (8 * 10 + 10)
LARGEST = 4 * 8 * 8


def cli(*args: str):
    return CliRunner().invoke(main, list(args))


def info_json(*args: str) -> dict:
    result = cli("info", *args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.fixture
def tiny(tmp_path: Path) -> str:
    path = tmp_path / "tiny.rd"
    path.write_text(TINY)
    return str(path)


def test_activations_counted_by_hand(tiny: str) -> None:
    out = info_json(tiny)
    assert out["params"] == PARAMS == 1150
    assert out["activations"] == STEM_ACTS + S1_ACTS + HEAD_ACTS == 426
    assert out["activation_bytes"] == 4 * 426
    stages = [(s["name"], s["activations"], s["activation_bytes"]) for s in out["stages"]]
    assert stages == [("stem", 320, 1280), ("s1", 96, 384), ("head", 10, 40)]


def test_training_memory_counted_by_hand(tiny: str) -> None:
    out = info_json(tiny, "--batch", "2")["training_memory"]
    train = 4 * 2 * (KEPT + 2 * LARGEST) + 4 * 2 * 2 * (3 * 8 * 8)  # activations, gradients in flight, input
    evaluation = 4 * 500 * 2 * LARGEST
    assert out == {
        "batch": 2,
        "bytes": 12 * PARAMS + max(train, evaluation),
        "parameters": 12 * PARAMS,
        "activations": train,
        "evaluation": evaluation,
        "kept_per_image": KEPT,
    }
    assert (KEPT, train, out["bytes"]) == (1298, 17552, 1_037_800)


def test_the_default_batch_and_padding_are_the_recipes(tiny: str) -> None:
    """No train section: the paper's batch of 128 and no padding; `--set batch=4 --set pad=1` is what train
    would use; --batch replaces the batch but keeps the recipe's padding."""
    assert info_json(tiny)["training_memory"]["batch"] == 128
    out = info_json(tiny, "--set", "batch=4", "--set", "pad=1")["training_memory"]
    assert (out["batch"], out["activations"]) == (4, 4 * 4 * (KEPT + 2 * LARGEST) + 4 * 4 * 2 * (3 * 10 * 10))
    out = info_json(tiny, "--set", "batch=4", "--set", "pad=1", "--batch", "2")["training_memory"]
    assert (out["batch"], out["activations"]) == (2, 4 * 2 * (KEPT + 2 * LARGEST) + 4 * 2 * 2 * (3 * 10 * 10))
    assert info_json(str(SPECS / "cifar110.rd"))["training_memory"]["batch"] == 128  # its train section


def test_the_table_shows_acts_per_stage_and_the_memory(tiny: str) -> None:
    result = cli("info", tiny, "--batch", "2")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[2].split() == ["stage", "output", "blocks", "layout", "params", "FLOPs", "acts", "acts", "f32"]
    assert lines[4].split()[-3:] == ["320", "1.3", "kB"]
    assert lines[6].split()[-3:] == ["10", "40", "B"]
    assert lines[8:] == [
        "layers 4   params 1,150 (1.15K)   FLOPs 10,576 (10.58K multiply-adds)",
        "acts 426 per image, 1.7 kB in float32 (outputs of convs, fcs, projections and pools)",
        "",
        "training memory at batch 2: about 1.0 MB (float32 estimate, without the data set)",
        "  weights, gradients, momentum                              13.8 kB",
        "  activations, forward and backward (1,298 kept an image)   17.6 kB",
        "  evaluation (500 images, no gradients)                      1.0 MB",
    ]


def test_a_batch_below_one_is_a_usage_error(tiny: str) -> None:
    result = cli("info", tiny, "--batch", "0")
    assert result.exit_code == 2
    assert "Invalid value for '--batch': 0 is not in the range x>=1" in result.output


# ---------------------------------------------------------------- against the generated module


@pytest.mark.parametrize(
    ("spec", "sets"),
    [
        ("cifar20.rd", {"shortcut": "B"}),  # projections
        ("resnet18.rd", {"input": "3x64x64"}),  # maxpool stem
        ("densenet40.rd", {}),  # concatenations, average-pooling transitions
        ("nin_cifar10.rd", {}),  # windowed pools, dropout, no fc
    ],
    ids=["cifar20-B", "resnet18", "densenet40", "nin"],
)
def test_acts_equal_the_outputs_of_the_generated_modules_convs_fcs_and_pools(spec: str, sets: dict) -> None:
    """pycls's definition, measured: the output elements of every Conv2d, Linear, MaxPool2d and AvgPool2d
    module for one image, per stage (`layerK`) and in all."""
    import torch
    from torch import nn

    from resdsl.backends.pytorch.codegen import render_model
    from resdsl.backends.pytorch.verify import load_module

    ir = load_network(SPECS / spec, {k: parse_override(v) for k, v in sets.items()})
    model = load_module(render_model(ir, spec)).build_model()
    stages = [s.name for s in ir.sections if s.kind == "stage"]
    counted: dict[str, int] = {}
    where = ["stem"]

    def hook(name: str):
        def record(module, inputs, output) -> None:
            if name.startswith("layer"):
                where[0] = stages[int(name.removeprefix("layer")) - 1]
            elif where[0] != "stem":
                where[0] = "head"
            counted[where[0]] = counted.get(where[0], 0) + output.numel()

        return record

    for name, module in model.named_modules():
        if isinstance(module, (nn.Conv2d, nn.Linear, nn.MaxPool2d, nn.AvgPool2d)):
            module.register_forward_hook(hook(name.split(".")[0]))
    model.eval()
    with torch.no_grad():
        model(torch.zeros(1, *ir.input_shape))
    assert sum(counted.values()) == ir.totals.activations
    figures = {s.name: s.activations for s in ir.totals.sections if s.activations}
    if stages:
        assert counted == figures


# ---------------------------------------------------------------- one estimate for info and train


def test_train_refuses_with_the_estimate_info_prints() -> None:
    from resdsl.train import datafiles, memory, trainlib

    assert ir_memory.EVAL_BATCH == trainlib.EVAL_BATCH
    for n in (0, 999, 1000, 1234567, 2.6e15):
        assert ir_memory.fmt_bytes(n) == datafiles.fmt_bytes(n)
    ir = load_network(SPECS / "cifar110.rd")
    shown = info_json(str(SPECS / "cifar110.rd"))["training_memory"]
    data = memory.data_bytes("cifar10", ir.input_shape)
    est = memory.estimate(ir, 128, ir.recipe.pad, data)
    assert (est.params, est.train, est.evaluation) == (shown["parameters"], shown["activations"], shown["evaluation"])
    assert est.total == shown["bytes"] + data
    assert (shown["bytes"], data) == (2_183_133_752, 369_600_000)  # 2.6 GB with the data, as docs/training.md says
