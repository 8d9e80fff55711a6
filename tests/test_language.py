"""The language's features, through real specs: each test writes a small spec (or uses one of
specs/) and checks what the checked IR says about it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from resdsl.cli.main import main
from resdsl.diagnostics import ResdslError, SpecError, SpecErrors, UsageError
from resdsl.ir.graph import NetworkIR, OpKind, print_ir
from resdsl.ir.pipeline import load_network
from resdsl.lang import syntax
from resdsl.lang.evaluate import about, precision_of
from resdsl.lang.overrides import parse_override
from resdsl.lang.parser import parse_text

SPECS = Path(__file__).resolve().parent.parent / "specs"


def net(tmp_path: Path, body: str, pre: str = "", name: str = "t.rd", overrides: dict | None = None) -> NetworkIR:
    text = f"{pre}\nnetwork t {{\n    input 3x32x32\n    classes 10\n{body}\n}}\n"
    spec = tmp_path / name
    spec.write_text(text)
    return load_network(spec, overrides)


def convs(ir: NetworkIR) -> list:
    return [op for op in ir.ops() if op.kind is OpKind.CONV]


def shortcuts(ir: NetworkIR) -> list:
    return [op for op in ir.ops() if op.kind is OpKind.SHORTCUT]


def cli(*args: str):
    return CliRunner().invoke(main, list(args))


# ---------------------------------------------------------------- params and expressions


def test_params_and_arithmetic(tmp_path: Path) -> None:
    pre = """
param n = 3
param depth = 6*n + 2          # 20
param w = 2 ** 4               # 16
param half = depth // 3        # 6
param rest = depth % 3         # 2
param third = 20 / 8           # 2.5 (true division)
param neg = -(n - 5)           # 2
param big = max(w, 2 * half)   # 16
param small = min(n, half)     # 3
param k = 2 ** 3 ** 2 // 64    # 2 ** 9 = 512, // 64 = 8 (** binds right)
param m = 1.5K                 # 1500
"""
    ir = net(tmp_path, "    stem { conv 3x3, w * 2 }\n    head { avgpool global; fc classes }", pre)
    p = ir.params
    assert (p["n"], p["depth"], p["w"], p["half"], p["rest"]) == (3, 20, 16, 6, 2)
    assert (p["third"], p["neg"], p["big"], p["small"], p["k"], p["m"]) == (2.5, 2, 16, 3, 8, 1500)
    assert convs(ir)[0].attrs["channels"] == 32


def test_functions_round_fractions(tmp_path: Path) -> None:
    pre = (
        "param w = 15\nparam a = int(w * 1.5)\nparam b = round(w * 1.5)\nparam c = ceil(w / 2)\nparam d = floor(w / 2)"
    )
    ir = net(
        tmp_path,
        "    stem { conv 3x3, a; conv 3x3, b; conv 3x3, c; conv 3x3, d }\n    head { avgpool global; fc classes }",
        pre,
    )
    assert [c.attrs["channels"] for c in convs(ir)] == [22, 22, 8, 7]


def test_if_else_and_boolean_logic(tmp_path: Path) -> None:
    pre = """
param deep = true
param n = 5
param w = 64 if deep and n > 3 else 16
param v = 1 if not deep or n == 5 else 2
param s = "first"
param t = 7 if s == "first" else 9
"""
    ir = net(tmp_path, "    stem { conv 3x3, w }\n    head { avgpool global; fc classes }", pre)
    assert (ir.params["w"], ir.params["v"], ir.params["t"]) == (64, 1, 7)
    ir = net(tmp_path, "    stem { conv 3x3, w }\n    head { avgpool global; fc classes }", pre, overrides={"n": 2})
    assert ir.params["w"] == 16


def test_stride_placement_uses_if_else_in_std(tmp_path: Path) -> None:
    """std.rd's bottleneck: stride on the first 1x1 (v1) or on the 3x3 (v1.5, --set stride_at=middle)."""
    for where, strides in (("first", [2, 1, 1]), ("middle", [1, 2, 1])):
        ir = load_network(SPECS / "resnet50.rd", {"stride_at": parse_override(where)})
        block = ir.section("conv3").blocks[0]
        cs = [ir.op(n) for n in block.nodes if ir.op(n).kind is OpKind.CONV]
        assert [c.attrs["kernel"] for c in cs] == [(1, 1), (3, 3), (1, 1)]
        assert [c.attrs["stride"] for c in cs] == strides


