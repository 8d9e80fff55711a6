"""Language reach, second part: `if` in blocks, a residual's hand-written `shortcut { }` (ResNet-D),
`fc` inside blocks and the pools' `ceil:` / `count_pad:` options: analysis, generated code (checked
against direct computations with torch's functions), diagrams and the exact error text."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_errors import assert_clean_failure, run_cli

from resdsl.backends.pytorch.codegen import render_model
from resdsl.backends.pytorch.verify import load_module, verify_model
from resdsl.backends.viz.draw import draw
from resdsl.backends.viz.style import SHORTCUT_COLOUR
from resdsl.ir.graph import OpKind, Role
from resdsl.ir.pipeline import load_network

SPECS = Path(__file__).resolve().parent.parent / "specs"


def network(tmp_path: Path, text: str, name: str = "net.rd", **sets):
    path = tmp_path / name
    path.write_text(text)
    return load_network(path, sets or None)


# ---------------------------------------------------------------- ResNet-D: a written shortcut


def test_resnet50d_is_timms_and_its_shortcuts_pool_only_where_the_size_changes() -> None:
    ir = load_network(SPECS / "resnet50d.rd")
    # timm 1.0 resnet50d: 25,576,264 params; its 4.35 GMACs also count BN and pooling, which the
    # paper's FLOPs (and resdsl's, 4.09G for ResNet-50 against timm's 4.11) leave out.
    assert (ir.totals.params, ir.totals.layers, ir.totals.flops) == (25_576_264, 52, 4_328_824_832)
    paths = [[ir.op(n).kind for n in r.path] for r in ir.residuals]
    conv_bn = [OpKind.CONV, OpKind.BN]
    assert paths == [conv_bn, [], [], [OpKind.AVGPOOL, *conv_bn], [], [], []] + (
        [[OpKind.AVGPOOL, *conv_bn]] + [[]] * 5 + [[OpKind.AVGPOOL, *conv_bn]] + [[]] * 2
    )
    pool = next(op for op in ir.ops() if op.kind is OpKind.AVGPOOL)
    assert pool.role is Role.SHORTCUT and pool.attrs["ceil"] is True and pool.attrs["count_pad"] is False
    assert all(r.shortcut is None for r in ir.residuals)  # no option-made shortcut anywhere


def test_generated_resnet_d_block_equals_a_direct_computation() -> None:
    import torch
    import torch.nn.functional as F

    ir = load_network(SPECS / "resnet50d.rd")
    source = render_model(ir, "resnet50d.rd")
    assert verify_model(ir, source) == []
    assert "self.downsample.append(nn.AvgPool2d(2, stride=stride, ceil_mode=True, count_include_pad=False))" in (
        source.replace("\n", "").replace("            ", "").replace("(    ", "(").replace("    )", ")")
    )
    module = load_module(source)
    torch.manual_seed(0)
    block = module.BottleneckDBlock(64, 32, stride=2).eval()
    for m in block.modules():  # non-trivial BN statistics, so that each module matters
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-1, 1)
            m.running_var.uniform_(0.5, 2)
    x = torch.randn(2, 64, 7, 7)  # odd: ceil mode keeps the last, partial window (4x4 out)
    conv, bn = block.downsample[1], block.downsample[2]
    shortcut = bn(conv(F.avg_pool2d(x, 2, 2, ceil_mode=True, count_include_pad=False)))
    body = block.bn3(block.conv3(torch.relu(block.bn2(block.conv2(torch.relu(block.bn1(block.conv1(x))))))))
    torch.testing.assert_close(block(x), torch.relu(body + shortcut))
    assert block(x).shape == (2, 128, 4, 4)
    same = module.BottleneckDBlock(128, 32).eval()  # keeps the shape: the written path is empty
    assert len(same.downsample) == 0
    y = torch.randn(1, 128, 5, 5)
    assert same(y).shape == y.shape


def test_the_plain_counterpart_drops_written_shortcuts(tmp_path: Path) -> None:
    ir = load_network(SPECS / "resnet50d.rd", {"shortcut": "none"})
    assert all(r.path is None and r.merge is None for r in ir.residuals)
    projections = 256 * 64 + 512 * 256 + 1024 * 512 + 2048 * 1024 + 2 * (256 + 512 + 1024 + 2048)
    assert ir.totals.params == 25_576_264 - projections
    assert ir.totals.layers == 52
    assert verify_model(ir, render_model(ir, "resnet50d.rd")) == []


def test_a_written_shortcut_is_drawn_beside_the_body(tmp_path: Path) -> None:
    ir = load_network(SPECS / "resnet50d.rd")
    dot = draw([("resnet50d.rd", ir)], view="block", block="conv3").source
    pool, conv, bn = ir.residuals[3].path
    add = ir.residuals[3].merge
    assert f'n{pool} [label="2x2 avg pool, /2"' in dot and "group=shortcut" in dot
    # the edges into, along and out of the written path are drawn in the shortcut colour
    coloured = {line.split("[")[0].strip() for line in dot.splitlines() if "->" in line and SHORTCUT_COLOUR in line}
    assert coloured == {
        f'"x_conv3.0_{pool - 9}" -> n{pool}',
        f"n{pool} -> n{conv}",
        f"n{conv} -> n{bn}",
        f"n{bn} -> n{add}",
    }


PREACT_WRITTEN = """\
block pre(w, stride = 1) {
    residual {
        preact { bn; relu }
        conv 3x3, w, stride: stride; bn; relu
        conv 3x3, w
        shortcut { if stride > 1 or in.channels != w { conv 1x1, w, stride: stride } }
    }
}

