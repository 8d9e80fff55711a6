"""`resdsl compile`: the generated PyTorch module equals the IR, for every spec.

Every spec is compiled, imported and run (on the meta device for the large ones, on the CPU with
real tensors for the CIFAR-sized ones): its parameter count, each stage's output shape and the
multiply-adds of its convolutions and linear layers must equal the analysis. Goldens of three
generated files are rewritten on purpose with `python scripts/regen_goldens.py`.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from functools import cache
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from resdsl.backends.pytorch.codegen import render_model
from resdsl.backends.pytorch.verify import load_module, measure_model, verify_model
from resdsl.cli.main import main
from resdsl.ir.paths import stage_modules
from resdsl.ir.pipeline import load_network
from resdsl.lang.overrides import parse_sets

ROOT = Path(__file__).resolve().parent.parent
SPECS = ROOT / "specs"
GOLDEN = Path(__file__).parent / "golden"
REFERENCE = json.loads((GOLDEN / "reference.json").read_text())
sys.path.insert(0, str(ROOT / "scripts"))
from regen_goldens import MODEL_GOLDENS  # noqa: E402

ALL_SPECS = sorted(p.stem for p in SPECS.glob("*.rd") if p.stem != "std")
SMALL = {"cifar20", "cifar32", "cifar44", "cifar56", "nin_cifar10", "densenet40", "preact_resnet110"}
V15 = ("stride_at=middle",)


@cache
def generated(spec: str, sets: tuple[str, ...] = ()) -> tuple[object, str]:
    ir = load_network(SPECS / f"{spec}.rd", parse_sets(sets))
    return ir, render_model(ir, f"specs/{spec}.rd")


def stage_outputs(ir) -> dict[str, tuple[int, ...]]:
    """Each stage's output shape, by its label in stage_modules (`layerN`, or its name where the spec names modules)."""
    stages = {s.name: s for s in ir.sections if s.kind == "stage"}
    labels = list(stage_modules(ir))
    if "layer1" in labels:
        return {label: ir.op(s.nodes[-1]).shape for label, s in zip(labels, stages.values())}
    return {label: ir.op(stages[label].nodes[-1]).shape for label in labels}


# ---------------------------------------------------------------- every spec equals its IR


@pytest.mark.parametrize("spec", ALL_SPECS)
def test_generated_module_equals_ir(spec: str) -> None:
    import torch

    ir, source = generated(spec)
    module = load_module(source)
    device = "cpu" if spec in SMALL else "meta"
    with torch.device(device):
        model = module.build_model()
    want = stage_outputs(ir)
    got = measure_model(model, ir.input_shape, stage_modules(ir))
    assert got["params"] == ir.totals.params
    assert got["shapes"] == {**want, "<stem>": got["shapes"].get("<stem>")}
    assert got["output"] == (ir.classes,)
    assert got["macs"] == ir.totals.flops
    assert module.INPUT_SHAPE == ir.input_shape and module.NUM_CLASSES == ir.classes


@pytest.mark.parametrize("spec", ALL_SPECS)
def test_survival_of_every_block_equals_ir(spec: str) -> None:
    """Stochastic depth: each residual unit's survival in the module is the IR's (1.0 where none)."""
    import torch

    ir, source = generated(spec)
    with torch.device("meta"):
        model = load_module(source).build_model()
    got = [m.survival for m in model.modules() if hasattr(m, "survival")]
    want = [r.survival for r in ir.units() if r.survival != 1.0]
    assert [p for p in got if p != 1.0] == pytest.approx(want, abs=0, rel=1e-15)


def test_regular_stages_use_make_stage_and_the_spec_params_are_folded() -> None:
    _, source = generated("resnet50", V15)
    assert "self.layer3 = self.make_stage(256, blocks=6, stride=2)" in source
    assert "STRIDE_AT" not in source and "stride_at" not in source.split('"""', 2)[2]
    assert "self.conv2 = nn.Conv2d(width, width, 3, stride=stride, padding=1, bias=False)" in source
    assert "out_channels" not in source.split("class BottleneckBlock")[1].split("def forward")[0]


def test_one_depth_is_one_number_to_change() -> None:
    """Edit `blocks=3` to `blocks=5` in every stage of CIFAR ResNet-20: the module is ResNet-32."""
    import torch

    _, source = generated("cifar20")
    edited = source.replace("blocks=3", "blocks=5")
    with torch.device("meta"):
        model = load_module(edited).build_model()
    ir32, _ = generated("cifar32")
    assert sum(p.numel() for p in model.parameters()) == ir32.totals.params


