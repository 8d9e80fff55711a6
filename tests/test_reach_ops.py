"""Issue 20's op-level constructs: `bn eps:/momentum:`, `conv dilation:` (and the ops after them).

Each: the analysis (shapes, params, FLOPs), the diagram label, the generated module against a
hand-built torch reference (params equal to the IR's, output equal), and the exact error text."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from resdsl.backends.pytorch.codegen import render_model
from resdsl.backends.pytorch.verify import load_module, verify_model
from resdsl.backends.viz.labels import op_label
from resdsl.cli.main import main
from resdsl.ir.graph import NetworkIR, OpKind
from resdsl.ir.pipeline import load_network

F = torch.nn.functional


def build(tmp_path: Path, text: str) -> tuple[NetworkIR, object]:
    spec = tmp_path / "t.rd"
    spec.write_text(text)
    ir = load_network(spec)
    source = render_model(ir, "t.rd")
    assert verify_model(ir, source) == []
    module = load_module(source)
    module.source = source
    return ir, module


def check_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str, expected: str) -> None:
    (tmp_path / "bad.rd").write_text(text)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["check", "bad.rd"])
    assert result.exit_code == 1
    assert result.stderr == expected


def ops(ir: NetworkIR, kind: OpKind) -> list:
    return [op for op in ir.ops() if op.kind is kind]


def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


# ---------------------------------------------------------------- bn eps: / momentum:

BN_SPEC = """\
block cbn(width, e = 0.001) {
    conv 3x3, width; bn eps: e, momentum: 0.01; relu
    conv 3x3, width; bn
}

network bns {
    input 3x8x8
    classes 10
    stem { conv 3x3, 8; bn eps: 0.001; relu }
    stage s1 = cbn(8)
    head { avgpool global; fc 16; bn momentum: 0.2; fc classes }
}
"""


def test_bn_options_keep_params_and_reach_the_module(tmp_path: Path) -> None:
    ir, module = build(tmp_path, BN_SPEC)
    bns = ops(ir, OpKind.BN)
    assert [op.attrs for op in bns] == [{"eps": 0.001}, {"eps": 0.001, "momentum": 0.01}, {}, {"momentum": 0.2}]
    assert [op.params for op in bns] == [16, 16, 16, 32] and all(op.flops == op.acts == 0 for op in bns)
    assert [op_label(op) for op in bns] == ["BN, eps 0.001", "BN, eps 0.001, momentum 0.01", "BN", "BN, momentum 0.2"]
    assert "nn.BatchNorm2d(8, eps=0.001)" in module.source
    assert "nn.BatchNorm2d(width, eps=e, momentum=0.01)" in module.source
    assert "nn.BatchNorm1d(16, momentum=0.2)" in module.source
    model = module.build_model()
    assert n_params(model) == ir.totals.params
    block = model.layer1[0]
    assert (block.bn1.eps, block.bn1.momentum, block.bn2.eps, block.bn2.momentum) == (0.001, 0.01, 1e-5, 0.1)


def test_bn_with_eps_computes_torchs_batchnorm(tmp_path: Path) -> None:
    """Train mode (batch statistics, running averages updated by the momentum) and eval mode."""
    _, module = build(tmp_path, BN_SPEC)
    torch.manual_seed(0)
    block = module.CbnBlock(8, 8, e=0.5)
    ref = torch.nn.BatchNorm2d(8, eps=0.5, momentum=0.01)
    ref.load_state_dict(block.bn1.state_dict())
    x = torch.randn(4, 8, 5, 5) * 0.3
    assert torch.equal(block.bn1(x), ref(x))
    assert torch.equal(block.bn1.running_var, ref.running_var)
    block.eval(), ref.eval()
    assert torch.equal(block.bn1(x), ref(x))
    assert not torch.equal(ref(x), torch.nn.BatchNorm2d(8).eval()(x))  # eps matters here


def test_bn_defaults_are_not_written(tmp_path: Path) -> None:
    _, module = build(tmp_path, BN_SPEC.replace("eps: 0.001;", "eps: 0.00001;"))
    assert "nn.BatchNorm2d(8)" in module.source


def test_bn_option_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = BN_SPEC.replace("bn eps: 0.001; relu }", "bn eps: 0, momentum: 2; relu }")
    check_error(
        tmp_path,
        monkeypatch,
        text,
        "bad.rd:9:33: error: `eps` of `bn` must be a positive number, got 0\n"
        "    9 |     stem { conv 3x3, 8; bn eps: 0, momentum: 2; relu }\n"
        "      |                                 ^\n"
        "bad.rd:9:46: error: `momentum` of `bn` must be a number in [0, 1], got 2\n"
        "    9 |     stem { conv 3x3, 8; bn eps: 0, momentum: 2; relu }\n"
        "      |                                              ^\n",
    )


# ---------------------------------------------------------------- conv dilation:

DIL_SPEC = """\
block dil(width, d = 2, k = 3) {
    residual {
        conv 3x3, width, dilation: d; bn; relu
        conv k, width, dilation: 2; bn; relu
        conv 1x3, width, dilation: 3; bn
    }
    relu
}