def test_block_defaults_use_earlier_args_and_params(tmp_path: Path) -> None:
    pre = """
param base = 4
block wide(width, out = width * base, stride = 1) {
    conv 1x1, width; conv 3x3, out, stride: stride
}
"""
    ir = net(
        tmp_path,
        "    stem { conv 3x3, 16 }\n    stage s = wide(8), wide(8, out: 10), wide(width: 2, stride: 2)\n    head { avgpool global; fc classes }",
        pre,
    )
    assert [c.attrs["channels"] for c in convs(ir)] == [16, 8, 32, 8, 10, 2, 8]
    assert convs(ir)[-1].attrs["stride"] == 2
    assert [b.args for b in ir.section("s").blocks] == [
        {"width": 8, "out": 32, "stride": 1},
        {"width": 8, "out": 10, "stride": 1},
        {"width": 2, "out": 8, "stride": 2},
    ]


def test_repeats_set_stride_one_after_the_first_copy(tmp_path: Path) -> None:
    ir = load_network(SPECS / "cifar20.rd")
    blocks = ir.section("conv3").blocks
    assert [b.args["stride"] for b in blocks] == [2, 1, 1]
    assert ir.section("conv3").description == "basic(32, stride: 2) x n"


# ---------------------------------------------------------------- imports


def test_relative_and_std_imports(tmp_path: Path) -> None:
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "mine.rd").write_text('import "more.rd"\nblock twice(w) { plain(w); plain(w) }\n')
    (tmp_path / "lib" / "more.rd").write_text("block plain(w) { conv 3x3, w; bn; relu }\n")
    pre = 'import "std.rd"\nimport "lib/mine.rd"'
    ir = net(
        tmp_path,
        "    stem { conv 3x3, 16 }\n    stage a = twice(16)\n    stage b = basic(16)\n    head { avgpool global; fc classes }",
        pre,
    )
    assert len(convs(ir)) == 1 + 2 + 2
    assert {"twice", "plain", "basic", "bottleneck"} <= set(ir.blocks)


def test_diamond_import_is_loaded_once(tmp_path: Path) -> None:
    (tmp_path / "a.rd").write_text('import "c.rd"\nblock ba() { cc() }\n')
    (tmp_path / "b.rd").write_text('import "c.rd"\nblock bb() { cc() }\n')
    (tmp_path / "c.rd").write_text("block cc() { relu }\n")
    ir = net(
        tmp_path, "    stem { conv 3x3, 10; ba(); bb() }\n    head { avgpool global }", 'import "a.rd"\nimport "b.rd"'
    )
    assert ir.totals.layers == 1


def test_main_file_params_override_imported_ones(tmp_path: Path) -> None:
    ir = net(
        tmp_path,
        "    shortcut B\n    stem { conv 3x3, 16 }\n    stage s = bottleneck(16)\n    head { avgpool global; fc classes }",
        'import "std.rd"\nparam stride_at = "middle"',
    )
    assert ir.params["stride_at"] == "middle"


# ---------------------------------------------------------------- shortcuts


UNIT = "block unit(width, stride = 1) {\n    residual { conv 3x3, width, stride: stride; bn }\n    relu\n}\n"


def test_stage_and_call_shortcut_overrides(tmp_path: Path) -> None:
    body = """    shortcut A
    stem { conv 3x3, 16 }
    stage s1 = unit(16), unit(16, shortcut: C)
    stage s2(shortcut: B) = unit(32, stride: 2), unit(32)
    stage s3 = unit(64, stride: 2)
    head { avgpool global; fc classes }"""
    ir = net(tmp_path, body, UNIT)
    modes = [(op.scope.section, op.attrs["option"].value, op.shortcut.mode) for op in shortcuts(ir)]
    assert modes == [
        ("s1", "A", "identity"),
        ("s1", "C", "projection"),
        ("s2", "B", "projection"),
        ("s2", "B", "identity"),
        ("s3", "A", "pad"),
    ]
    assert ir.section("s1").blocks[1].shortcut.value == "C"
    assert ir.section("s2").shortcut.value == "B"