def test_one_width_is_one_number_to_change() -> None:
    """Widen ResNet-18's conv3 stage from 128 to 192: shortcuts and the next stage follow."""
    import torch

    _, source = generated("resnet18")
    edited = source.replace("self.make_stage(128, blocks=2, stride=2)", "self.make_stage(192, blocks=2, stride=2)")
    assert edited != source
    model = load_module(edited).build_model()
    out = model(torch.zeros(1, 3, 64, 64))
    assert out.shape == (1, 1000)
    assert model.layer3[0].downsample[0].in_channels == 192


def test_irregular_stages_are_written_out() -> None:
    _, source = generated("densenet40")
    assert "make_stage" not in source
    assert "self.layer1 = nn.Sequential(" in source


@pytest.mark.parametrize("spec", ["resnet50", "resnet101", "resnet152"])
def test_v1_5_bottlenecks_equal_ir(spec: str) -> None:
    ir, source = generated(spec, V15)
    assert verify_model(ir, source) == []


def test_real_forward_and_backward_on_cpu() -> None:
    import torch

    ir, source = generated("cifar20")
    torch.manual_seed(0)
    model = load_module(source).build_model()
    x = torch.randn(4, 3, 32, 32)
    out = model(x)
    assert out.shape == (4, 10) and torch.isfinite(out).all()
    out.sum().backward()
    assert all(p.grad is not None for p in model.parameters())


# ---------------------------------------------------------------- torchvision compatibility


@cache
def torchvision_state_dicts() -> dict[str, list]:
    return json.loads((GOLDEN / "torchvision_state_dicts.json").read_text())


OWN_BLOCKS = {
    "mobilenet_v2",
    "mobilenet_v3_large",
    "efficientnet_b0",
    "convnext_tiny",
}  # no std.rd: no `stride_at` to set


@pytest.mark.parametrize("spec", list(torchvision_state_dicts()))  # every network in the golden
def test_state_dict_matches_torchvision(spec: str) -> None:
    """Keys, order and shapes of torchvision's model (golden made by scripts/record_zoo.py),
    so torchvision's weights load with strict=True."""
    import torch

    _, source = generated(spec, () if spec in OWN_BLOCKS else V15)
    with torch.device("meta"):
        model = load_module(source).build_model()
    ours = [[k, list(v.shape)] for k, v in model.state_dict().items()]
    golden = torchvision_state_dicts()[spec]
    assert ours == golden
    theirs = {k: torch.zeros(shape, device="meta") for k, shape in golden}
    model.load_state_dict(theirs, strict=True, assign=True)


# ---------------------------------------------------------------- shortcut options


def _params(spec: str, sets: tuple[str, ...]) -> int:
    import torch

    _, source = generated(spec, sets)
    with torch.device("meta"):
        return sum(p.numel() for p in load_module(source).build_model().parameters())


@pytest.mark.parametrize("row", REFERENCE["cifar"][:4], ids=lambda r: f"n{r['n']}")
@pytest.mark.parametrize("option", ["A", "B", "C"])
def test_cifar_options_give_reference_params(row: dict, option: str) -> None:
    spec = REFERENCE["cifar_specs"][str(row["n"])].removesuffix(".rd")
    assert _params(spec, (f"shortcut={option}",)) == row[f"params_{option}"]


@pytest.mark.parametrize("row", REFERENCE["imagenet_plain_via_set"], ids=lambda r: r["spec"])
def test_plain_imagenet_params(row: dict) -> None:
    assert _params(row["spec"].removesuffix(".rd"), tuple(row["set"])) == row["params"]


def _adds(spec: str, sets: tuple[str, ...]) -> int:
    """Additions in the traced forward graph (torch.fx)."""
    import operator

    import torch
    import torch.fx

    _, source = generated(spec, sets)
    graph = torch.fx.symbolic_trace(load_module(source).build_model().eval()).graph
    adds = {operator.add, operator.iadd, torch.add}
    return sum(1 for n in graph.nodes if n.op == "call_function" and n.target in adds)


def test_plain_net_forward_has_no_add() -> None:
    assert _adds("cifar20", ("shortcut=none",)) == 0
    assert _adds("plain18", ()) == 0
    assert _adds("cifar20", ()) == 9  # one per residual block
    assert _adds("resnet18", ()) == 8