network dils {
    input 3x16x16
    classes 10
    shortcut B
    stem { conv 3x3, 8, dilation: 2; bn; relu; conv 3x3, 8, stride: 2, dilation: 3, pad: 1 }
    stage s1 = dil(8) * 2
    stage s2 = dil(8, d: 4, k: 5)
    head { avgpool global; fc classes }
}
"""


def test_dilation_shapes_padding_params_and_flops(tmp_path: Path) -> None:
    ir, module = build(tmp_path, DIL_SPEC)
    convs = ops(ir, OpKind.CONV)
    stem, strided = convs[0], convs[1]
    assert stem.attrs["pad"] == 2 and stem.shape == (8, 16, 16)  # dilation * (k // 2): the size is kept
    assert strided.shape == (8, 6, 6)  # (16 + 2 - 7) // 2 + 1: the dilated kernel spans 7
    for op in convs:
        kh, kw = op.attrs["kernel"]
        assert op.params == op.in_shapes[0][0] * kh * kw * op.attrs["channels"]  # as undilated
        assert op.flops == op.shape[1] * op.shape[2] * op.params  # per output, as undilated
        assert op.acts == op.shape[0] * op.shape[1] * op.shape[2]  # pycls: a conv's output elements
    body = [op for op in convs[2:] if op.attrs.get("dilation")]
    assert all(op.shape == op.in_shapes[0] for op in body)
    assert {op.attrs["pad"] for op in body} == {2, 4, (0, 3)}  # d * (k // 2): 3x3 at 2 and 4, 5x5 at 2
    assert op_label(stem) == "3x3 conv, 8, dilation 2"
    assert "padding=d, dilation=d" in module.source and "padding=2 * (k // 2), dilation=2" in module.source
    assert "padding=(0, 3), dilation=3" in module.source
    assert n_params(module.build_model()) == ir.totals.params


def test_dilated_block_computes_torchs_dilated_convs(tmp_path: Path) -> None:
    _, module = build(tmp_path, DIL_SPEC)
    torch.manual_seed(0)
    block = module.DilBlock(8, 8, d=4, k=5).eval()
    x = torch.randn(2, 8, 12, 12)
    h = F.relu(block.bn1(F.conv2d(x, block.conv1.weight, padding=4, dilation=4)))
    h = F.relu(block.bn2(F.conv2d(h, block.conv2.weight, padding=4, dilation=2)))
    h = block.bn3(F.conv2d(h, block.conv3.weight, padding=(0, 3), dilation=3))
    assert torch.equal(block(x), F.relu(h + x))


def test_dilation_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = DIL_SPEC.replace("dilation: 3, pad: 1 }", "dilation: 0 }")
    check_error(
        tmp_path,
        monkeypatch,
        text,
        "bad.rd:14:82: error: `dilation` of `conv` must be a positive whole number, got 0\n"
        "   14 |     stem { conv 3x3, 8, dilation: 2; bn; relu; conv 3x3, 8, stride: 2, dilation: 0 }\n"
        "      |                                                                                  ^\n",
    )
    text = DIL_SPEC.replace("dilation: 3, pad: 1 }", "dilation: 9, pad: 0 }")
    check_error(
        tmp_path,
        monkeypatch,
        text,
        "bad.rd:14:48: error: conv kernel 3x3 dilated by 9 (19x19) is larger than its 16x16 input: "
        "the output size would reach 0\n"
        "   14 |     stem { conv 3x3, 8, dilation: 2; bn; relu; conv 3x3, 8, stride: 2, dilation: 9, pad: 0 }\n"
        "      |                                                ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^\n"
        "  hint: use a smaller kernel or dilation, more padding, or fewer downsampling steps before it\n",
    )


# ---------------------------------------------------------------- layernorm, pointwise (ConvNeXt)

CNX_SPEC = """\
block cn(dim, e = 1e-6) {
    residual {
        conv 7x7, dim, groups: dim, bias: true
        layernorm eps: e
        pointwise 4 * dim; gelu
        pointwise dim
    }
}