network net {
    input 3x16x16
    classes 10
    stem { conv 3x3, 8 }
    stage s1 = pre(8), pre(16, stride: 2)
    head { bn; relu; avgpool global; fc classes }
}
"""


def test_a_written_shortcut_after_preact_takes_the_preactivated_input(tmp_path: Path) -> None:
    import torch

    ir = network(tmp_path, PREACT_WRITTEN)
    second = ir.residuals[1]
    (proj,) = second.path
    assert ir.inputs(proj) == [second.preact[-1]]
    source = render_model(ir, "net.rd")
    assert verify_model(ir, source) == []
    module = load_module(source)
    torch.manual_seed(0)
    block = module.PreBlock(8, 16, stride=2).eval()
    x = torch.randn(2, 8, 6, 6)
    pre = torch.relu(block.bn1(x))
    expected = block.conv2(torch.relu(block.bn2(block.conv1(pre)))) + block.downsample(pre)
    torch.testing.assert_close(block(x), expected)
    assert isinstance(block.downsample[0], torch.nn.Conv2d)


# ---------------------------------------------------------------- if


IF_SPEC = """\
param deep_stem = false

block inverted(out, stride = 1, t = 6) {
    residual(shortcut: identity_or_none) {
        if t != 1 { conv 1x1, in.channels * t; bn; relu6 }
        conv 3x3, in.channels * t, stride: stride, groups: in.channels * t; bn; relu6
        conv 1x1, out; bn
    }
}

block act(kind) {
    if kind == "relu" { relu } else if kind == "gelu" { gelu } else { silu }
}

network net {
    input 3x16x16
    classes 10
    stem {
        if deep_stem { conv 3x3, 16; bn; relu; conv 3x3, 16; bn; relu } else { conv 3x3, 16; bn; relu }
    }
    stage s1 = inverted(16, t: 1), inverted(24, stride: 2), inverted(24)
    stage s2 = act("relu"), act("gelu"), act("other")
    head { avgpool global; fc classes }
}
"""


def test_if_takes_its_branch_at_each_use(tmp_path: Path) -> None:
    ir = network(tmp_path, IF_SPEC)
    convs = [len([n for n in inst.nodes if ir.op(n).kind is OpKind.CONV]) for inst in ir.sections[1].blocks]
    assert convs == [2, 3, 3]  # t = 1 has no expansion conv
    acts = [ir.op(inst.nodes[0]).kind for inst in ir.sections[2].blocks]
    assert acts == [OpKind.RELU, OpKind.GELU, OpKind.SILU]
    assert ir.totals.layers == 1 + 8 + 1
    deep = network(tmp_path, IF_SPEC, deep_stem=True)
    assert deep.totals.layers == ir.totals.layers + 1


def test_generated_if_builds_only_the_taken_branch(tmp_path: Path) -> None:
    import torch
    import torch.nn.functional as F

    ir = network(tmp_path, IF_SPEC)
    source = render_model(ir, "net.rd")
    assert verify_model(ir, source) == []
    assert "self.cond1 = t != 1" in source and "if self.cond1:" in source
    assert "if deep_stem" not in source and "self.cond3" not in source  # decided before code is written
    module = load_module(source)
    torch.manual_seed(0)
    one = module.InvertedBlock(16, 16, t=1).eval()
    assert not hasattr(one, "conv1") and one.conv2.in_channels == 16
    x = torch.randn(2, 16, 5, 5)
    expected = one.bn3(one.conv3(F.relu6(one.bn2(one.conv2(x))))) + x
    torch.testing.assert_close(one(x), expected)
    six = module.InvertedBlock(16, 24, stride=2).eval()  # the shape changes: no shortcut
    assert not six.use_shortcut and "plain=" not in source
    assert six.conv1.out_channels == 96 and six.conv2.in_channels == 96
    expected = six.bn3(six.conv3(F.relu6(six.bn2(six.conv2(F.relu6(six.bn1(six.conv1(x))))))))
    torch.testing.assert_close(six(x), expected)
    acts = [module.ActBlock(24, kind) for kind in ("relu", "gelu", "other")]
    y = torch.randn(3, 24, 2, 2)
    for block, f in zip(acts, (torch.relu, F.gelu, F.silu)):
        torch.testing.assert_close(block(y), f(y))


def test_mobilenet_v2_is_one_block_with_an_if() -> None:
    text = (SPECS / "mobilenet_v2.rd").read_text()
    assert text.count("\nblock ") == 1 and "if t != 1" in text
    ir = load_network(SPECS / "mobilenet_v2.rd")
    assert (ir.totals.params, ir.totals.layers) == (3_504_872, 53)
    assert verify_model(ir, render_model(ir, "mobilenet_v2.rd")) == []


# ---------------------------------------------------------------- fc in blocks, pools


FC_SPEC = """\
block classifier(w, p = 0.5) {
    fc w; bn; relu; dropout p
}

