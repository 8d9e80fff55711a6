"""Activations beyond ReLU (relu6, sigmoid, silu, hardswish, gelu, hardsigmoid): analysis, diagram and code.

hardsigmoid was the first op added by docs/contributing.md's recipe: ir/ops.py, backends/pytorch/optable.py,
backends/viz/style.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from resdsl.backends.pytorch.codegen import render_model
from resdsl.backends.pytorch.verify import load_module, verify_model
from resdsl.backends.viz.labels import op_label
from resdsl.ir.graph import OpKind
from resdsl.ir.pipeline import load_network

SPEC = """\
import "std.rd"

block mixed(width, stride = 1) {
    residual {
        conv 3x3, width, stride: stride; bn; silu
        conv 3x3, width; bn; hardswish
        conv 1x1, width; bn; gelu
    }
    relu6
}

network acts {
    input 3x16x16
    classes 10
    shortcut B
    stem { conv 3x3, 8; bn; sigmoid }
    stage s1 = mixed(8) * 2
    stage s2 = mixed(16, stride: 2)
    head { avgpool global; fc 32; gelu; fc 32; hardsigmoid; fc classes }
}
"""

KINDS = {OpKind.RELU6, OpKind.SIGMOID, OpKind.SILU, OpKind.HARDSWISH, OpKind.GELU, OpKind.HARDSIGMOID}


@pytest.fixture(scope="module")
def ir(tmp_path_factory: pytest.TempPathFactory):
    path = tmp_path_factory.mktemp("acts") / "acts.rd"
    path.write_text(SPEC)
    return load_network(path)


def test_activations_keep_the_shape_and_add_no_params_or_flops(ir) -> None:
    acts = [op for op in ir.ops() if op.kind in KINDS]
    assert {op.kind for op in acts} == KINDS
    for op in acts:
        assert op.shape == op.in_shapes[0]
        assert (op.params, op.flops) == (0, 0)
    convs_and_bns = sum(op.params for op in ir.ops() if op.kind in (OpKind.CONV, OpKind.BN, OpKind.FC, OpKind.SHORTCUT))
    assert ir.totals.params == convs_and_bns


def test_generated_module_uses_torch_activations_and_equals_ir(ir) -> None:
    import torch

    source = render_model(ir, "acts.rd")
    for module in ("nn.ReLU6()", "nn.Sigmoid()", "nn.SiLU()", "nn.Hardswish()", "nn.GELU()", "nn.Hardsigmoid()"):
        assert module in source
    assert verify_model(ir, source) == []
    torch.manual_seed(0)
    model = load_module(source).build_model()
    out = model(torch.randn(2, 3, 16, 16))
    out.sum().backward()
    assert out.shape == (2, 10) and torch.isfinite(out).all()


def test_the_block_applies_them_in_order(ir) -> None:
    """Forward of one block equals the same layers applied by hand (the order and placement are right)."""
    import torch

    module = load_module(render_model(ir, "acts.rd"))
    torch.manual_seed(0)
    block = module.MixedBlock(8, 8).eval()
    x = torch.randn(1, 8, 4, 4)
    f = torch.nn.functional
    h = f.silu(block.bn1(block.conv1(x)))
    h = f.hardswish(block.bn2(block.conv2(h)))
    h = f.gelu(block.bn3(block.conv3(h)))
    assert torch.equal(block(x), f.relu6(h + x))


def test_labels_and_aliases(ir, tmp_path: Path) -> None:
    assert {op_label(op) for op in ir.ops() if op.kind in KINDS} == {
        "ReLU6",
        "sigmoid",
        "SiLU",
        "hswish",
        "GELU",
        "hsigmoid",
    }
    bad = tmp_path / "bad.rd"
    bad.write_text(SPEC.replace("bn; silu", "bn; swish"))
    with pytest.raises(Exception) as info:
        load_network(bad)
    assert "unknown op `swish`" in info.value.render() and "resdsl calls it `silu`" in info.value.render()


def test_hardsigmoid_is_relu6_of_x_plus_3_over_6(ir) -> None:
    import torch

    model = load_module(render_model(ir, "acts.rd")).build_model().eval()
    x = torch.randn(4, 32)
    assert torch.equal(model.hardsigmoid(x), torch.nn.functional.relu6(x + 3) / 6)
    bad_alias = "hsigmoid"
    from resdsl.ir.ops import OP_ALIASES

    assert OP_ALIASES[bad_alias] == "hardsigmoid"