network cnx {
    input 3x32x32
    classes 10
    stem { conv 4x4, 16, stride: 4, pad: 0, bias: true; layernorm }
    stage s1 = cn(16) * 2
    head { avgpool global; layernorm eps: 0.001; pointwise 20, bias: false; fc classes }
}
"""


class Permute(torch.nn.Module):
    def __init__(self, *dims: int) -> None:
        super().__init__()
        self.dims = dims

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.permute(*self.dims)


def torchvision_cnblock(dim: int) -> torch.nn.Sequential:
    """torchvision's CNBlock.block (convnext.py), without layer scale and stochastic depth."""
    return torch.nn.Sequential(
        torch.nn.Conv2d(dim, dim, 7, padding=3, groups=dim, bias=True),
        Permute(0, 2, 3, 1),
        torch.nn.LayerNorm(dim, eps=1e-6),
        torch.nn.Linear(dim, 4 * dim),
        torch.nn.GELU(),
        torch.nn.Linear(4 * dim, dim),
        Permute(0, 3, 1, 2),
    )


def test_layernorm_and_pointwise_analysis(tmp_path: Path) -> None:
    ir, module = build(tmp_path, CNX_SPEC)
    norms, pws = ops(ir, OpKind.LAYERNORM), ops(ir, OpKind.POINTWISE)
    assert [op.shape for op in norms] == [(16, 8, 8), (16, 8, 8), (16, 8, 8), (16, 1, 1)]
    assert all(op.params == 2 * op.shape[0] and op.flops == op.acts == 0 for op in norms)  # as BN
    assert [op.acts for op in pws] == [64 * 64, 16 * 64] * 2 + [20]  # output elements, as a conv's
    assert [(op.in_shapes[0], op.shape) for op in pws[:2]] == [((16, 8, 8), (64, 8, 8)), ((64, 8, 8), (16, 8, 8))]
    assert [op.params for op in pws] == [16 * 64 + 64, 64 * 16 + 16] * 2 + [16 * 20]
    assert [op.flops for op in pws] == [64 * 16 * 64, 64 * 64 * 16] * 2 + [16 * 20]
    assert ir.totals.layers == 1 + 2 * 3 + 2  # the pointwise layers are layers, as 1x1 convs are
    assert [op_label(op) for op in norms][-1] == "LN, eps 0.001"
    assert op_label(pws[0]) == "pointwise linear, 64"
    assert "class LayerNorm2d(nn.LayerNorm):" in module.source and "class PointwiseLinear(nn.Linear):" in module.source
    assert "self.norm1 = LayerNorm2d(dim, eps=e)" in module.source
    assert "self.pwconv1 = PointwiseLinear(16, 20, bias=False)" in module.source
    assert n_params(module.build_model()) == ir.totals.params


def test_helpers_only_where_used(tmp_path: Path) -> None:
    _, module = build(tmp_path, BN_SPEC)
    assert "LayerNorm2d" not in module.source and "PointwiseLinear" not in module.source


def test_convnext_block_computes_torchvisions_cnblock(tmp_path: Path) -> None:
    """The keys and shapes of torchvision's CNBlock (Linear weights [4C, C], LayerNorm weight/bias);
    copied over, the output is the same."""
    _, module = build(tmp_path, CNX_SPEC)
    torch.manual_seed(0)
    block, ref = module.CnBlock(16, 16), torchvision_cnblock(16)
    mine = block.state_dict()
    assert list(mine) == [
        "conv1.weight", "conv1.bias", "norm1.weight", "norm1.bias",
        "pwconv1.weight", "pwconv1.bias", "pwconv2.weight", "pwconv2.bias",
    ]  # fmt: skip
    theirs = ref.state_dict()
    assert [v.shape for v in mine.values()] == [v.shape for v in theirs.values()]
    with torch.no_grad():
        for p in ref.parameters():
            p.normal_()
    block.load_state_dict(dict(zip(mine, theirs.values(), strict=True)), strict=True)
    x = torch.randn(2, 16, 6, 6)
    assert torch.allclose(block(x), ref(x) + x, atol=1e-5)
    norm = module.LayerNorm2d(16, eps=1e-6)
    assert torch.allclose(norm(x), F.layer_norm(x.permute(0, 2, 3, 1), (16,), eps=1e-6).permute(0, 3, 1, 2))


