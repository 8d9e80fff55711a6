"""Weights: `name:` options give the generated module the keys a spec chooses, `resdsl weights check`
loads a state_dict with strict=True and compares outputs with a reference, and `compile` notes the
stride choice that a state_dict cannot show."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from click.testing import CliRunner

from resdsl.backends.pytorch.codegen import render_model
from resdsl.backends.pytorch.verify import load_module
from resdsl.backends.pytorch.weights import load_weights, read_state_dict
from resdsl.cli.main import main
from resdsl.diagnostics import InputError
from resdsl.ir.pipeline import load_network
from resdsl.lang.overrides import parse_sets

if TYPE_CHECKING:
    import torch

TINY = """import "std.rd"

network tiny {
    input 3x16x16
    classes 5
    shortcut B

    stem { conv 3x3, 8; bn; relu }
    stage conv2 = bottleneck(4, stride: 2)
    head { avgpool global; fc classes }
}
"""
V1_NOTE = (
    'note: tiny\'s strided blocks put their stride where stride_at = "first" says; a state_dict carries no '
    "strides, so weights trained with another choice load with strict=True and compute another function "
    "(e.g. torchvision's ResNet v1.5 strides the 3x3: --set stride_at=middle). Change it with --set; "
    "`resdsl weights check --reference` compares outputs\n"
)


def build(path: Path, sets: tuple[str, ...] = ()):
    ir = load_network(path, parse_sets(sets))
    return load_module(render_model(ir, path)).build_model()


@pytest.fixture
def tiny(tmp_path: Path) -> dict[str, Path]:
    """A tiny v1.5 bottleneck network (stride on the 3x3), its weights (random, BN statistics too)
    and a reference {input, output} computed by it in eval mode."""
    import torch

    spec = tmp_path / "tiny.rd"
    spec.write_text(TINY)
    torch.manual_seed(0)
    model = build(spec, ("stride_at=middle",))
    with torch.no_grad():
        for key, value in model.state_dict().items():
            if value.dtype.is_floating_point:
                value.copy_(torch.rand_like(value) + 0.5 if key.endswith("running_var") else torch.randn_like(value))
    model.eval()
    x = torch.randn(2, 3, 16, 16)
    weights, reference = tmp_path / "w.pt", tmp_path / "ref.pt"
    torch.save(model.state_dict(), weights)
    torch.save({"input": x, "output": model(x).detach()}, reference)
    return {"spec": spec, "weights": weights, "reference": reference, "dir": tmp_path}


def run(*args: str):
    return CliRunner().invoke(main, list(args))


# ---------------------------------------------------------------- resdsl weights check


def test_good_weights_load(tiny) -> None:
    result = run("weights", "check", str(tiny["spec"]), str(tiny["weights"]))
    assert result.exit_code == 0, result.output
    assert result.output == f"{tiny['weights']}: ok: 32 tensors load into tiny with strict=True\n"


def test_a_checkpoint_dict_holding_the_state_dict_loads(tiny) -> None:
    import torch

    checkpoint = tiny["dir"] / "ckpt.pt"
    torch.save({"epoch": 3, "model": torch.load(tiny["weights"])}, checkpoint)
    result = run("weights", "check", str(tiny["spec"]), str(checkpoint))
    assert result.exit_code == 0, result.output


def test_a_missing_key_and_a_wrong_shape_are_named(tiny) -> None:
    import torch

    state = torch.load(tiny["weights"])
    del state["fc.bias"]
    state["conv1.weight"] = torch.zeros(8, 3, 5, 5)
    state["extra.weight"] = torch.zeros(1)
    bad = tiny["dir"] / "bad.pt"
    torch.save(state, bad)
    result = run("weights", "check", str(tiny["spec"]), str(bad))
    assert result.exit_code == 1
    assert result.output == (
        f"error: {bad} does not fit tiny's generated module: 1 missing key, 1 unexpected, 1 shape mismatch\n"
        "  missing: fc.bias\n"
        "  unexpected: extra.weight\n"
        "  shape: conv1.weight is [8, 3, 5, 5] in the file, [8, 3, 3, 3] in the model\n"
    )


def test_a_matching_reference_passes(tiny) -> None:
    result = run(
        "weights", "check", str(tiny["spec"]), str(tiny["weights"]), "--reference", str(tiny["reference"]),
        "--set", "stride_at=middle",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[1].startswith(f"{tiny['reference']}: ok: max abs diff ")
    assert lines[1].endswith(" <= tolerance 0.0001 over 10 outputs")


def test_v1_weights_load_but_compute_another_function(tiny) -> None:
    """The v1.5 weights load into the v1 network (stride on the first 1x1) with strict=True; the
    reference shows that it computes another function."""
    result = run("weights", "check", str(tiny["spec"]), str(tiny["weights"]), "--reference", str(tiny["reference"]))
    assert result.exit_code == 1
    first, error, hint = result.output.splitlines()
    assert first == f"{tiny['weights']}: ok: 32 tensors load into tiny with strict=True"
    assert error.startswith(f"error: the outputs differ from {tiny['reference']}: max abs diff ")
    assert error.endswith(" > tolerance 0.0001")
    assert hint == (
        "  the weights loaded with strict=True, which is not proof of the same function: a state_dict carries no "
        "strides, padding or pooling. Check where strided blocks put their stride (std.rd: --set stride_at=middle "
        "for torchvision's ResNet v1.5), each conv's padding, the pools (kernel, stride, padding, global or not), "
        "and that the reference ran in eval mode"
    )


def test_a_looser_tolerance_is_an_option(tiny) -> None:
    args = ["weights", "check", str(tiny["spec"]), str(tiny["weights"]), "--reference", str(tiny["reference"])]
    assert run(*args, "--tolerance", "1e9").exit_code == 0


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "error: cannot read weights {path}: no such file\n"),
        (b"not a pickle", "error: cannot read weights {path}: not a file torch.save wrote, or it holds more than tensors\n"),
        ([1, 2], "error: {path} holds no state_dict: expected a dict of tensors (model.state_dict()), or a checkpoint dict with one under `state_dict` or `model`\n"),
    ],
    ids=["missing", "garbage", "not-a-dict"],
)  # fmt: skip
def test_unreadable_weights(tiny, content, message: str) -> None:
    import torch

    path = tiny["dir"] / "x.pt"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        torch.save(content, path)
    result = run("weights", "check", str(tiny["spec"]), str(path))
    assert result.exit_code == 1
    assert result.output == message.format(path=path)


def test_a_bad_reference_file(tiny) -> None:
    import torch

    ref = tiny["dir"] / "r.pt"
    torch.save({"input": torch.zeros(1, 3, 16, 16)}, ref)
    result = run("weights", "check", str(tiny["spec"]), str(tiny["weights"]), "--reference", str(ref))
    assert result.exit_code == 1
    assert result.output == f'error: {ref} must hold {{"input": tensor, "output": tensor}} (torch.save of a dict)\n'


def test_load_weights_is_the_shared_function(tiny) -> None:
    """The function `resdsl weights check` uses, for other commands: it raises an InputError."""
    import torch

    model = build(tiny["spec"])
    state = read_state_dict(tiny["weights"])
    load_weights(model, state, "w.pt", "tiny")
    assert torch.equal(model.state_dict()["fc.weight"], state["fc.weight"])
    del state["fc.weight"]
    with pytest.raises(InputError, match=r"^w.pt does not fit tiny: 1 missing key, 0 unexpected, 0 shape mismatches"):
        load_weights(model, state, "w.pt", "tiny")


# ---------------------------------------------------------------- compile's note on strides


def test_compile_notes_the_stride_choice(tiny) -> None:
    result = CliRunner().invoke(main, ["compile", str(tiny["spec"]), "-o", str(tiny["dir"] / "m.py")])
    assert result.exit_code == 0, result.output
    assert result.stderr == V1_NOTE + f"wrote {tiny['dir'] / 'm.py'}: tiny, 5 layers, 765 params\n"


def test_no_note_without_a_stride_choice() -> None:
    root = Path(__file__).resolve().parent.parent
    result = CliRunner().invoke(main, ["compile", str(root / "specs" / "resnet18.rd")])
    assert result.exit_code == 0 and result.stderr == ""


# ---------------------------------------------------------------- `name:` options


def test_vgg_without_its_names_does_not_load_torchvision_keys(tmp_path: Path) -> None:
    """The golden test (test_codegen.py) can fail: without `name:` VGG-16 has resdsl's own keys."""
    import json

    import torch

    root = Path(__file__).resolve().parent.parent
    text = (root / "specs" / "vgg16.rd").read_text().replace('(name: "features.#")', "")
    spec = tmp_path / "vgg16.rd"
    spec.write_text(text.replace('head(name: "classifier.#")', "head"))
    with torch.device("meta"):
        model = build(spec)
    golden = json.loads((root / "tests" / "golden" / "torchvision_state_dicts.json").read_text())["vgg16"]
    assert list(model.state_dict())[:2] == ["layer1.0.conv1.weight", "layer1.0.conv1.bias"]
    assert [k for k, _ in golden][:2] == ["features.0.weight", "features.0.bias"]