def test_option_a_zero_pads_without_parameters() -> None:
    import torch

    _, source = generated("cifar20")
    module = load_module(source)
    pad = module.ZeroPadShortcut(16, 32, stride=2)
    x = torch.randn(2, 16, 8, 8)
    y = pad(x)
    assert y.shape == (2, 32, 4, 4) and not list(pad.parameters())
    assert torch.equal(y[:, :16], x[:, :, ::2, ::2]) and not y[:, 16:].any()


def test_option_c_projects_every_shortcut() -> None:
    from torch import nn

    _, source = generated("cifar20", ("shortcut=C",))
    model = load_module(source).build_model()
    blocks = [m for m in model.modules() if type(m).__name__ == "BasicBlock"]
    assert len(blocks) == 9 and all(isinstance(b.downsample, nn.Sequential) for b in blocks)


# ---------------------------------------------------------------- semantics


def test_stochastic_depth_drops_in_training_and_scales_at_test_time() -> None:
    import torch

    _, source = generated("stochdepth110", ("n=1",))
    module = load_module(source)
    assert module.survival_probability(3) == 0.5  # the last of 3 units: linear(last: 0.5)
    block = module.BasicBlock(16, 16, survival=0.25)
    x = torch.randn(2, 16, 8, 8)
    block.eval()
    with torch.no_grad():
        branch = block.bn2(block.conv2(block.relu(block.bn1(block.conv1(x)))))
        assert torch.allclose(block(x), torch.relu(branch * 0.25 + x))
    block.train()
    torch.manual_seed(0)
    outputs = [block(x) for _ in range(200)]
    dropped = sum(torch.equal(o, torch.relu(x)) for o in outputs)
    assert 30 < dropped < 170  # survives with p = 0.25: about 150 of 200 drop
    model = module.build_model()
    survivals = [m.survival for m in model.modules() if type(m).__name__ == "BasicBlock"]
    assert survivals == [1 - unit / 3 * 0.5 for unit in (1, 2, 3)]


def test_zero_init_residual() -> None:
    import torch

    _, source = generated("resnet50", V15)
    module = load_module(source)
    with torch.device("meta"):
        plain, zeroed = module.build_model(), module.build_model(zero_init_residual=True)
    del plain
    blocks = [m for m in zeroed.modules() if type(m).__name__ == "BottleneckBlock"]
    assert len(blocks) == 16
    model = load_module(generated("cifar20")[1]).build_model(zero_init_residual=True)
    for m in model.modules():
        if type(m).__name__ == "BasicBlock":
            assert not m.bn2.weight.any() and m.bn1.weight.eq(1).all()
    result = CliRunner().invoke(main, ["compile", str(SPECS / "cifar20.rd"), "--zero-init-residual"])
    assert "def build_model(zero_init_residual: bool = True)" in result.stdout


def test_he_initialisation() -> None:
    import torch

    torch.manual_seed(0)
    model = load_module(generated("cifar56")[1]).build_model()
    conv = model.layer3[0].conv2  # 64 -> 64, 3x3: std sqrt(2 / (64 * 9))
    assert abs(conv.weight.std().item() - (2 / (64 * 9)) ** 0.5) < 0.002
    assert model.bn1.weight.eq(1).all() and not model.bn1.bias.any()


def test_preact_projection_takes_the_preactivated_input() -> None:
    import torch

    _, source = generated("preact_resnet164")
    assert "shortcut = x if self.downsample is None else self.downsample(out)" in source
    model = load_module(source).build_model().eval()
    first = model.layer1[0]
    x = torch.randn(2, 16, 8, 8)
    with torch.no_grad():
        pre = first.relu(first.bn1(x))
        body = first.conv3(first.relu(first.bn3(first.conv2(first.relu(first.bn2(first.conv1(pre)))))))
        assert torch.allclose(first(x), body + first.downsample(pre), atol=1e-6)


# ---------------------------------------------------------------- the file itself


@pytest.mark.parametrize(("spec", "sets"), MODEL_GOLDENS, ids=[s for s, _ in MODEL_GOLDENS])
def test_golden_source(spec: str, sets: tuple[str, ...]) -> None:
    expected = (GOLDEN / f"model_{spec}.py").read_text()
    assert generated(spec, sets)[1] == expected, "regenerate with: python scripts/regen_goldens.py"


def test_output_is_byte_identical_across_processes(tmp_path: Path) -> None:
    outputs = []
    for seed in ("1", "2"):
        out = tmp_path / f"model{seed}.py"
        env = {**os.environ, "PYTHONHASHSEED": seed}
        subprocess.run(
            [sys.executable, "-m", "resdsl", "compile", str(SPECS / "stochdepth110.rd"), "-o", str(out)],
            check=True,
            env=env,
            capture_output=True,
        )
        outputs.append(out.read_bytes())
    assert outputs[0] == outputs[1]