def test_residual_section_option_beats_the_network(tmp_path: Path) -> None:
    pre = "block always(width) {\n    residual(shortcut: C) { conv 3x3, width; bn }\n}\n"
    ir = net(
        tmp_path,
        "    shortcut none\n    stem { conv 3x3, 16 }\n    stage s = always(16) * 2\n    head { avgpool global; fc classes }",
        pre,
    )
    plans = [op.shortcut for op in shortcuts(ir)]
    assert [p.mode for p in plans] == ["projection", "projection"]
    assert all(p.bn and p.stride == 1 for p in plans)
    assert ir.totals.params == 432 + 2 * (2304 + 32 + 256 + 32) + 170


def test_option_a_pads_and_subsamples(tmp_path: Path) -> None:
    ir = load_network(SPECS / "cifar20.rd")
    padded = [op.shortcut for op in shortcuts(ir) if op.shortcut.mode == "pad"]
    assert [(p.stride, p.in_channels, p.out_channels) for p in padded] == [(2, 16, 32), (2, 32, 64)]
    assert all(op.params == 0 for op in shortcuts(ir))


def test_plain_counterpart_has_no_merge(tmp_path: Path) -> None:
    ir = load_network(SPECS / "cifar20.rd", {"shortcut": parse_override("none")})
    assert not shortcuts(ir)
    assert not [op for op in ir.ops() if op.kind is OpKind.ADD]
    assert ir.totals.layers == 20


def test_preact_projection_takes_the_preactivated_input() -> None:
    ir = load_network(SPECS / "preact_resnet164.rd")
    first = ir.residuals[0]
    sc = ir.op(first.shortcut)
    x, preact_out = ir.inputs(sc.id)
    assert x == first.input
    assert preact_out == first.preact[-1] and ir.op(preact_out).kind is OpKind.RELU
    assert sc.shortcut.mode == "projection" and sc.shortcut.bn is False  # `projection conv`
    assert [ir.op(n).kind for n in first.preact] == [OpKind.BN, OpKind.RELU]


# ---------------------------------------------------------------- stochastic depth, dense


def test_survival_linear_decay() -> None:
    ir = load_network(SPECS / "stochdepth110.rd")
    units = [r for r in ir.residuals if r.kind == "add"]
    assert len(units) == 54
    assert units[0].survival == pytest.approx(1 - 0.5 / 54)
    assert units[-1].survival == pytest.approx(0.5)
    assert units[26].survival == pytest.approx(1 - 27 / 54 * 0.5)
    diffs = {round(a.survival - b.survival, 12) for a, b in zip(units, units[1:])}
    assert diffs == {round(0.5 / 54, 12)}


def test_survival_uniform_and_per_section(tmp_path: Path) -> None:
    pre = "block sd(width) {\n    residual(survival: 0.8) { conv 3x3, width; bn }\n}\n" + UNIT
    ir = net(
        tmp_path,
        "    survival 0.9\n    stem { conv 3x3, 16 }\n    stage s = sd(16), unit(16)\n    head { avgpool global; fc classes }",
        pre,
    )
    assert [r.survival for r in ir.residuals] == [0.8, 0.9]


def test_dense_concat_grows_channels() -> None:
    ir = load_network(SPECS / "densenet40.rd")
    concats = [op for op in ir.ops() if op.kind is OpKind.CONCAT]
    assert len(concats) == 36
    first_block = concats[:12]
    assert [op.shape[0] for op in first_block] == [16 + 12 * i for i in range(1, 13)]
    assert ir.section("dense1").nodes and ir.totals.sections[1].output == [160, 16, 16]
    assert ir.totals.sections[3].output == [160 + 24 * 12, 8, 8]
    assert ir.totals.layers == 40


# ---------------------------------------------------------------- expect


@pytest.mark.parametrize(
    "text, precision",
    [
        ("1.7M", 1e5),
        ("0.27M", 1e4),
        ("1.70M", 1e4),
        ("966986", 1),
        ("2.5", 0.1),
        ("1e-4", 1e-4),
        ("3.6G", 1e8),
        ("12K", 1e3),
    ],
)
def test_about_precision_is_the_last_written_digit(text: str, precision: float) -> None:
    assert precision_of(text) == pytest.approx(precision)


