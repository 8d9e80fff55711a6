"""`resdsl fmt` (resdsl/lang/fmt.py): exact layouts of messy inputs, idempotence and an unchanged
IR on every spec, the standard library and the fuzz corpus, and the command's modes and errors."""

from __future__ import annotations

import dataclasses
import os
import random
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from resdsl.backends import report
from resdsl.cli.main import main
from resdsl.diagnostics import Span, SpecError
from resdsl.ir.pipeline import load_network
from resdsl.lang.fmt import format_source
from resdsl.lang.parser import parse_text

ROOT = Path(__file__).resolve().parent.parent
SPECS = sorted((ROOT / "specs").glob("*.rd"))
STD = ROOT / "resdsl" / "lang" / "stdlib" / "std.rd"
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from fuzz.mutate import mutate, seeds  # noqa: E402


def shape(node):
    """A syntax tree without its spans: what formatting must not change."""
    if isinstance(node, Span):
        return None
    if dataclasses.is_dataclass(node):
        return (type(node).__name__,) + tuple(
            shape(getattr(node, f.name)) for f in dataclasses.fields(node) if not f.name.endswith("span")
        )
    if isinstance(node, list | tuple):
        return tuple(shape(x) for x in node)
    if isinstance(node, dict):
        return {k: shape(v) for k, v in node.items()}
    return node


def fuzz_corpus() -> dict[str, str]:
    """The fuzzer's seeds, its committed regressions and whatever a local `make fuzz` left in fuzz/corpus/."""
    out = {f"seed:{k}": v for k, v in seeds().items()}
    for path in sorted((ROOT / "fuzz" / "regressions").glob("*.rd")):
        out[f"regression:{path.name}"] = path.read_text(encoding="utf-8", errors="replace")
    corpus = ROOT / "fuzz" / "corpus"
    if corpus.is_dir():
        for path in sorted(corpus.iterdir())[:2000]:
            try:
                out[f"corpus:{path.name}"] = path.read_bytes().decode("utf-8")
            except (UnicodeDecodeError, OSError):
                continue
    return out


def info_json(path: Path, name: str) -> dict:
    return report.to_json(load_network(path, {}), name, None)


# ---------------------------------------------------------------- every spec, the library, the corpus


@pytest.mark.parametrize("spec", SPECS + [STD], ids=lambda p: p.name)
def test_committed_specs_are_formatted(spec: Path) -> None:
    text = spec.read_text(encoding="utf-8")
    assert format_source(text, str(spec)) == text, "run `resdsl fmt specs/*.rd resdsl/lang/stdlib/*.rd`"


@pytest.mark.parametrize("spec", [p for p in SPECS if p.name != "std.rd"], ids=lambda p: p.name)
def test_fmt_keeps_the_ir(spec: Path, tmp_path: Path) -> None:
    """The spec and std.rd formatted from a messed-up layout give the same `info --json`."""
    (tmp_path / "std.rd").write_text(format_source(_mess(STD.read_text())), encoding="utf-8")
    out = tmp_path / spec.name
    formatted = format_source(_mess(spec.read_text()))
    out.write_text(formatted, encoding="utf-8")
    assert format_source(formatted) == formatted
    assert info_json(out, spec.name) == info_json(spec, spec.name)


def _mess(text: str) -> str:
    """The same tokens laid out badly: tabs, CRLF, a BOM, blank lines, no spaces after commas."""
    text = text.replace("    ", "\t").replace(", ", " ,").replace(": ", ":").replace("\n\n", "\n\n\n")
    return "\ufeff" + text.replace("\n", "\r\n")


@pytest.mark.parametrize("name", sorted(fuzz_corpus()))
def test_fmt_on_the_fuzz_corpus(name: str, tmp_path: Path) -> None:
    """Every corpus input that parses: idempotent, the same syntax tree, and (when it checks) the same IR."""
    text = fuzz_corpus()[name]
    try:
        before = parse_text(text)
    except SpecError:
        pytest.skip("does not parse")
    formatted = format_source(text)
    assert format_source(formatted) == formatted
    assert shape(parse_text(formatted)) == shape(before)
    a, b = tmp_path / "a.rd", tmp_path / "b.rd"
    a.write_text(text, encoding="utf-8")
    b.write_text(formatted, encoding="utf-8")
    try:
        expected = info_json(a, "x.rd")
    except Exception:  # an input the pipeline refuses: the syntax tree above is the check
        return
    assert info_json(b, "x.rd") == expected


def test_fmt_on_mutants() -> None:
    """The fuzzer's mutator, a fixed seed: every mutant that parses is formatted idempotently to the
    same syntax tree (newlines as a file is read: a lone \\r is one)."""
    rng = random.Random(21)
    pool = list(seeds().values())
    parsed = 0
    for _ in range(150):
        text = mutate(rng.choice(pool).encode(), 100_000, rng).decode("utf-8", "replace")
        text = text.replace("\r\n", "\n").replace("\r", "\n")
        try:
            before = parse_text(text)
        except SpecError:
            continue
        parsed += 1
        formatted = format_source(text)
        assert format_source(formatted) == formatted
        assert shape(parse_text(formatted)) == shape(before)
    assert parsed > 30