def test_generated_files_pass_ruff(tmp_path: Path) -> None:
    for spec in ALL_SPECS:
        (tmp_path / f"{spec}.py").write_text(generated(spec)[1])
    ruff = [sys.executable, "-m", "ruff"]
    check = subprocess.run([*ruff, "check", "--isolated", str(tmp_path)], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout
    fmt = subprocess.run([*ruff, "format", "--isolated", "--check", str(tmp_path)], capture_output=True, text=True)
    assert fmt.returncode == 0, fmt.stdout + fmt.stderr


@pytest.mark.parametrize("spec", ["cifar1202", "resnet152", "stochdepth110", "densenet40"])
def test_imports_only_torch_and_stays_short(spec: str) -> None:
    source = generated(spec)[1]
    imported = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            imported |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            imported.add(node.module.split(".")[0])
    assert imported <= {"__future__", "math", "torch"}
    assert len(source.splitlines()) < 200  # stages are loops: ResNet-1202 is as short as ResNet-20


NESTED = """
import "std.rd"

# Two residuals in one block, a residual nested in a residual, and a block calling a block.
block twice(width, stride = 1) {
    residual { conv 3x3, width, stride: stride; bn; relu }
    residual(survival: 0.8) {
        conv 1x1, width; bn; relu
        residual { conv 3x3, width; bn }
    }
    relu
}

block wrapper(width, stride = 1) {
    basic(width, stride: stride)
    conv 1x1, width * 2; bn; relu
    pool_free(width * 2)
}

block pool_free(c) {
    dense { bn; relu; conv 3x3, c / 2 }
}

network nested {
    input 3x16x16
    classes 5
    shortcut B
    survival linear(last: 0.5)
    stem { conv 3x3, 8; bn; relu }
    stage a = twice(8) * 2, twice(16, stride: 2)
    stage b = wrapper(16, stride: 2) * 2
    stage c = basic(32, shortcut: none), basic(32), basic(64, stride: 2, shortcut: A)
    head { avgpool global; fc classes }
}
"""


def test_nested_residuals_and_blocks_calling_blocks(tmp_path: Path) -> None:
    """Several residuals in one block, a residual in a residual, a block calling blocks, a dense
    section, per-use shortcut overrides (none, A) beside B, explicit and linear survival."""
    import torch

    spec = tmp_path / "nested.rd"
    spec.write_text(NESTED)
    ir = load_network(spec)
    source = render_model(ir, "nested.rd")
    assert verify_model(ir, source) == []
    assert "for unit in range(1, 7, 3)" in source  # equal uses loop over their stochastic-depth units
    model = load_module(source).build_model()
    torch.manual_seed(0)
    out = model.train()(torch.randn(4, 3, 16, 16))
    out.sum().backward()
    assert model.eval()(torch.randn(2, 3, 16, 16)).shape == (2, 5)
    (tmp_path / "nested.py").write_text(source)
    ruff = [sys.executable, "-m", "ruff"]
    assert subprocess.run([*ruff, "check", "--isolated", "-q", str(tmp_path / "nested.py")]).returncode == 0
    assert subprocess.run([*ruff, "format", "--isolated", "--check", "-q", str(tmp_path / "nested.py")]).returncode == 0


# ---------------------------------------------------------------- names cannot inject code


HOSTILE = """
param class = 2
param lambda = 8

block def(in, return = 1) {
    residual {
        conv 3x3, in * class, stride: return; bn; relu
        conv 3x3, in * class; bn
    }
    relu
}

network import_os {
    input 3x16x16
    classes lambda
    shortcut B
    stem { conv 3x3, 8; bn; relu }
    stage self = def(4) * 2, def(8, return: 2)
    head { avgpool global; fc classes }
}
"""


def test_python_keywords_as_spec_names(tmp_path: Path) -> None:
    import torch

    spec = tmp_path / "keywords.rd"
    spec.write_text(HOSTILE)
    ir = load_network(spec)
    source = render_model(ir, str(spec))
    assert verify_model(ir, source) == []
    model = load_module(source).build_model()
    assert model(torch.randn(2, 3, 16, 16)).shape == (2, 8)


def test_a_name_cannot_hold_code(tmp_path: Path) -> None:
    spec = tmp_path / "inject.rd"
    spec.write_text('import "std.rd"\nnetwork x; import os {\n    input 3x8x8\n}\n')
    result = CliRunner().invoke(main, ["compile", str(spec)])
    assert result.exit_code == 1
    assert f"{spec}:2:10: error:" in result.stderr and "import os" not in result.stdout


# ---------------------------------------------------------------- the command


def test_compile_writes_verifies_and_reports(tmp_path: Path) -> None:
    out = tmp_path / "sub" / "model.py"
    result = CliRunner().invoke(main, ["compile", str(SPECS / "resnet152.rd"), "-o", str(out), "--verify"])
    assert result.exit_code == 0, result.output
    note, wrote = result.stderr.splitlines()
    assert note.startswith('note: resnet152\'s strided blocks put their stride where stride_at = "first" says;')
    assert wrote == f"wrote {out}: resnet152, 152 layers, 60,192,808 params, verified"
    assert out.read_text() == generated("resnet152")[1].replace("specs/resnet152.rd", str(SPECS / "resnet152.rd"))


def test_stride_note_not_printed_once_chosen(tmp_path: Path) -> None:
    """`--set stride_at=...` is the choice the note asks for: no note then."""
    out = tmp_path / "model.py"
    result = CliRunner().invoke(
        main, ["compile", str(SPECS / "resnet50.rd"), "-o", str(out), "--set", "stride_at=middle"]
    )
    assert (result.exit_code, result.stderr) == (0, f"wrote {out}: resnet50, 50 layers, 25,557,032 params\n")


@pytest.mark.parametrize(
    ("spec", "listed"),
    [
        ("cifar110", "n = 18"),
        ("stochdepth110", "n = 18"),
        ("densenet121", "k = 32"),
        ("resnet50", 'stride_at = "first"'),
    ],
)
def test_header_lists_the_params_the_network_reads(spec: str, listed: str) -> None:
    """std.rd's `stride_at` is listed only where a block the network uses reads it."""
    header = [line for line in generated(spec)[1].splitlines() if line.startswith("# Spec params")]
    assert header == [f"# Spec params (folded into the code below): {listed}."]


def test_network_class_names_read_like_torchvision() -> None:
    from resdsl.backends.pytorch.names import network_class_name

    names = ["resnet50", "densenet121", "mobilenet_v2", "cifar_resnet20", "wide_resnet50_2", "resnext50_32x4d"]
    assert [network_class_name(n) for n in names] == [
        "ResNet50", "DenseNet121", "MobileNetV2", "CifarResNet20", "WideResNet50_2", "ResNeXt50_32x4d",
    ]  # fmt: skip


@pytest.mark.parametrize("spec", ["nin_digits", "nin_cifar10"])
def test_nin_output_is_the_logits_in_the_ir_and_the_module(spec: str) -> None:
    """NIN ends with a 10x1x1 global average: the IR's output is the 10 logits the module returns."""
    import json

    torch = pytest.importorskip("torch")
    from resdsl.backends.pytorch.verify import load_module

    info = CliRunner().invoke(main, ["info", str(SPECS / f"{spec}.rd"), "--json"])
    assert json.loads(info.stdout)["output"] == [10]
    ir, source = generated(spec)
    model = load_module(source).build_model().eval()
    assert model(torch.zeros(2, *ir.input_shape)).shape == (2, 10)


def test_compile_prints_without_output_file() -> None:
    result = CliRunner().invoke(main, ["compile", str(SPECS / "cifar20.rd"), "--set", "n=5"])
    assert result.exit_code == 0
    assert "# 32 layers, 464,154 parameters" in result.stdout
    assert "class CifarResNet20(nn.Module):" in result.stdout


def test_verify_mismatch_is_a_bug_report_and_writes_nothing(tmp_path: Path, monkeypatch) -> None:
    import resdsl.backends.pytorch.codegen as codegen

    real = codegen.render_model
    monkeypatch.setattr(
        codegen,
        "render_model",
        lambda *a, **k: real(*a, **k).replace("nn.Linear(64, NUM_CLASSES)", "nn.Linear(64, NUM_CLASSES, bias=False)"),
    )
    out = tmp_path / "model.py"
    result = CliRunner().invoke(main, ["compile", str(SPECS / "cifar20.rd"), "-o", str(out), "--verify"])
    assert result.exit_code == 1
    assert result.stderr.startswith("error: resdsl bug: the generated module disagrees with the analysis of")
    assert "parameters: the module has 269,712, the IR 269,722" in result.stderr
    assert not out.exists()


def test_train_script_needs_output() -> None:
    result = CliRunner().invoke(main, ["compile", str(SPECS / "cifar20.rd"), "--train-script", "t.py"])
    assert result.exit_code == 2
    assert result.stderr == "error: --train-script needs -o MODEL.py: the script imports the model file\n"


def test_compile_writes_a_train_script_beside_the_model(tmp_path: Path) -> None:
    model, script = tmp_path / "net.py", tmp_path / "train.py"
    args = ["compile", str(SPECS / "cifar20.rd"), "-o", str(model), "--train-script", str(script)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert f"wrote {script}: python {script} --data CIFAR_DIR" in result.stderr
    assert "from net import INPUT_SHAPE, NUM_CLASSES, build_model" in script.read_text()
    bad = CliRunner().invoke(main, [*args[:3], str(tmp_path / "my-net.py"), *args[4:]])
    assert bad.exit_code == 2 and "needs a name like model.py" in bad.stderr


@pytest.mark.parametrize("text", ["a\x00b", "two\nlines", 'a "quote"', "back\\slash", "é\u2028\x7f"])
def test_string_values_become_valid_python_literals(text: str) -> None:
    from resdsl.backends.pytorch.pyexpr import literal

    assert eval(literal(text)) == text  # noqa: S307 - the point: the literal is Python that reads back


def test_control_characters_in_string_values_give_a_module_that_imports(tmp_path: Path) -> None:
    """A NUL, ESC, DEL, a line separator and quotes in a string param and a string default: the
    generated file still imports (the header lists the params; the default is a literal)."""
    nasty = 'a\x00b\x1b[31mc\x7f"q"\\\u2028'
    spec = tmp_path / "strings.rd"
    spec.write_text(
        f'import "std.rd"\nparam label = "{nasty.replace(chr(34), chr(39))}"\n'
        f'block tagged(w, tag = "{nasty.replace(chr(34), chr(39))}") {{ conv 3x3, w; bn; relu }}\n'
        "network x {\n    input 3x8x8\n    classes 2\n    stage s = tagged(4)\n    head { avgpool global; fc classes }\n}\n",
        encoding="utf-8",
    )
    out = tmp_path / "strings_model.py"
    result = CliRunner().invoke(main, ["compile", str(spec), "-o", str(out), "--verify"])
    assert result.exit_code == 0, result.output
    text = out.read_text(encoding="utf-8")
    assert "\x00" not in text and "\x1b" not in text
    sys.path.insert(0, str(tmp_path))
    try:
        module = __import__("strings_model")
    finally:
        sys.path.remove(str(tmp_path))
    block = module.TaggedBlock(3, 4)
    assert block.conv1.kernel_size == (3, 3)
    import inspect

    assert inspect.signature(module.TaggedBlock).parameters["tag"].default == nasty.replace('"', "'")


KERNELS = """\
block c(k, w) { conv k, w; bn; relu; maxpool k }
network x {
    input 3x160x480
    classes 2
    stem { conv 1x7, 8; maxpool 1x3 }
    stage s = c(3, 8), c(3x5, 8), c(5x5, 8)
    head { avgpool global; fc classes }
}
"""


def test_size_and_non_square_kernels_through_block_arguments(tmp_path: Path) -> None:
    """`conv k, w` with k = 3x5 was refused ("cannot work out its pad"): the default padding is
    now half the kernel in each dimension, as for a literal kernel, and a pool's stride its kernel."""
    import torch

    spec = tmp_path / "kernels.rd"
    spec.write_text(KERNELS)
    ir = load_network(spec)
    convs = [op for op in ir.ops() if op.kind.value == "conv"]
    pools = [op for op in ir.ops() if op.kind.value == "maxpool"]
    assert [op.attrs["pad"] for op in convs] == [(0, 3), 1, (1, 2), 2]
    assert [op.attrs["stride"] for op in pools] == [(1, 3), 3, (3, 5), 5]
    assert [op.shape for op in convs] == [(8, 160, 480), (8, 160, 160), (8, 53, 53), (8, 17, 10)]
    source = render_model(ir, str(spec))
    assert "padding=(k[0] // 2, k[1] // 2) if isinstance(k, tuple) else k // 2" in source
    assert "nn.Conv2d(3, 8, (1, 7), padding=(0, 3), bias=False)" in source
    assert verify_model(ir, source) == []
    model = load_module(source).build_model()
    assert model(torch.randn(1, 3, 160, 480)).shape == (1, 2)


def test_avgpool_kernel_that_is_global_at_some_uses(tmp_path: Path) -> None:
    """`block c(k) { avgpool k }` used as `c(2)` and `c(global)`: the class wrote nn.AvgPool2d(k) and
    failed to build with k = "global" (check passed; only --verify noticed)."""
    spec = tmp_path / "pools.rd"
    spec.write_text(
        "block c(k) { avgpool k }\nnetwork x {\n    input 3x16x16\n    classes 2\n    stem { conv 3x3, 8 }\n"
        "    stage s = c(2), c(global)\n    head { fc classes }\n}\n"
    )
    ir = load_network(spec)
    source = render_model(ir, str(spec))
    assert 'nn.AdaptiveAvgPool2d(1) if k == "global" else nn.AvgPool2d(k)' in source
    assert "k: int | str" in source or "k: str | int" in source
    assert verify_model(ir, source) == []


# ---------------------------------------------------------------- expressions: precedence by construction

_ATOMS = st.sampled_from(["a", "b", "2", "3", "7"])
_BINARY_OPS = ["+", "-", "*", "//", "%", "**", "==", "<", "!=", ">=", "and", "or"]


@st.composite
def _expressions(draw, depth: int = 0) -> str:
    """Spec expressions over `a` and `b` with random operators and redundant parentheses."""
    if depth > 3 or draw(st.booleans()):
        return draw(_ATOMS)
    kind = draw(st.sampled_from(["binary", "binary", "not", "neg", "cond"]))
    sub = lambda: draw(_expressions(depth + 1))  # noqa: E731
    if kind == "binary":
        text = f"{sub()} {draw(st.sampled_from(_BINARY_OPS))} {sub()}"
    elif kind == "not":
        text = f"not {sub()}"
    elif kind == "neg":
        text = f"-{sub()}"
    else:
        text = f"{sub()} if {sub()} else {sub()}"
    return f"({text})"


@settings(max_examples=500, deadline=None)
@given(_expressions(), st.integers(1, 5), st.integers(1, 5))
def test_translated_expressions_keep_their_meaning(text: str, a: int, b: int) -> None:
    """The Python the generator writes has the same value as the spec's expression (parentheses only
    where precedence needs them: `stride > 1 or in_channels != 4 * width`)."""
    from resdsl.backends.pytorch.pyexpr import Translator
    from resdsl.diagnostics import ResdslError
    from resdsl.lang.evaluate import Env, evaluate
    from resdsl.lang.parser import parse_text

    try:
        expr = parse_text(f"param x = {text}\n").params[0].value
    except ResdslError:
        return  # not an expression the grammar takes (e.g. `not` as an operand of `*`)
    try:
        want = evaluate(expr, Env({"a": a, "b": b}))
    except (ResdslError, ArithmeticError, OverflowError, ValueError):
        return  # an error or an overflow in the spec's own evaluation
    python = Translator({"a": "a", "b": "b"})(expr)
    assert eval(python, {}, {"a": a, "b": b}) == want, python


def test_zero_init_residual_zeroes_only_branches_with_a_shortcut() -> None:
    """MobileNetV2's last BN sits in either branch of an `if`; its plain uses (stride 2, a new width)
    have no identity to start from, and a plain network has none at all: those are never zeroed."""
    pytest.importorskip("torch")
    from resdsl.backends.pytorch.verify import load_module

    model = load_module(generated("mobilenet_v2")[1]).build_model(zero_init_residual=True)
    blocks = [m for m in model.modules() if type(m).__name__ == "InvertedResidualBlock"]
    zeroed = [b for b in blocks if not b.conv[-1].weight.any()]
    assert len(blocks) == 17 and zeroed == [b for b in blocks if b.use_shortcut] and len(zeroed) == 10
    plain = load_module(generated("plain18")[1]).build_model(zero_init_residual=True)
    assert all(m.weight.all() for m in plain.modules() if type(m).__name__ == "BatchNorm2d")
    assert "`zero_init_residual` changes nothing" in generated("densenet121")[1]


# ---------------------------------------------------------------- code that reads like torchvision


def test_named_runs_become_loops() -> None:
    """DenseNet's 58 dense layers: one loop per dense block, its width growing by k at each layer."""
    ir, source = generated("densenet121")
    assert source.count("DenseBottleneckBlock(") == 4 + 1  # the four loops and the class itself
    for count, start in ((6, 64), (12, 128), (24, 256), (16, 512)):
        assert f"for i in range({count}):" in source
        assert f'f"denselayer{{i + 1}}", DenseBottleneckBlock({start} + 32 * i, 32)' in source
    model = load_module(source).build_model()
    assert [n for n, _ in model.features.denseblock2.named_children()] == [f"denselayer{i}" for i in range(1, 13)]
    assert model.features.denseblock4.denselayer16.norm1.num_features == 512 + 15 * 32


def test_mobilenet_block_decides_its_shortcut_and_runs_conv_whole() -> None:
    """torchvision's InvertedResidual: `conv` is one nn.Sequential, called whole; the block works out
    `use_shortcut` itself (no flag at its calls); the classifier runs whole after the flatten."""
    import torch

    _, source = generated("mobilenet_v2")
    assert "self.use_shortcut = stride == 1 and in_channels == out" in source
    assert "out = self.conv(x)" in source and "self.conv[0][0](" not in source and "cond1" not in source
    assert "plain=" not in source and 'add_module("0", nn.Sequential())' not in source
    assert "x = torch.flatten(x, 1)\n        x = self.classifier(x)" in source
    assert "nn.init.zeros_(m.conv[-1].weight)" in source
    assert "for out, stride, t, blocks in (" in source and "(24, 2, 6, 2)," in source  # the features' stage table
    assert source.count("InvertedResidualBlock(") == 2  # the class and the table's loop
    block = load_module(source).InvertedResidualBlock(16, 24, stride=2)
    assert block(torch.randn(1, 16, 8, 8)).shape == (1, 24, 4, 4)


STAGE_TABLE = """
block ir(out, stride = 1) {
    residual(shortcut: identity_or_none) {
        conv 3x3, out, stride: stride, name: "conv.0"; bn name: "conv.1"
    }
}
network t {
    input 3x16x16
    classes 10
    stem(name: "features.0.#") { conv 3x3, 8; bn; relu }
    stage a(name: "features.#") = ir(8) * 2
    stage b(name: "features.#") = ir(16, stride: 2) * 2
    stage c(name: "features.#") = STAGE_C
    head { avgpool global; fc classes, name: "fc" }
}
"""


@pytest.mark.parametrize(
    ("stage_c", "table"),
    [
        ("ir(32, stride: 2) * 3", True),  # MobileNetV2's features: a stage table and a loop
        ("ir(32, stride: 2), ir(48)", False),  # a later use that changes the width: written out
    ],
)
def test_regular_stages_become_a_table(tmp_path: Path, stage_c: str, table: bool) -> None:
    import torch

    spec = tmp_path / "t.rd"
    spec.write_text(STAGE_TABLE.replace("STAGE_C", stage_c))
    ir = load_network(spec)
    source = render_model(ir, "t.rd")
    loop = (
        "# stages a ... c: each one's out, stride (at its first block) and blocks\n"
        "        in_channels = 8\n"
        "        for out, stride, blocks in (\n"
        "            (8, 1, 2),\n"
        "            (16, 2, 2),\n"
        "            (32, 2, 3),\n"
        "        ):\n"
        "            for i in range(blocks):\n"
        "                self.features.append(\n"
        "                    IrBlock(in_channels, out, stride=stride if i == 0 else 1)\n"
        "                )\n"
        "                in_channels = out\n"
    )
    assert (loop in source) is table
    model = load_module(source).build_model().eval()
    uses = [inst for s in ir.sections for inst in s.blocks]
    assert [n for n, _ in model.features.named_children()] == [str(i) for i in range(len(uses) + 1)]
    for k, inst in enumerate(uses, start=1):  # each use where the IR put it, with its own widths and stride
        assert inst.path == f"features.{k}"
        conv = model.get_submodule(f"{inst.path}.conv.0")
        assert (conv.out_channels, conv.stride[0]) == (inst.args["out"], inst.args["stride"])
    assert model(torch.randn(2, 3, 16, 16)).shape == (2, 10)


def test_a_container_runs_whole_only_where_its_modules_run_in_a_row() -> None:
    from resdsl.backends.pytorch.sequential import Container, call_whole

    lines = ["out = self.c[0](x)", "out = self.c[1](out)", "out = self.relu(out)", "out = self.c[2](out)"]
    whole = Container(ref="c", scope=[], calls=lines, children=["a", "b"])
    assert call_whole(lines[:2], [whole]) == ["out = self.c(x)"]
    three = Container(ref="c", scope=[], calls=lines, children=["a", "b", "d"])
    assert call_whole(lines, [three]) == lines  # a ReLU runs between: its modules one by one
    inner = Container(ref="c[0]", scope=[], calls=lines, children=["a", "b"])
    outer = Container(ref="c", scope=[], calls=lines, children=[inner, "e"])
    nested = ["out = self.c[0][0](x)", "out = self.c[0][1](out)", "out = self.c[1](out)"]
    assert call_whole(nested, [outer, inner]) == ["out = self.c(x)"]