def test_about_rule() -> None:
    lit = parse_text("param x = 1.7M").params[0].value
    assert isinstance(lit, syntax.Number)
    assert about(1_703_258, 1.7e6, lit) and about(1_749_999, 1.7e6, lit)
    assert not about(1_750_001, 1.7e6, lit) and not about(1_649_999, 1.7e6, lit)
    # a computed right-hand side: within 1%
    assert about(101, 100, None) and not about(102, 100, None)


def test_expectations_pass_and_fail(tmp_path: Path) -> None:
    body = "    stem { conv 3x3, 16 }\n    head { avgpool global; fc classes }\n"
    ok = "    expect layers == 2\n    expect params ~= 0.6K\n    expect flops > 1000 and layers < 3\n    expect params != 0"
    assert net(tmp_path, body + ok).totals.params == 432 + 170
    with pytest.raises(SpecErrors) as err:
        net(tmp_path, body + "    expect layers == 3\n    expect params ~= 0.7K\n    expect params")
    messages = [e.message for e in err.value.errors]
    assert messages == [
        "expectation failed: layers == 3 (layers is 2)",
        "expectation failed: params ~= 0.7K (params is 602, expected 700 ± 50)",
        "`expect` needs a comparison, got 602",
    ]


def test_spec_expectations_hold_under_set() -> None:
    """`expect layers == 6*n + 2` follows --set n."""
    for n in (3, 7):
        assert load_network(SPECS / "cifar110.rd", {"n": n}).totals.layers == 6 * n + 2


# ---------------------------------------------------------------- --set


def test_set_overrides_params_settings_and_recipe() -> None:
    out = json.loads(
        cli(
            "info", str(SPECS / "cifar110.rd"), "--json",
            "--set", "n=5", "--set", "shortcut=C", "--set", "input=3x64x64", "--set", "classes=100",
            "--set", "batch=64", "--set", "lr=0.05", "--set", "flip=false", "--set", "dataset=cifar100",
        ).stdout
    )  # fmt: skip
    assert out["layers"] == 32 and out["shortcut"] == "C"
    assert out["input"] == [3, 64, 64] and out["output"] == [100]
    assert out["param_values"]["n"] == 5
    r = out["recipe"]
    assert (r["batch"], r["lr"], r["flip"], r["dataset"]) == (64, 0.05, False, "cifar100")
    assert r["milestones"] == [32000, 48000]  # untouched fields keep the spec's values


@pytest.mark.parametrize(
    "text, value",
    [("64", 64), ("0.1", 0.1), ("1e-4", 1e-4), ("1.7M", 1_700_000), ("-3", -3), ("true", True), ('"x"', "x")],
)
def test_parse_override_values(text: str, value) -> None:
    assert parse_override(text) == value


def test_parse_override_words_and_sizes() -> None:
    assert str(parse_override("3x32x32")) == "3x32x32"
    assert parse_override("B") == "B" and type(parse_override("B")).__name__ == "Symbol"
    with pytest.raises(UsageError):
        parse_override("1e400")


def test_string_param_takes_a_word_from_set() -> None:
    ir = load_network(SPECS / "resnet50.rd", {"stride_at": parse_override("middle")})
    assert ir.params["stride_at"] == "middle" and isinstance(ir.params["stride_at"], str)


# ---------------------------------------------------------------- the IR


def test_ir_printer_one_line_per_op() -> None:
    ir = load_network(SPECS / "cifar20.rd")
    text = print_ir(ir)
    lines = text.splitlines()
    assert lines[0] == "network cifar_resnet20  input 3x32x32  classes 10  shortcut A"
    assert len(lines) == 1 + ir.graph.number_of_nodes()
    assert lines[1].startswith("%0    = input[shape=3x32x32]() : 3x32x32")
    assert any("shortcut:pad[option=A, projection_bn=True]" in line for line in lines)
    assert lines[-1].startswith(f"%{ir.output_node:<4} = fc[out=10, bias=True](%{ir.output_node - 1}) : 10  params=650")
    result = cli("info", str(SPECS / "cifar20.rd"), "--ir")
    assert result.exit_code == 0 and result.stdout.count("\n") == len(lines)