# ---------------------------------------------------------------- exact layouts


def check_layout(messy: str, expected: str) -> None:
    assert format_source(messy) == expected
    assert format_source(expected) == expected


def test_comments_in_odd_places() -> None:
    check_layout(
        "block odd(c) {   # after the brace\n"
        "  # first\n"
        "    conv 3x3, c   # trailing\n"
        "    bn            # bn\n"
        "    relu  # r\n"
        "}  # after the block\n"
        "train {\n"
        "  optimizer sgd(   # the optimizer\n"
        "      lr: 0.1, # the rate\n"
        "      # no momentum? yes:\n"
        "      momentum: 0.9,\n"
        "      weight_decay: 1e-4  # decay\n"
        "      # the end\n"
        "  )\n"
        "#   an odd comment\t\n"
        "}\n",
        "block odd(c) {  # after the brace\n"
        "    # first\n"
        "    conv 3x3, c  # trailing\n"
        "    bn           # bn\n"
        "    relu         # r\n"
        "}  # after the block\n"
        "train {\n"
        "    optimizer sgd(  # the optimizer\n"
        "        lr: 0.1,  # the rate\n"
        "        # no momentum? yes:\n"
        "        momentum: 0.9,\n"
        "        weight_decay: 1e-4  # decay\n"
        "        # the end\n"
        "    )\n"
        "    #   an odd comment\n"
        "}\n",
    )


def test_spacing_and_expressions() -> None:
    check_layout(
        "param a = (1+2)*-3 ** 2\n"
        "param b = not true and  false or a<3\n"
        "param c = 1 if a>2 else 2\n"
        "param d = [ 1,2 , 3, ]\n"
        "block b( x , y = x*2 ) { conv (x); conv(x) ; f() ;; residual(shortcut:B){conv 1x1,in.channels} }\n"
        "block e() {\n}\n",
        "param a = (1 + 2) * -3 ** 2\n"
        "param b = not true and false or a < 3\n"
        "param c = 1 if a > 2 else 2\n"
        "param d = [1, 2, 3]\n"
        "block b(x, y = x * 2) { conv (x); conv(x); f(); residual(shortcut: B) { conv 1x1, in.channels } }\n"
        "block e() { }\n",
    )


def test_long_lines_are_wrapped() -> None:
    check_layout(
        "network n {\n"
        '    stem { conv 7x7, 64, stride: 2, name: "features.conv0"; bn name: "features.norm0"; relu name: "features.relu0"; maxpool 3x3 }\n'
        '    stage dense1(name: "features.denseblock1.denselayer{n}") = dense_bottleneck(k, bn_size: 4, drop: 0, memory_efficient: 1) * 6\n'
        "}\n"
        "train { optimizer sgd(lr: 0.1, momentum: 0.9); schedule step(at: [32000, 48000], factor: 0.1); iterations 64000; batch 128 }\n"
        "train {\n"
        "    schedule step(at: [100000000000, 200000000000, 300000000000, 400000000000, 500000000000, 600000000000, 700000000000], factor: 0.1)\n"
        "}\n",
        "network n {\n"
        "    stem {\n"
        '        conv 7x7, 64, stride: 2, name: "features.conv0"\n'
        '        bn name: "features.norm0"\n'
        '        relu name: "features.relu0"\n'
        "        maxpool 3x3\n"
        "    }\n"
        '    stage dense1(name: "features.denseblock1.denselayer{n}") = dense_bottleneck(\n'
        "        k, bn_size: 4, drop: 0, memory_efficient: 1\n"
        "    ) * 6\n"
        "}\n"
        "train {\n"
        "    optimizer sgd(lr: 0.1, momentum: 0.9)\n"
        "    schedule step(at: [32000, 48000], factor: 0.1)\n"
        "    iterations 64000\n"
        "    batch 128\n"
        "}\n"
        "train {\n"
        "    schedule step(\n"
        "        at: [100000000000, 200000000000, 300000000000, 400000000000, 500000000000, 600000000000, 700000000000],\n"
        "        factor: 0.1\n"
        "    )\n"
        "}\n",
    )


def test_tabs_bom_crlf_blank_lines_and_expects() -> None:
    check_layout(
        "\ufeff\n\n\tparam n = 1\t# one\r\n\r\n\r\n\r\nnetwork\tn {\r\n\r\n\tinput 3x8x8\r\n\tclasses 2\r\n"
        "\thead {\tfc classes }\r\n\texpect params > 0\t# some\r\n\texpect layers == 1 \\\r\n + 0\r\n"
        "\texpect flops ~= 1K  # about\r\n\r\n}\r\n",
        "param n = 1  # one\n"
        "\n"
        "network n {\n"
        "    input 3x8x8\n"
        "    classes 2\n"
        "    head { fc classes }\n"
        "    expect params > 0  # some\n"
        "    expect layers == 1 + 0\n"
        "    expect flops  ~= 1K  # about\n"
        "}\n",
    )