network net {
    input 3x8x8
    classes 10
    stem { conv 3x3, 16; bn; relu }
    head { avgpool global; classifier(64); classifier(32, p: 0.1); fc classes }
}
"""


def test_fc_in_a_block_reads_a_vector(tmp_path: Path) -> None:
    import torch

    ir = network(tmp_path, FC_SPEC)
    assert ir.totals.params == 432 + 32 + (16 * 64 + 64) + 128 + (64 * 32 + 32) + 64 + (32 * 10 + 10)
    source = render_model(ir, "net.rd")
    assert verify_model(ir, source) == []
    module = load_module(source)
    torch.manual_seed(0)
    block = module.ClassifierBlock(16, 64).eval()
    assert isinstance(block.bn1, torch.nn.BatchNorm1d)
    x = torch.randn(4, 16, 1, 1)
    torch.testing.assert_close(block(x), torch.relu(block.bn1(block.fc(x.flatten(1)))))


@pytest.mark.parametrize("size", [7, 8, 9, 15])
@pytest.mark.parametrize("kernel,stride,pad", [(2, 2, 0), (3, 2, 1), (3, 2, 0), (3, 3, 1)])
def test_ceil_mode_sizes_equal_pytorchs(tmp_path: Path, size: int, kernel: int, stride: int, pad: int) -> None:
    import torch
    import torch.nn.functional as F

    spec = f"""\
network net {{
    input 2x{size}x{size}
    classes 3
    stem {{ maxpool {kernel}x{kernel}, stride: {stride}, pad: {pad}, ceil: true; conv 1x1, 4 }}
    head {{ avgpool global; fc classes }}
}}
"""
    ir = network(tmp_path, spec)
    pool = next(op for op in ir.ops() if op.kind is OpKind.MAXPOOL)
    out = F.max_pool2d(torch.zeros(1, 2, size, size), kernel, stride, pad, ceil_mode=True)
    assert pool.shape == tuple(out.shape[1:])
    assert verify_model(ir, render_model(ir, "net.rd")) == []


# ---------------------------------------------------------------- errors

USE = """
network net {
    input 3x32x32
    classes 10
    stem { conv 3x3, 16; bn; relu }
    stage s = blk(16) * 2
    head { avgpool global; fc classes }
}
"""

ERRORS = [
    (
        "block blk(w) {\n    if w { conv 3x3, w }\n    relu\n}\n",
        """\
bad.rd:2:8: error: `if` needs true or false, got 16
    2 |     if w { conv 3x3, w }
      |        ^
  hint: compare it, e.g. `if stride > 1 { ... }`
bad.rd:10:15: note: in block `blk` used here
""",
    ),
    (
        "block blk(w) {\n    if w > 8 { residual { conv 3x3, w } }\n    relu\n}\n",
        """\
bad.rd:2:16: error: `residual { }` cannot be used inside `if` in a block
    2 |     if w > 8 { residual { conv 3x3, w } }
      |                ^^^^^^^^
  hint: put the `if` inside the section, or write two blocks
bad.rd:10:15: note: in block `blk` used here
""",
    ),
    (
        "block blk(w) {\n    residual { conv 3x3, w, stride: 2; shortcut { conv 1x1, w } }\n}\n",
        """\