def test_bad_names_are_spec_errors(tmp_path: Path) -> None:
    spec = tmp_path / "n.rd"
    spec.write_text(
        'import "std.rd"\nblock b() {\n    conv 3x3, 4, name: "a.b"\n}\nnetwork t {\n    input 3x8x8\n    classes 2\n'
        '    stage a(name: "x") = basic(4) * 2, b()\n    head { avgpool global; fc classes }\n}\n'
    )
    result = run("check", str(spec))
    assert result.exit_code == 1
    assert result.output == (
        f"{spec}:3:24: error: bad module name 'a.b': a name inside a block is one attribute, or a container and "
        "positions in it (`conv.0.1`)\n"
        '    3 |     conv 3x3, 4, name: "a.b"\n'
        "      |                        ^^^^^\n"
        '  hint: e.g. `bn name: "norm1"`\n'
        f"{spec}:8:40: note: in block `b` used here\n"
        f"{spec}:8:11: error: stage `a` would give its 3 blocks one name, 'x'\n"
        '    8 |     stage a(name: "x") = basic(4) * 2, b()\n'
        "      |           ^\n"
        "  hint: number them with `{i}` (0, 1, ...), `{n}` (1, 2, ...) or a last `.#`\n"
    )


def test_names_place_modules_in_containers(tmp_path: Path) -> None:
    import torch

    spec = tmp_path / "t.rd"
    spec.write_text(
        'import "std.rd"\nnetwork t {\n    input 3x8x8\n    classes 2\n    shortcut none\n'
        '    stem { conv 3x3, 4, name: "features.conv0"; bn name: "features.norm0"; relu }\n'
        '    stage a(name: "features.block{n}") = transition(4) * 2\n'
        '    head(name: "classifier.#") { avgpool global; fc classes }\n}\n'
    )
    model = build(spec)
    assert [k for k in model.state_dict() if k.endswith("weight")] == [
        "features.conv0.weight", "features.norm0.weight", "features.block1.norm.weight",
        "features.block1.conv.weight", "features.block2.norm.weight", "features.block2.conv.weight",
        "classifier.1.weight",
    ]  # fmt: skip
    assert model(torch.zeros(2, 3, 8, 8)).shape == (2, 2)