def test_an_empty_spec_and_comments_only() -> None:
    check_layout("", "")
    check_layout("\n\n  # just this  \n\n\n# and this\n", "# just this\n\n# and this\n")


def test_syntax_error_is_the_usual_located_error() -> None:
    with pytest.raises(SpecError) as err:
        format_source("network x {\n  conv 3x3, stride 2\n}\n", "bad.rd")
    assert err.value.render() == (
        "bad.rd:2:20: error: unexpected `2`\n"
        "    2 |   conv 3x3, stride 2\n"
        "      |                    ^\n"
        "  hint: separate arguments with `,`, e.g. `conv 3x3, 64`"
    )


# ---------------------------------------------------------------- the command


MESSY = "param n=3\nnetwork x {\n  input 3x8x8;classes 2\n  head { avgpool global; fc classes }\n}\n"
TIDY = "param n = 3\nnetwork x {\n    input 3x8x8; classes 2\n    head { avgpool global; fc classes }\n}\n"


def fmt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *args: str):
    monkeypatch.chdir(tmp_path)
    return CliRunner().invoke(main, ["fmt", *args])


def test_check_names_the_files_that_would_change(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "a.rd").write_text(MESSY)
    (tmp_path / "b.rd").write_text(TIDY)
    result = fmt(tmp_path, monkeypatch, "--check", "a.rd", "b.rd")
    assert result.exit_code == 1
    assert result.stdout == "a.rd: would be reformatted\n"
    assert (tmp_path / "a.rd").read_text() == MESSY
    assert fmt(tmp_path, monkeypatch, "--check", "b.rd").exit_code == 0


def test_diff_prints_a_unified_diff(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "a.rd").write_text(MESSY)
    result = fmt(tmp_path, monkeypatch, "--diff", "a.rd")
    assert result.exit_code == 0
    assert result.stdout == (
        "--- a.rd (original)\n+++ a.rd (formatted)\n@@ -1,5 +1,5 @@\n"
        "-param n=3\n+param n = 3\n network x {\n-  input 3x8x8;classes 2\n"
        "-  head { avgpool global; fc classes }\n+    input 3x8x8; classes 2\n"
        "+    head { avgpool global; fc classes }\n }\n"
    )
    assert (tmp_path / "a.rd").read_text() == MESSY


def test_writes_in_place_through_links(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "a.rd").write_text("\ufeff" + MESSY.replace("\n", "\r\n"))
    os.chmod(tmp_path / "lib" / "a.rd", 0o640)
    (tmp_path / "a.rd").symlink_to("lib/a.rd")
    result = fmt(tmp_path, monkeypatch, "a.rd")
    assert (result.exit_code, result.stdout) == (0, "a.rd: reformatted\n")
    assert (tmp_path / "a.rd").is_symlink()
    assert (tmp_path / "lib" / "a.rd").read_bytes() == TIDY.encode()
    assert (tmp_path / "lib" / "a.rd").stat().st_mode & 0o777 == 0o640
    assert sorted(p.name for p in (tmp_path / "lib").iterdir()) == ["a.rd"]  # no temporary file left
    assert fmt(tmp_path, monkeypatch, "a.rd").stdout == ""


def test_a_syntax_error_leaves_the_file_alone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bad = "network x {\n  conv 3x3, stride 2\n}\n"
    (tmp_path / "bad.rd").write_text(bad)
    (tmp_path / "a.rd").write_text(MESSY)
    result = fmt(tmp_path, monkeypatch, "bad.rd", "a.rd", "missing.rd")
    assert result.exit_code == 1
    assert result.stderr == (
        "bad.rd:2:20: error: unexpected `2`\n"
        "    2 |   conv 3x3, stride 2\n"
        "      |                    ^\n"
        "  hint: separate arguments with `,`, e.g. `conv 3x3, 64`\n"
        "error: cannot read spec `missing.rd`: no such file\n"
    )
    assert "Traceback" not in result.output
    assert (tmp_path / "bad.rd").read_text() == bad
    assert (tmp_path / "a.rd").read_text() == TIDY  # the others are still formatted


def test_stdin_and_several_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["fmt", "-"], input=MESSY)
    assert (result.exit_code, result.stdout) == (0, TIDY)
    result = CliRunner().invoke(main, ["fmt", "--check", "-"], input=MESSY)
    assert (result.exit_code, result.stdout) == (1, "-: would be reformatted\n")
    (tmp_path / "kw.rd").write_text("param true = 1\nparam false = 2\n")
    (tmp_path / "a.rd").write_text(MESSY)
    result = CliRunner().invoke(main, ["fmt", "kw.rd", "a.rd"])
    assert result.exit_code == 1
    assert result.stderr == (
        "kw.rd:1:7: error: `true` is a keyword; it cannot name a param\n"
        "    1 | param true = 1\n"
        "      |       ^^^^\n"
        "  hint: choose another name\n"
        "kw.rd:2:7: error: `false` is a keyword; it cannot name a param\n"
        "    2 | param false = 2\n"
        "      |       ^^^^^\n"
        "  hint: choose another name\n"
    )
    assert (tmp_path / "a.rd").read_text() == TIDY