bad.rd:2:40: error: the body gives 16x16x16 but the written `shortcut { }` gives 16x32x32
    2 |     residual { conv 3x3, w, stride: 2; shortcut { conv 1x1, w } }
      |                                        ^^^^^^^^
  hint: make the shortcut's ops end in the body's shape (e.g. `conv 1x1, channels, stride: s; bn`)
bad.rd:9:15: note: in block 1 of `s`, `blk` used here
""",
    ),
    (
        "block blk(w) {\n    residual(shortcut: B) { conv 3x3, w; shortcut { conv 1x1, w } }\n}\n",
        """\
bad.rd:2:42: error: this residual has both a `shortcut:` option and a `shortcut { }`
    2 |     residual(shortcut: B) { conv 3x3, w; shortcut { conv 1x1, w } }
      |                                          ^^^^^^^^
  hint: keep one: the written path replaces the option
bad.rd:9:15: note: in block `blk` used here
""",
    ),
    (
        "block blk(w) {\n    dense { conv 3x3, w; shortcut { conv 1x1, w } }\n}\n",
        """\
bad.rd:2:26: error: `shortcut { }` belongs to a residual, not to a dense section
    2 |     dense { conv 3x3, w; shortcut { conv 1x1, w } }
      |                          ^^^^^^^^
bad.rd:9:15: note: in block `blk` used here
""",
    ),
    (
        "block blk(w) {\n    conv 3x3, w\n    shortcut { conv 1x1, w }\n}\n",
        """\
bad.rd:3:5: error: `shortcut { ... }` goes inside a `residual { ... }`
    3 |     shortcut { conv 1x1, w }
      |     ^^^^^^^^
bad.rd:10:15: note: in block `blk` used here
""",
    ),
    (
        "block blk(w) {\n    residual { conv 3x3, w; shortcut { }; shortcut { bn } }\n}\n",
        """\
bad.rd:2:43: error: a residual has one `shortcut { }`
    2 |     residual { conv 3x3, w; shortcut { }; shortcut { bn } }
      |                                           ^^^^^^^^
bad.rd:9:15: note: in block `blk` used here
""",
    ),
]


@pytest.mark.parametrize("block,stderr", ERRORS, ids=range(len(ERRORS)))
def test_exact_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, block: str, stderr: str) -> None:
    result = run_cli(tmp_path, monkeypatch, {"bad.rd": block + USE}, ["check", "bad.rd"])
    assert_clean_failure(result, 1)
    assert result.stderr == stderr


def test_if_in_the_network_body_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = "network net {\n    input 3x8x8\n    classes 2\n    if true { classes 3 }\n    head { fc classes }\n}\n"
    result = run_cli(tmp_path, monkeypatch, {"bad.rd": spec}, ["check", "bad.rd"])
    assert_clean_failure(result, 1)
    assert result.stderr == (
        "bad.rd:4:5: error: `if` goes inside a block, `stem { }` or `head { }`, not in the network's body\n"
        "    4 |     if true { classes 3 }\n"
        "      |     ^^\n"
    )


def test_fc_in_a_block_on_a_feature_map_is_refused_by_compile(tmp_path: Path, monkeypatch) -> None:
    spec = FC_SPEC.replace("head { avgpool global; ", "head { ")
    result = run_cli(tmp_path, monkeypatch, {"bad.rd": spec}, ["compile", "bad.rd", "-o", "m.py"])
    assert_clean_failure(result, 1)
    assert result.stderr == (
        "error: cannot generate PyTorch code: `fc` at bad.rd:2:5 gets 16x8x8 at a use of its block; an fc "
        "inside a block needs a vector or Cx1x1 input (put `avgpool global` before it, or move it to the head)\n"
    )


def test_an_identity_written_after_preact_is_not_changed_in_place(tmp_path: Path) -> None:
    """`preact { bn }` then `relu`: the empty written path is the pre-activated tensor itself, which an
    in-place ReLU would overwrite (the generated code uses torch.relu there)."""
    import torch

    spec = """\
block pb(w) {
    residual {
        preact { bn }
        relu; conv 3x3, w
        shortcut { }
    }
}

network net {
    input 3x8x8
    classes 3
    stem { conv 3x3, 8 }
    stage s = pb(8)
    head { avgpool global; fc classes }
}
"""
    ir = network(tmp_path, spec)
    module = load_module(render_model(ir, "net.rd"))
    torch.manual_seed(0)
    block = module.PbBlock(8, 8).train()
    x = torch.randn(2, 8, 5, 5, requires_grad=True)
    pre = block.bn1(x)
    expected = block.conv1(torch.relu(pre)) + pre
    y = block(x)
    torch.testing.assert_close(y, expected)
    y.sum().backward()
