"""The language server's features as functions of one checked document (in-process, no client):
hover per use, inlay hints inside blocks, completion by context, references, an unparsable buffer."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("lsprotocol")
from resdsl.lsp.analysis import Analysis, ParseCache, analyze  # noqa: E402
from resdsl.lsp.complete import complete  # noqa: E402
from resdsl.lsp.hints import inlay_hints  # noqa: E402
from resdsl.lsp.hover import hover  # noqa: E402
from resdsl.lsp.problems import diagnostics  # noqa: E402
from resdsl.lsp.symbols import definition, references  # noqa: E402

SPEC = """\
import "std.rd"

param w = 8

block pair(c, stride = 1) {
    residual {
        conv 3x3, c, stride: stride; bn; relu
        conv 3x3, c; bn
    }
    relu
}

network t {
    input 3x16x16
    classes 4
    shortcut B
    stem { conv 3x3, w; bn; relu }
    stage s1 = pair(w) * 2
    stage s2 = pair(2 * w, stride: 2), basic(16)
    head { avgpool global; fc classes }
}
"""


@pytest.fixture(scope="module")
def cache() -> ParseCache:
    return ParseCache()


def _check(tmp_path: Path, cache: ParseCache, text: str = SPEC) -> Analysis:
    return analyze(tmp_path / "t.rd", text, cache)


def _at(text: str, line_start: str, word: str, nth: int = 0) -> tuple[int, int]:
    """1-based (line, col) of `word` on the first line that starts (stripped) with `line_start`."""
    lines = text.split("\n")
    i = next(i for i, line in enumerate(lines) if line.strip().startswith(line_start))
    col = lines[i].index(word)
    for _ in range(nth):
        col = lines[i].index(word, col + 1)
    return i + 1, col + 1


def test_a_buffer_is_checked_from_its_text(tmp_path: Path, cache: ParseCache) -> None:
    a = _check(tmp_path, cache)  # the file does not exist: the text is the editor's
    assert a.errors == [] and a.ir is not None and a.ir.totals.sections[-2].output == [16, 8, 8]


def test_hover_on_an_op_lists_every_use(tmp_path: Path, cache: ParseCache) -> None:
    a = _check(tmp_path, cache)
    text = hover(a, *_at(SPEC, "conv 3x3, c, stride", "conv")).contents.value
    assert text.startswith("**conv**: 3 uses")
    assert "8x16x16 -> **8x16x16**, 576 params" in text and "8x16x16 -> **16x8x8**, 1,152 params" in text


def test_hover_on_a_param_says_where_it_comes_from(tmp_path: Path, cache: ParseCache) -> None:
    a = _check(tmp_path, cache)
    text = hover(a, *_at(SPEC, "stage s2", "w")).contents.value
    assert text.startswith("**param w** = `8`") and "from `param w = 8`" in text
    assert hover(a, *_at(SPEC, "stage s2", "stride")) is not None  # the call's hover, not a param's


def test_hover_on_the_network_gives_its_totals(tmp_path: Path, cache: ParseCache) -> None:
    a = _check(tmp_path, cache)
    text = hover(a, *_at(SPEC, "network t", "t")).contents.value
    assert text.startswith("**network t**: 3x16x16 -> 4 classes, shortcut B") and "layers 10, params 11,020," in text


def test_inlay_hints_on_block_op_lines_at_the_first_use(tmp_path: Path, cache: ParseCache) -> None:
    a = _check(tmp_path, cache)
    lines = SPEC.split("\n")
    hints = {h.position.line + 1: h.label for h in inlay_hints(a, 1, len(lines))}
    first = {
        _at(SPEC, "conv 3x3, c, stride", "conv")[0]: "-> 8x16x16",
        _at(SPEC, "conv 3x3, c; bn", "conv")[0]: "-> 8x16x16",
        _at(SPEC, "relu", "relu")[0]: "-> 8x16x16",
        _at(SPEC, "stem", "stem")[0]: "-> 8x16x16",
        _at(SPEC, "stage s1", "s1")[0]: "-> 8x16x16",
        _at(SPEC, "stage s2", "s2")[0]: "-> 16x8x8",
        _at(SPEC, "head", "head")[0]: "-> 4",
    }
    assert hints == first  # std.rd's basic is not in this document


def test_completion_by_context(tmp_path: Path, cache: ParseCache) -> None:
    a = _check(tmp_path, cache)

    def labels(text: str, line_start: str, col_after: str) -> set[str]:
        line, col = _at(text, line_start, col_after)
        b = _check(tmp_path, cache, text)
        return {i.label for i in complete(b, line, col + len(col_after), a)}

    top = SPEC.replace("param w = 8", "pa")
    assert {"param", "block", "network"} <= labels(top, "pa", "pa")
    body = SPEC.replace("        conv 3x3, c; bn\n", "        co\n")
    assert {"conv", "bn", "maxpool", "basic", "pair", "residual"} <= labels(body, "co", "co")
    args = SPEC.replace("stage s1 = pair(w) * 2", "stage s1 = pair(w, ")
    assert {"c:", "stride:", "w"} <= labels(args, "stage s1", "pair(w, ")
    op_args = SPEC.replace("conv 3x3, c; bn\n", "conv 3x3, c, \n")
    assert {"stride:", "groups:", "c", "w"} <= labels(op_args, "conv 3x3, c, \n".strip(), "conv 3x3, c, ")
    (tmp_path / "mine.rd").write_text("")
    imports = SPEC.replace('import "std.rd"', 'import "')
    assert {"std.rd", "mine.rd"} <= labels(imports, "import", 'import "')
    network = SPEC.replace("    shortcut B\n", "    sh\n")
    assert {"shortcut", "stage", "stem", "input"} <= labels(network, "sh", "sh")


def test_definition_and_references_of_a_block_and_a_param(tmp_path: Path, cache: ParseCache) -> None:
    a = _check(tmp_path, cache)
    loc = definition(a, *_at(SPEC, "stage s1", "pair"))
    assert (loc.range.start.line + 1, loc.range.start.character + 1) == _at(SPEC, "block pair", "pair")
    refs = references([], a, *_at(SPEC, "stage s1", "pair"), declaration=False)
    assert len(refs) == 2
    refs = references([], a, *_at(SPEC, "param w", "w"), declaration=True)
    assert len(refs) == 4  # the param, the stem, s1 and s2
    formal = definition(a, *_at(SPEC, "conv 3x3, c, stride", "stride", nth=1))
    assert formal.range.start.line + 1 == _at(SPEC, "block pair", "stride")[0]


def test_a_buffer_that_does_not_parse_has_its_error_and_no_hints(tmp_path: Path, cache: ParseCache) -> None:
    a = _check(tmp_path, cache, SPEC.replace("stage s1 = pair(w) * 2", "stage s1 = pair(w"))
    [d] = diagnostics(a)
    assert d.range.start.line + 1 >= _at(SPEC, "stage s1", "s1")[0]
    assert a.ir is None and inlay_hints(a, 1, 100) == []


def test_signature_help_marks_the_argument_being_typed(tmp_path: Path, cache: ParseCache) -> None:
    from resdsl.lsp.signature import signature_help

    a = _check(tmp_path, cache)
    text = SPEC.replace("stage s1 = pair(w) * 2", "stage s1 = pair(w, stride: ")
    b = _check(tmp_path, cache, text)
    line, col = _at(text, "stage s1", "stride: ")
    help = signature_help(b, line, col + len("stride: "), a)
    assert help.signatures[0].label == "pair(c, stride = 1)" and help.active_parameter == 1
    text = SPEC.replace("stem { conv 3x3, w; bn; relu }", "stem { conv 3x3, ")
    b = _check(tmp_path, cache, text)
    line, col = _at(text, "stem", "conv 3x3, ")
    help = signature_help(b, line, col + len("conv 3x3, "), a)
    assert help.signatures[0].label.startswith("conv kernel, channels, stride: 1") and help.active_parameter == 1


@pytest.mark.parametrize("name", ["cifar20", "resnet50", "densenet40", "mobilenet_v2"])
def test_cached_syntax_trees_give_the_checks_of_the_command_line(name: str, cache: ParseCache) -> None:
    """Checked twice from one parse cache (its trees shared), a spec has the IR `resdsl info` gets."""
    from resdsl.backends.report import to_json
    from resdsl.ir.pipeline import load_network

    spec = Path(__file__).resolve().parent.parent / "specs" / f"{name}.rd"
    if not spec.exists():
        pytest.skip(f"no {spec.name}")
    expected = to_json(load_network(spec), str(spec))
    for _ in range(2):
        a = analyze(spec, spec.read_text(), cache)
        assert to_json(a.ir, str(spec)) == expected


def test_the_errors_are_those_of_check(tmp_path: Path, cache: ParseCache) -> None:
    from resdsl.diagnostics import SpecErrors
    from resdsl.ir.pipeline import load_network

    text = SPEC.replace("pair(w) * 2", "pair(w, strid: 2) * 2").replace(
        "stride: 2), basic(16)", "strde: 2), basic(1.5)"
    )
    spec = tmp_path / "t.rd"
    spec.write_text(text)
    with pytest.raises(SpecErrors) as raised:
        load_network(spec)
    errors = raised.value.errors
    found = diagnostics(analyze(spec, text, cache))
    assert len(found) == len(errors) >= 3
    assert [d.message.split("\n")[0] for d in found] == [  # one in std.rd, at basic's conv: its place said
        e.message if e.span.path == a_path(spec) else f"{e.span}: {e.message}" for e in errors
    ]
    import_line = (1, 1)
    assert [(d.range.start.line + 1, d.range.start.character + 1) for d in found] == [
        (e.span.line, e.span.col) if e.span.path == a_path(spec) else import_line for e in errors
    ]
    assert [d.message.partition("\nhint: ")[2] or None for d in found] == [e.hint for e in errors]
    [std] = {r.location.uri for d in found for r in d.related_information or []}
    assert std.endswith("/std.rd")


def a_path(spec: Path) -> str:
    from resdsl.lang.imports import display_path

    return display_path(spec.resolve())


def test_a_crlf_buffer_checks_as_its_file_would(tmp_path: Path, cache: ParseCache) -> None:
    a = _check(tmp_path, cache, SPEC.replace("\n", "\r\n"))
    assert a.errors == [] and len(inlay_hints(a, 1, 100)) == 7


def test_lsp_without_pygls_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from click.testing import CliRunner

    from resdsl.cli.main import main

    monkeypatch.setitem(sys.modules, "pygls", None)  # as if the `lsp` extra were not installed
    monkeypatch.delitem(sys.modules, "resdsl.lsp.server", raising=False)
    result = CliRunner().invoke(main, ["lsp"])
    assert result.exit_code == 2
    assert "pip install 'resdsl[lsp]'" in result.output