# ---------------------------------------------------------------- weights rename: another naming, by position

ROOT = Path(__file__).resolve().parent.parent


def timm_state_dict(name: str) -> dict[str, torch.Tensor]:
    """Random tensors with the keys and shapes of timm's model (golden), in its order."""
    import json

    import torch

    golden = json.loads((ROOT / "tests" / "golden" / "timm_state_dicts.json").read_text())[name]
    torch.manual_seed(0)
    return {key: torch.randn(shape) if shape else torch.tensor(7) for key, shape in golden}


def test_timm_resnet50d_weights_load_after_rename(tmp_path: Path) -> None:
    import torch

    theirs = timm_state_dict("resnet50d")
    source = tmp_path / "timm.pt"
    torch.save(theirs, source)
    spec = str(ROOT / "specs" / "resnet50d.rd")
    check = CliRunner().invoke(main, ["weights", "check", spec, str(source)])
    assert check.exit_code == 1
    assert "18 missing keys, 18 unexpected, 5 shape mismatches" in check.stderr
    out, key_map = tmp_path / "ours.pt", tmp_path / "map.json"
    result = CliRunner().invoke(main, ["weights", "rename", spec, str(source), "-o", str(out), "--map", str(key_map)])
    assert result.exit_code == 0, result.output
    assert result.stdout == f"wrote {out}: 332 tensors in resnet50d's names (24 renamed, shapes checked)\n"
    renamed = torch.load(out, weights_only=True)
    for (their_key, value), (our_key, ours) in zip(theirs.items(), renamed.items()):
        torch.testing.assert_close(ours, value, msg=f"{their_key} -> {our_key}")
    import json

    pairs = json.loads(key_map.read_text())
    assert pairs["conv1.0.weight"] == "conv1.weight" and pairs["conv1.3.weight"] == "conv2.weight"
    assert pairs["bn1.weight"] == "bn3.weight"  # timm's stem ends with the model's bn1
    assert pairs["layer1.0.downsample.1.weight"] == "layer1.0.downsample.0.weight"  # no pool at stride 1 here
    assert pairs["layer2.0.downsample.1.weight"] == "layer2.0.downsample.1.weight"  # behind the pool
    check = CliRunner().invoke(main, ["weights", "check", spec, str(out)])
    assert check.stdout == f"{out}: ok: 332 tensors load into resnet50d with strict=True\n"


