"""Issue 20's ConvNeXt constructs: stochastic depth per sample (`survival linear(first: 1, last: 0.9,
mode: per_sample)`, torchvision's StochasticDepth(p, "row")), the `placeholder` op (nn.Identity where
the original holds a parameterless module) and specs/convnext_tiny.rd, exact against torchvision's
convnext_tiny. torch is imported inside the tests: collection stays torch-free."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from resdsl.backends.pytorch.codegen import render_model
from resdsl.backends.pytorch.verify import load_module, verify_model
from resdsl.backends.report import table
from resdsl.backends.viz.labels import op_label
from resdsl.cli.main import main
from resdsl.ir.graph import OpKind
from resdsl.ir.pipeline import load_network

SPECS = Path(__file__).resolve().parent.parent / "specs"

SD_SPEC = """\
block unit() {
    residual { conv 3x3, in.channels, bias: true }
}

network sd {
    input 3x6x6
    classes 4
    survival linear(first: 1, last: 0.5, mode: per_sample)
    stem { conv 3x3, 8 }
    stage s = unit() * 3
    head { avgpool global; fc classes }
}
"""


def load(tmp_path: Path, text: str):
    spec = tmp_path / "t.rd"
    spec.write_text(text)
    return load_network(spec)


def check_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str, expected: str) -> None:
    (tmp_path / "bad.rd").write_text(text)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["check", "bad.rd"])
    assert result.exit_code == 1
    assert result.stderr == expected


# ---------------------------------------------------------------- stochastic depth per sample


def test_first_to_last_is_torchvisions_linear_rule() -> None:
    """`linear(first: 1, last: 0.9)` over ConvNeXt-T's 18 blocks: drop 0.1 * i / 17 at block i = 0..17
    (torchvision's `stochastic_depth_prob * stage_block_id / (total_stage_blocks - 1.0)`)."""
    ir = load_network(SPECS / "convnext_tiny.rd")
    assert ir.survival == ("span", 1.0, 0.9) and ir.survival_mode == "per_sample"
    got = [r.survival for r in ir.units()]
    assert len(got) == 18
    assert got == pytest.approx([1.0 - 0.1 * i / 17.0 for i in range(18)], abs=1e-15)
    # every image runs the branch (masked afterwards): training FLOPs are the test-time FLOPs
    assert ir.totals.expected_flops == ir.totals.flops
    assert "expected training FLOPs" not in table(ir, "convnext_tiny.rd")


def test_per_batch_stays_huangs_rule(tmp_path: Path) -> None:
    text = SD_SPEC.replace("first: 1, last: 0.5, mode: per_sample", "last: 0.5, mode: per_batch")
    ir = load(tmp_path, text)
    assert ir.survival == ("linear", 0.5) and ir.survival_mode == "per_batch"
    assert [r.survival for r in ir.units()] == [1 - 1 / 3 * 0.5, 1 - 2 / 3 * 0.5, 0.5]
    assert ir.totals.expected_flops < ir.totals.flops
    # written per batch, the code is what `linear(last: 0.5)` gives
    plain = load(tmp_path, SD_SPEC.replace("first: 1, last: 0.5, mode: per_sample", "last: 0.5"))
    assert render_model(ir, "t.rd") == render_model(plain, "t.rd")


def stochastic_depth(x, p: float, training: bool):
    """torchvision.ops.stochastic_depth(x, p, "row", training), as torchvision 0.28 writes it."""
    import torch

    if not training or p == 0.0:
        return x
    survival_rate = 1.0 - p
    noise = torch.empty([x.shape[0]] + [1] * (x.ndim - 1), dtype=x.dtype, device=x.device)
    noise = noise.bernoulli_(survival_rate)
    if survival_rate > 0.0:
        noise.div_(survival_rate)
    return x * noise


def test_per_sample_draws_torchvisions_masks(tmp_path: Path) -> None:
    """In training each image keeps a branch with p and is rescaled by 1 / p, drawn as torchvision
    draws it (one [N, 1, 1, 1] bernoulli_ per block, none where p is 1); at test time the identity."""
    import torch

    ir = load(tmp_path, SD_SPEC)
    assert [r.survival for r in ir.units()] == [1.0, 0.75, 0.5]
    source = render_model(ir, "t.rd")
    assert verify_model(ir, source) == []
    assert "keep.bernoulli_(self.survival).div_(self.survival)" in source
    model = load_module(source).build_model()
    x = torch.randn(64, 3, 6, 6, generator=torch.Generator().manual_seed(1))

    def reference(training: bool) -> torch.Tensor:
        y = model.conv1(x)
        for block in model.layer1:
            y = y + stochastic_depth(block.conv1(y), 1.0 - block.survival, training)
        return model.fc(torch.flatten(model.avgpool(y), 1))

    with torch.no_grad():
        for training in (True, False):
            model.train(training)
            torch.manual_seed(7)
            ours = model(x)
            torch.manual_seed(7)
            theirs = reference(training)
            assert torch.equal(ours, theirs)
        model.eval()
        evaluated = model(x)
        model.train()
        trained = model(x)
    assert not torch.allclose(trained, evaluated)  # masks drawn, kept branches rescaled by 1 / p
    torch.manual_seed(7)
    first = torch.empty([64, 1, 1, 1]).bernoulli_(0.75)  # the second block's mask, the first drawn
    assert 0 < int(first.sum()) < 64  # per image: some keep the branch, some skip it


def test_survival_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    check_error(
        tmp_path,
        monkeypatch,
        SD_SPEC.replace("mode: per_sample", "mode: per_row"),
        "bad.rd:8:48: error: `mode` of `survival` must be per_batch or per_sample, got the bare word `per_row`\n"
        "    8 |     survival linear(first: 1, last: 0.5, mode: per_row)\n"
        "      |                                                ^^^^^^^\n"
        "  hint: per_batch: the whole batch skips a branch, scaled at test time (Huang et al.); per_sample: each "
        'image skips it alone, rescaled in training (torchvision\'s StochasticDepth(p, "row"))\n',
    )
    check_error(
        tmp_path,
        monkeypatch,
        SD_SPEC.replace("first: 1,", "first: 0,"),
        "bad.rd:8:14: error: `survival` must be a probability in (0, 1] or linear(last: p), with `first: q` and "
        "`mode: per_batch` or `per_sample`, got `linear(...)`\n"
        "    8 |     survival linear(first: 0, last: 0.5, mode: per_sample)\n"
        "      |              ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^\n"
        "  hint: e.g. `survival linear(last: 0.5)`\n",
    )


# ---------------------------------------------------------------- placeholder (nn.Identity)

PH_SPEC = """\
block cn() {
    residual {
        conv 3x3, in.channels, groups: in.channels, bias: true, name: "block.0"
        placeholder name: "block.1"
        layernorm name: "block.2"
        pointwise in.channels, name: "block.3"
    }
}

network ph {
    input 3x8x8
    classes 4
    stem(name: "features.0.#") { conv 2x2, 8, stride: 2, pad: 0, bias: true; layernorm }
    stage s(name: "features.1.{i}") = cn() * 2
    head { avgpool global; layernorm name: "classifier.0"; placeholder name: "classifier.1"; fc classes, name: "classifier.2" }
}
"""


def test_placeholder_keeps_a_position_and_nothing_else(tmp_path: Path) -> None:
    import torch

    ir = load(tmp_path, PH_SPEC)
    placeholders = [op for op in ir.ops() if op.kind is OpKind.PLACEHOLDER]
    assert len(placeholders) == 3
    assert all(op.params == 0 and op.flops == 0 and op.shape == op.in_shapes[0] for op in placeholders)
    assert op_label(placeholders[0]) == "placeholder"
    source = render_model(ir, "t.rd")
    assert verify_model(ir, source) == []
    model = load_module(source).build_model()
    assert isinstance(model.features[1][0].block[1], torch.nn.Identity)
    assert isinstance(model.classifier[1], torch.nn.Identity)
    keys = list(model.state_dict())
    assert "features.1.0.block.2.weight" in keys and "classifier.2.weight" in keys
    assert not any(".block.1." in k or "classifier.1." in k for k in keys)


def test_placeholder_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    hint = (
        '  hint: name the position it keeps, e.g. `name: "block.1"`, where the original holds a module without '
        "parameters (ConvNeXt's Permute)\n"
    )
    check_error(
        tmp_path,
        monkeypatch,
        PH_SPEC.replace('placeholder name: "block.1"', "placeholder"),
        "bad.rd:4:9: error: `placeholder` keeps a position in a container, but it has no `name:` placing it in one\n"
        "    4 |         placeholder\n"
        "      |         ^^^^^^^^^^^\n" + hint,
    )
    check_error(
        tmp_path,
        monkeypatch,
        PH_SPEC.replace('placeholder name: "classifier.1"', 'placeholder name: "flatten"'),
        "bad.rd:15:78: error: `placeholder` keeps a position in a container, but `flatten` is not in one\n"
        '   15 |     head { avgpool global; layernorm name: "classifier.0"; placeholder name: "flatten"; fc classes, '
        'name: "classifier.2" }\n'
        "      |                                                                              ^^^^^^^^^\n" + hint,
    )
    check_error(
        tmp_path,
        monkeypatch,
        "network p {\n    input 3x8x8\n    classes 2\n    stem { conv 3x3, 4 }\n"
        "    head { avgpool global; placeholder; fc classes }\n}\n",
        "bad.rd:5:28: error: `placeholder` keeps a position in a container, but it has no `name:` placing it in one\n"
        "    5 |     head { avgpool global; placeholder; fc classes }\n"
        "      |                            ^^^^^^^^^^^\n" + hint,
    )
    check_error(
        tmp_path,
        monkeypatch,
        PH_SPEC.replace('placeholder name: "block.1"', "placeholder 3"),
        "bad.rd:4:21: error: `placeholder` takes no positional arguments, got 1\n"
        "    4 |         placeholder 3\n"
        "      |                     ^\n"
        '  hint: e.g. `placeholder name: "block.1"`\n',
    )


# ---------------------------------------------------------------- specs/convnext_tiny.rd


def test_convnext_tiny_figures() -> None:
    """torchvision 0.29's table: 28,589,128 params, 4.46 GFLOPs (multiply-adds of convs and Linears)."""
    ir = load_network(SPECS / "convnext_tiny.rd")
    assert (ir.totals.params, ir.totals.flops, ir.totals.layers) == (28_589_128, 4_455_531_264, 59)
    assert ir.output_shape == (1000,)


def test_convnext_tiny_without_stochastic_depth_differs_in_training_only(tmp_path: Path) -> None:
    """The recorded train-mode output holds torchvision's per-sample stochastic depth: without it the
    weights load and eval agrees, training does not."""
    from test_zoo import recorded_difference

    text = (SPECS / "convnext_tiny.rd").read_text()
    line = "    survival linear(first: 1, last: 0.9, mode: per_sample)\n"
    assert line in text
    path = tmp_path / "convnext_tiny.rd"
    path.write_text(text.replace(line, ""))
    problems = recorded_difference("convnext_tiny", render_model(load_network(path), "convnext_tiny.rd"))
    assert problems and not any(p.startswith("eval") for p in problems)
    assert any(p.startswith("train") for p in problems)


def test_diagrams_say_per_sample_and_draw_placeholders(tmp_path: Path) -> None:
    out = tmp_path / "b.dot"
    result = CliRunner().invoke(main, ["viz", str(SPECS / "convnext_tiny.rd"), "--block", "s1.1", "-o", str(out)])
    assert result.exit_code == 0, result.output
    dot = out.read_text()
    assert "survives per sample with p = 0.99" in dot and "placeholder" in dot
    assert "rescaled by 1/p in training" in dot  # the addition's tooltip
    out = tmp_path / "n.dot"
    assert CliRunner().invoke(main, ["viz", str(SPECS / "convnext_tiny.rd"), "-o", str(out)]).exit_code == 0
    assert "survival 1.00 → 0.99 per sample" in out.read_text()


def test_the_mode_is_part_of_a_runs_fingerprint(tmp_path: Path) -> None:
    from resdsl.train import fingerprint

    per_sample = fingerprint.network(load(tmp_path, SD_SPEC))
    per_batch = fingerprint.network(load(tmp_path, SD_SPEC.replace("mode: per_sample", "mode: per_batch")))
    assert per_sample["survival_mode"] == "per_sample" and "survival_mode" not in per_batch
    assert fingerprint.difference(per_batch, per_sample) == "stochastic depth is per_sample here, per_batch in the run"