def test_verify_checks_invariants() -> None:
    ir = load_network(SPECS / "cifar20.rd")
    ir.verify()
    ir.graph.add_edge(ir.output_node, 1, port=1)  # a cycle, and conv %1 gets two inputs
    with pytest.raises(AssertionError, match="cycle"):
        ir.verify()
    ir = load_network(SPECS / "cifar20.rd")
    ir.graph.add_node(10_000, op=ir.op(ir.output_node))  # a second sink
    with pytest.raises(AssertionError):
        ir.verify()


def test_ops_carry_hierarchy_and_spans() -> None:
    ir = load_network(SPECS / "resnet18.rd")
    sections = [s.name for s in ir.sections]
    assert sections == ["stem", "conv2", "conv3", "conv4", "conv5", "head"]
    for op in ir.ops():
        assert op.span.line >= 1
        if op.scope.section.startswith("conv"):
            assert op.scope.block in (0, 1)
    assert [len(ir.section(s).blocks) for s in sections] == [0, 2, 2, 2, 2, 0]


def test_info_table_like_table1() -> None:
    result = cli("info", str(SPECS / "resnet34.rd"))
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[0].startswith("resnet34  (")
    assert lines[2].split() == ["stage", "output", "blocks", "layout", "params", "FLOPs", "acts", "acts", "f32"]
    conv3 = next(line for line in lines if line.startswith("conv3"))
    assert "128x28x28" in conv3 and "basic(128, stride: 2) x 4" in conv3
    assert conv3.endswith("  903.17K    3.6 MB")
    assert lines[11:13] == [
        "layers 34   params 21,797,672 (21.80M)   FLOPs 3,663,761,408 (3.66G multiply-adds)",
        "acts 3,939,816 (3.94M) per image, 15.8 MB in float32 (outputs of convs, fcs, projections and pools)",
    ]
    assert (
        lines[14] == "training memory at batch 256: about 16.3 GB (float32 estimate, without the data set)"
    )  # its recipe's batch


# ---------------------------------------------------------------- check, libraries, train


def test_check_accepts_the_std_library() -> None:
    result = cli("check", str(SPECS / "std.rd"))
    assert result.exit_code == 0
    assert result.stdout.endswith("std.rd: ok: a library of 13 blocks and 1 params\n")


def test_check_quiet() -> None:
    result = cli("check", "-q", str(SPECS / "cifar20.rd"))
    assert (result.exit_code, result.stdout) == (0, "")


def test_train_section_is_parsed() -> None:
    r = load_network(SPECS / "cifar110.rd").recipe
    assert (r.batch, r.lr, r.momentum, r.weight_decay) == (128, 0.1, 0.9, 1e-4)
    assert (r.milestones, r.factor, r.iterations) == ([32000, 48000], 0.1, 64000)
    assert (r.pad, r.crop, r.flip, r.val) == (4, 32, True, 5000)
    assert (r.warmup_lr, r.warmup_until_error) == (0.01, 0.8)
    assert load_network(SPECS / "stochdepth110.rd").recipe.nesterov is True


@pytest.mark.parametrize(
    "line, message",
    [
        ("batch 0", "`batch` must be a positive whole number, got 0"),
        ("batch 12.5", "`batch` must be a positive whole number, got 12.5"),
        (
            "dataset coco",
            "`dataset` must be cifar10 | cifar100 | mnist | svhn | digits | imagenet | npz | synthetic, got the bare word `coco`",
        ),
        ("optimizer adam(lr: 0.1)", "`optimizer` must be sgd(...), got `adam(...)`"),
        ("optimizer sgd(lr: 0.1, momentun: 0.9)", "`optimizer` has no option `momentun`"),
        ("schedule step(at: [48000, 32000])", "`step` needs `at: [...]`, increasing iteration numbers"),
        (
            "schedule poly()",
            "`schedule` must be step(at: [...], factor: f), cosine(), constant() or plateau(factor: f, patience: n), "
            "got `poly(...)`",
        ),
        ("schedule plateau(patience: 0)", "`patience` must be a positive whole number, got 0"),
        (
            "augment scale: [480, 256]",
            "`scale` must be [min, max], two sizes of the shorter side with min <= max, got [480, 256]",
        ),
        ("augment lighting: -1", "`lighting` must be a number >= 0 (the std of the PCA colour noise), got -1"),
        ("augment pad: -4", "`pad` must be a whole number >= 0, got -4"),
        ("augment 4", "`augment` takes keyword options"),
        ("warmup lr: 0.01, until_error: 2", "`warmup_until_error` must be a training error in [0, 1], got 2"),
        ("split train: 45000", "`split` takes `val: N`, the training images held out for validation"),
        ("epochs 10", "unknown train setting `epochs`"),
        (
            "normalize zca",
            "`normalize` must be per_pixel_mean | per_channel | torchvision | none, got the bare word `zca`",
        ),
    ],
)
def test_train_validation_errors(tmp_path: Path, line: str, message: str) -> None:
    spec = tmp_path / "t.rd"
    spec.write_text(
        "network t {\n    input 3x32x32\n    classes 10\n    stem { conv 3x3, 16 }\n"
        f"    head {{ avgpool global; fc classes }}\n}}\ntrain {{\n    {line}\n}}\n"
    )
    with pytest.raises(SpecError) as err:
        load_network(spec)
    assert err.value.message == message
    assert (err.value.span.line, err.value.span.col) == (8, 5)