def test_a_different_naming_is_pointed_at_rename(tmp_path: Path) -> None:
    import torch

    theirs = timm_state_dict("seresnet50")
    torch.save(theirs, tmp_path / "se.pt")
    check = CliRunner().invoke(
        main, ["weights", "check", str(ROOT / "specs" / "seresnet50.rd"), str(tmp_path / "se.pt")]
    )
    assert check.exit_code == 1
    assert check.stderr.startswith("error: ") and "88 missing keys, 88 unexpected, 0 shape mismatches" in check.stderr
    renamed = {f"m{i}.weight": v for i, v in enumerate(theirs.values())}  # nothing shared, counts agree
    torch.save(renamed, tmp_path / "other.pt")
    check = CliRunner().invoke(
        main, ["weights", "check", str(ROOT / "specs" / "seresnet50.rd"), str(tmp_path / "other.pt")]
    )
    assert check.stderr.endswith(
        "  hint: no key is shared but the counts agree: the weights follow another naming; "
        "`resdsl weights rename` pairs them with the module's by position\n"
    )


def test_rename_refuses_weights_that_do_not_pair(tmp_path: Path) -> None:
    import torch

    theirs = timm_state_dict("resnet50d")
    spec = str(ROOT / "specs" / "resnet50d.rd")
    short = dict(list(theirs.items())[1:])
    torch.save(short, tmp_path / "short.pt")
    result = CliRunner().invoke(main, ["weights", "rename", spec, str(tmp_path / "short.pt"), "-o", "x.pt"])
    assert result.exit_code == 1
    assert result.stderr == (
        f"error: {tmp_path / 'short.pt'} has 331 tensors, the model 332: they cannot be paired by position\n"
        "  hint: check the spec against the network the weights come from (`resdsl weights check` lists keys)\n"
    )
    theirs["conv1.3.weight"] = torch.randn(32, 32, 1, 1)
    torch.save(theirs, tmp_path / "other.pt")
    result = CliRunner().invoke(main, ["weights", "rename", spec, str(tmp_path / "other.pt"), "-o", "x.pt"])
    assert result.exit_code == 1
    assert result.stderr == (
        f"error: {tmp_path / 'other.pt'}: tensor 7 of 332 does not fit: conv1.3.weight is "
        "[32, 32, 1, 1], the model's conv2.weight is [32, 32, 3, 3]\n"
        "  hint: the two networks differ there (or list their modules in another order)\n"
    )


def test_positions_in_a_block_run_in_order(tmp_path: Path) -> None:
    spec = tmp_path / "p.rd"
    spec.write_text(
        'block b() {\n    conv 3x3, 4, name: "conv.0"; bn name: "conv.2"\n}\nnetwork t {\n    input 3x8x8\n'
        "    classes 2\n    stage s = b()\n    head { avgpool global; fc classes }\n}\n"
    )
    result = run("compile", str(spec), "-o", str(tmp_path / "m.py"))
    assert result.exit_code == 1
    assert result.output == (  # found by `check` (fuzz/regressions/names/block-container-position-gap.rd)
        f"{spec}:2:43: error: bad module name 'conv.2': `conv` holds 1 module here, so its next is `conv.1`\n"
        '    2 |     conv 3x3, 4, name: "conv.0"; bn name: "conv.2"\n'
        "      |                                           ^^^^^^^^\n"
        "  hint: a block's containers are numbered in the order their modules run; where the original holds "
        'a module without parameters there, write `placeholder name: "conv.1"`\n'
    )
    spec.write_text(spec.read_text().replace('"conv.2"', '"conv.1"'))
    model = build(spec)
    assert list(model.state_dict())[:3] == ["layer1.0.conv.0.weight", "layer1.0.conv.1.weight", "layer1.0.conv.1.bias"]
