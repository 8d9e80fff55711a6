"""Language reach: `in.channels`, `gate { }` sections (squeeze-and-excitation) and the
`identity_or_none` shortcut (MobileNetV2): analysis, code, diagram."""

from __future__ import annotations

from pathlib import Path

import pytest

from resdsl.backends.pytorch.codegen import render_model
from resdsl.backends.pytorch.verify import load_module, verify_model
from resdsl.backends.viz.draw import draw
from resdsl.ir.graph import OpKind
from resdsl.ir.pipeline import load_network

SPEC = """\
import "std.rd"

block se_basic(width, stride = 1) {
    residual {
        conv 3x3, width, stride: stride; bn; relu
        conv 3x3, width; bn
        se(4)
    }
    relu
}

network gated {
    input 3x16x16
    classes 10
    shortcut B
    stem { conv 3x3, 32; bn; relu }
    stage s1 = se(8), se_basic(32) * 2
    stage s2 = se_basic(64, stride: 2)
    head { avgpool global; fc classes }
}
"""


@pytest.fixture(scope="module")
def ir(tmp_path_factory: pytest.TempPathFactory):
    path = tmp_path_factory.mktemp("gates") / "gated.rd"
    path.write_text(SPEC)
    return load_network(path)


def test_in_channels_is_each_uses_input(ir) -> None:
    """se(8) on 32 channels squeezes to 4; se(4) inside se_basic(32) to 8 and inside se_basic(64) to 16."""
    squeezes = [op.attrs["channels"] for op in ir.ops() if op.kind is OpKind.CONV and op.in_shapes[0][1:] == (1, 1)]
    assert squeezes == [4, 32, 8, 32, 8, 32, 16, 64]


def test_a_gate_keeps_its_input_shape_and_adds_only_its_convs(ir) -> None:
    muls = [op for op in ir.ops() if op.kind is OpKind.MUL]
    assert len(muls) == 4
    for op in muls:
        x, g = op.in_shapes
        assert op.shape == x and g == (x[0], 1, 1)
        assert (op.params, op.flops) == (0, 0)
    # se(8) on 32 channels: 32*4 + 4 and 4*32 + 32 (1x1 convs with biases)
    first_gate = [op for op in ir.ops() if op.scope.section == "s1" and op.scope.block == 0]
    assert sum(op.params for op in first_gate) == 292


def test_generated_gate_equals_a_direct_computation(ir) -> None:
    import torch

    source = render_model(ir, "gated.rd")
    assert "def __init__(self, in_channels: int, reduction: int = 16)" in source
    assert "nn.Conv2d(in_channels, in_channels // reduction, 1)" in source
    assert "out = x * out" in source
    assert verify_model(ir, source) == []
    module = load_module(source)
    torch.manual_seed(0)
    se = module.SeBlock(32, reduction=8).eval()
    x = torch.randn(2, 32, 5, 5)
    pooled = x.mean((2, 3), keepdim=True)
    weights = torch.sigmoid(se.conv2(torch.relu(se.conv1(pooled))))
    torch.testing.assert_close(se(x), x * weights)
    model = module.build_model()
    out = model(torch.randn(2, 3, 16, 16))
    out.sum().backward()
    assert out.shape == (2, 10)


def test_the_diagram_draws_the_gate(ir) -> None:
    source = draw([("gated.rd", ir)], view="block", block="se_basic").source
    assert "×" in source and "gated input" in source and "gate (multiply)" in source


def test_seresnet50_is_timms_and_compiles() -> None:
    """timm 1.0's seresnet50: 28,088,024 params (ResNet-50's plus 2,530,992 in the 16 gates)."""
    ir = load_network(Path(__file__).resolve().parent.parent / "specs" / "seresnet50.rd")
    assert ir.totals.params == 28_088_024
    gates = [r for r in ir.residuals if r.kind == "mul"]
    assert [ir.op(r.body[1]).attrs["channels"] for r in gates] == [16] * 3 + [32] * 4 + [64] * 6 + [128] * 3


def test_identity_or_none_adds_where_the_shape_is_kept() -> None:
    """MobileNetV2: an identity shortcut in the 10 blocks that keep their input's shape (stride 1,
    same width), none in the other 7, as torchvision's `use_res_connect`; 3,504,872 params."""
    import torch

    ir = load_network(Path(__file__).resolve().parent.parent / "specs" / "mobilenet_v2.rd")
    assert ir.totals.params == 3_504_872
    kept = [r for r in ir.residuals if r.merge is not None]
    assert len(kept) == 10 and len(ir.residuals) == 17
    for r in ir.residuals:
        x, body = ir.op(r.input).shape, ir.op(r.body[-1]).shape
        assert (r.merge is not None) == (x == body)
        assert r.option.value == ("identity" if x == body else "none")
    source = render_model(ir, "mobilenet_v2.rd")
    assert verify_model(ir, source) == []
    module = load_module(source)
    torch.manual_seed(0)
    assert (
        "plain=" not in source and "self.plain" not in source
    )  # the class decides from its arguments, as torchvision's use_res_connect
    assert "out = self.conv(x)" in source  # conv.0.0 ... conv.3 run as one nn.Sequential
    x = torch.randn(1, 8, 6, 6)
    for args, kept in (((8, 8), True), ((8, 8, 2), False), ((8, 16), False)):
        block = module.InvertedResidualBlock(*args).eval()
        assert block.use_shortcut is kept
        c = block.conv  # torchvision's names: conv.0.0, conv.0.1, conv.0.2, conv.1.0, ..., conv.2, conv.3
        branch = c[3](c[2](c[1][2](c[1][1](c[1][0](c[0][2](c[0][1](c[0][0](x))))))))
        torch.testing.assert_close(block(x), branch + x if kept else branch)


def test_identity_or_none_is_a_network_setting_too(tmp_path: Path) -> None:
    spec = tmp_path / "auto.rd"
    spec.write_text(
        'import "std.rd"\nnetwork t {\n    input 3x8x8\n    classes 2\n    shortcut identity_or_none\n'
        "    stem { conv 3x3, 4 }\n    stage s = basic(4), basic(8, stride: 2), basic(8)\n"
        "    head { avgpool global; fc classes }\n}\n"
    )
    ir = load_network(spec)
    assert [r.option.value for r in ir.residuals] == ["identity", "none", "identity"]
    assert ir.shortcut.value == "identity_or_none"


def test_adaptive_avgpool_gives_vgg_its_7x7_at_any_input_size() -> None:
    import torch

    from resdsl.lang.overrides import parse_sets

    spec = Path(__file__).resolve().parent.parent / "specs" / "vgg16.rd"
    for side in (224, 64, 320):
        ir = load_network(spec, parse_sets([f"input=3x{side}x{side}"]))
        pool = next(op for op in ir.ops() if op.kind is OpKind.ADAPTIVE_AVGPOOL)
        assert pool.shape == (512, 7, 7) and pool.in_shapes[0] == (512, side // 32, side // 32)
        assert ir.totals.params == 138_357_544
    source = render_model(ir, "vgg16.rd")
    assert "nn.AdaptiveAvgPool2d(7)" in source
    assert verify_model(ir, source) == []
    x = torch.randn(1, 512, 10, 10)
    torch.testing.assert_close(
        load_module(source).build_model().avgpool(x), torch.nn.functional.adaptive_avg_pool2d(x, 7)
    )