def test_train_errors_are_collected(tmp_path: Path) -> None:
    spec = tmp_path / "t.rd"
    spec.write_text(
        "network t {\n    input 3x32x32\n    classes 10\n    stem { conv 3x3, 16 }\n"
        "    head { avgpool global; fc classes }\n}\ntrain {\n    batch 0\n    epochs 3\n    stage x = y\n}\n"
    )
    with pytest.raises(SpecErrors) as err:
        load_network(spec)
    assert [e.span.line for e in err.value.errors] == [8, 9, 10]


def test_every_error_is_a_resdsl_error(tmp_path: Path) -> None:
    for exc in (SpecError("x"), SpecErrors([SpecError("x")]), UsageError("x")):
        assert isinstance(exc, ResdslError)


def test_a_call_times_a_number(tmp_path: Path) -> None:
    """`max(a, b) * 2` was a syntax error (unexpected `*`): after a call the lexer took `*` for the
    repeat of `block(...) * n`, a token of its own. Both now share it."""
    pre = (
        "param w = 16\nparam a = max(w, 8) * 2\nparam b = int(w / 3) * 3 + min(1, 2) * 2 ** 2\nparam c = 2 * max(w, 8)"
    )
    ir = net(tmp_path, "    stem { conv 3x3, max(a, b) * 2 }\n    head { avgpool global; fc classes }", pre)
    assert (ir.params["a"], ir.params["b"], ir.params["c"]) == (32, 19, 32)
    assert convs(ir)[0].attrs["channels"] == 64


def test_check_parses_each_file_once(monkeypatch) -> None:
    """`check` parsed a spec (and its imports) twice: once to see whether it is a library, once
    more to build the network; parsing is most of the time of a large spec."""
    import resdsl.lang.imports as imports

    parsed = []
    real = imports.parse_text
    monkeypatch.setattr(imports, "parse_text", lambda text, path: parsed.append(path) or real(text, path))
    result = cli("check", str(SPECS / "cifar20.rd"))
    assert result.exit_code == 0, result.output
    assert sorted(Path(p).name for p in parsed) == ["cifar20.rd", "std.rd"]


def test_spans_reach_over_brackets_and_a_bracketed_expression_keeps_its_own() -> None:
    """The tree is built as Lark parses (lang/build.py), with the spans Lark's propagate_positions gave: a
    node spans its children, brackets and `+` included, while a bracketed expression keeps its own span."""
    module = parse_text("param p = (1 + 2) * 3\nparam q = f((1), x: +(2))\n")
    p, q = (param.value for param in module.params)
    assert (module.params[0].span.col, module.params[0].span.end_col) == (1, 22)
    assert (p.span.col, p.span.end_col) == (11, 22)  # `(1 + 2) * 3`
    assert (p.left.span.col, p.left.span.end_col) == (12, 17)  # `1 + 2`
    spans = [(a.span.col, a.span.end_col, a.value.span.col, a.value.span.end_col) for a in q.args]
    assert spans == [(13, 16, 14, 15), (18, 25, 23, 24)]  # `(1)` around `1`; `x: +(2)` around `2`