def test_layernorm_and_pointwise_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = CNX_SPEC.replace("fc classes }", "fc classes; layernorm }").replace("pointwise dim", "pointwise 0")
    check_error(
        tmp_path,
        monkeypatch,
        text,
        "bad.rd:6:19: error: `out` of `pointwise` must be a positive whole number of channels, got 0\n"
        "    6 |         pointwise 0\n"
        "      |                   ^\n",
    )
    text = CNX_SPEC.replace("fc classes }", "fc classes; layernorm }")
    check_error(
        tmp_path,
        monkeypatch,
        text,
        "bad.rd:15:89: error: `layernorm` needs a CxHxW input, but it gets 10 (after an fc)\n"
        "   15 |     head { avgpool global; layernorm eps: 0.001; pointwise 20, bias: false; fc classes; layernorm }\n"
        "      |                                                                                         ^^^^^^^^^\n"
        "  hint: put fc last\n",
    )


# ---------------------------------------------------------------- conv1d across channels (ECA-Net)

ECA_SPEC = """\
block eca(k = 3) {
    gate { avgpool global; conv1d k, name: "conv"; sigmoid }
}

block eca_basic(width, stride = 1) {
    residual {
        conv 3x3, width, stride: stride; bn; relu
        conv 3x3, width; bn
        eca()
    }
    relu
}

network ecanet {
    input 3x16x16
    classes 10
    shortcut B
    stem { conv 3x3, 16; bn; relu }
    stage s1 = eca_basic(16) * 2
    stage s2 = eca_basic(32, stride: 2)
    head { avgpool global; conv1d 5, bias: true; fc classes }
}
"""


def eca_reference(x: torch.Tensor, conv: torch.nn.Conv1d) -> torch.Tensor:
    """timm's EcaModule.forward (timm/layers/eca.py)."""
    y = x.mean((2, 3)).view(x.shape[0], 1, -1)
    y = conv(y)
    y = y.view(x.shape[0], -1, 1, 1).sigmoid()
    return x * y.expand_as(x)


def test_conv1d_analysis(tmp_path: Path) -> None:
    ir, module = build(tmp_path, ECA_SPEC)
    c1 = ops(ir, OpKind.CONV1D)
    assert [(op.in_shapes[0], op.shape) for op in c1] == [((16, 1, 1), (16, 1, 1))] * 2 + [
        ((32, 1, 1), (32, 1, 1)),
        ((32, 1, 1), (32, 1, 1)),
    ]
    assert [op.params for op in c1] == [3, 3, 3, 6]  # k weights (+ 1 bias)
    assert [op.flops for op in c1] == [16 * 3, 16 * 3, 32 * 3, 32 * 5]  # k multiply-adds per channel
    assert [op.acts for op in c1] == [16, 16, 32, 32]  # output elements, as a conv's
    assert op_label(c1[0]) == "1-d conv across channels, k 3"
    assert "self.conv = ChannelConv1d(1, 1, k, padding=k // 2, bias=False)" in module.source
    assert "ChannelConv1d(1, 1, 5, padding=2)" in module.source
    assert n_params(module.build_model()) == ir.totals.params


def test_eca_gate_computes_timms_eca_module(tmp_path: Path) -> None:
    _, module = build(tmp_path, ECA_SPEC)
    torch.manual_seed(0)
    gate = module.EcaBlock(16, k=5)
    assert {k: v.shape for k, v in gate.state_dict().items()} == {"conv.weight": (1, 1, 5)}  # timm's keys
    ref = torch.nn.Conv1d(1, 1, 5, padding=2, bias=False)
    ref.load_state_dict(gate.conv.state_dict(), strict=True)
    x = torch.randn(2, 16, 5, 5)
    assert torch.allclose(gate(x), eca_reference(x, ref), atol=1e-6)


def test_conv1d_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = ECA_SPEC.replace("head { avgpool global; conv1d 5", "head { conv1d 4")
    check_error(
        tmp_path,
        monkeypatch,
        text,
        "bad.rd:21:19: error: `conv1d` needs an odd kernel, got 4: only an odd one keeps the number of channels\n"
        "   21 |     head { conv1d 4, bias: true; fc classes }\n"
        "      |                   ^\n",
    )
    text = ECA_SPEC.replace("head { avgpool global; conv1d 5", "head { conv1d 5")
    check_error(
        tmp_path,
        monkeypatch,
        text,
        "bad.rd:21:12: error: `conv1d` runs across the channels of a Cx1x1 tensor, but it gets 32x8x8\n"
        "   21 |     head { conv1d 5, bias: true; fc classes }\n"
        "      |            ^^^^^^^^^^^^^^^^^^^^\n"
        "  hint: pool first, as ECA-Net's gate does: `avgpool global; conv1d 3; sigmoid`\n",
    )


# ---------------------------------------------------------------- layerscale (ConvNeXt's layer_scale)

LS_SPEC = """\
block cn(dim, g = 1e-6) {
    residual {
        conv 7x7, dim, groups: dim, bias: true
        layernorm
        pointwise 4 * dim; gelu
        pointwise dim
        layerscale g, name: "layer_scale"
    }
}

network cnx {
    input 3x32x32
    classes 10
    stem { conv 4x4, 16, stride: 4, pad: 0, bias: true; layernorm; layerscale }
    stage s1 = cn(16) * 2
    head { avgpool global; layerscale 0.5; fc classes }
}
"""


def test_layerscale_analysis_and_code(tmp_path: Path) -> None:
    ir, module = build(tmp_path, LS_SPEC)
    scales = ops(ir, OpKind.LAYERSCALE)
    assert [(op.shape, op.params, op.flops, op.acts) for op in scales] == [((16, 8, 8), 16, 0, 0)] * 3 + [
        ((16, 1, 1), 16, 0, 0)
    ]
    assert [op_label(op) for op in scales] == ["layer scale 1e-06"] * 3 + ["layer scale 0.5"]
    assert "self.layer_scale = nn.Parameter(torch.full((dim, 1, 1), float(g)))" in module.source
    assert "out = self.layer_scale * out" in module.source
    assert "self.layer_scale2 = nn.Parameter(torch.full((16, 1, 1), 0.5))" in module.source
    model = module.build_model()
    assert n_params(model) == ir.totals.params
    assert torch.equal(model.layer_scale2, torch.full((16, 1, 1), 0.5))


def test_convnext_block_with_layer_scale_loads_torchvisions_keys(tmp_path: Path) -> None:
    """torchvision's CNBlock: `layer_scale` a [C, 1, 1] parameter of the block, applied to the branch."""
    _, module = build(tmp_path, LS_SPEC)
    torch.manual_seed(0)
    block, ref = module.CnBlock(16, 16), torchvision_cnblock(16)
    assert block.layer_scale.shape == (16, 1, 1) and "layer_scale" in block.state_dict()
    with torch.no_grad():
        for p in ref.parameters():
            p.normal_()
    gamma = torch.randn(16, 1, 1)
    theirs = {**ref.state_dict(), "layer_scale": gamma}
    mine = [key for key in block.state_dict() if key != "layer_scale"]
    block.load_state_dict(dict(zip(mine, ref.state_dict().values(), strict=True)) | {"layer_scale": gamma})
    assert set(theirs) - set(ref.state_dict()) == {"layer_scale"}
    x = torch.randn(2, 16, 6, 6)
    assert torch.allclose(block(x), gamma * ref(x) + x, atol=1e-5)


def test_layerscale_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    check_error(
        tmp_path,
        monkeypatch,
        LS_SPEC.replace("layerscale 0.5", "layerscale 0"),
        "bad.rd:16:39: error: `init` of `layerscale` must be a positive number (the scale's initial value), got 0\n"
        "   16 |     head { avgpool global; layerscale 0; fc classes }\n"
        "      |                                       ^\n",
    )
    check_error(
        tmp_path,
        monkeypatch,
        LS_SPEC.replace('name: "layer_scale"', 'name: "block.7"'),
        "bad.rd:7:29: error: `layerscale` is a parameter of its class, not a module: it cannot be `block.7`, "
        "inside a container\n"
        '    7 |         layerscale g, name: "block.7"\n'
        "      |                             ^^^^^^^^^\n"
        '  hint: give it one attribute name (`name: "layer_scale"`, as torchvision\'s ConvNeXt)\n',
    )
    check_error(
        tmp_path,
        monkeypatch,
        LS_SPEC.replace("head {", 'head(name: "classifier.#") {'),
        "bad.rd:16:50: error: `layerscale` is a parameter of its class, not a module: it cannot be `classifier.1`, "
        "inside a container\n"
        '   16 |     head(name: "classifier.#") { avgpool global; layerscale 0.5; fc classes }\n'
        "      |                                                  ^^^^^^^^^^^^^^\n"
        '  hint: give it one attribute name (`name: "layer_scale"`, as torchvision\'s ConvNeXt), or put it in a block\n',
    )
    check_error(
        tmp_path,
        monkeypatch,
        LS_SPEC.replace("pointwise dim\n", "pointwise dim\n        shortcut { layerscale }\n"),
        "bad.rd:7:20: error: `layerscale` is a parameter, not a module: a written `shortcut { }` (an nn.Sequential) "
        "cannot hold it\n"
        "    7 |         shortcut { layerscale }\n"
        "      |                    ^^^^^^^^^^\n"
        "  hint: scale the body instead\n",
    )
