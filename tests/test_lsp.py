"""`resdsl lsp` driven by a real client over stdio (pytest-lsp): diagnostics, hover, inlay
hints, definitions, references, completion and document symbols."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

pytest_lsp = pytest.importorskip("pytest_lsp")
from lsprotocol import types  # noqa: E402
from pytest_lsp import ClientServerConfig, LanguageClient  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
CIFAR20 = ROOT / "specs" / "cifar20.rd"
STAGE3 = "    stage conv3 = basic(32, stride: 2) * n"

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_lsp.fixture(scope="module", config=ClientServerConfig(server_command=[sys.executable, "-m", "resdsl", "lsp"]))
async def client(lsp_client: LanguageClient):
    result = await lsp_client.initialize_session(
        types.InitializeParams(capabilities=types.ClientCapabilities(), root_uri=ROOT.as_uri())
    )
    lsp_client.server_capabilities = result.capabilities
    yield
    await lsp_client.shutdown_session()


def _open(client: LanguageClient, path: Path, text: str) -> str:
    uri = path.as_uri()
    client.text_document_did_open(types.DidOpenTextDocumentParams(types.TextDocumentItem(uri, "resdsl", 1, text)))
    return uri


def _change(client: LanguageClient, uri: str, version: int, text: str) -> None:
    client.text_document_did_change(
        types.DidChangeTextDocumentParams(
            types.VersionedTextDocumentIdentifier(uri=uri, version=version),
            [types.TextDocumentContentChangeWholeDocument(text)],
        )
    )


async def _diagnostics(client: LanguageClient, uri: str, until) -> list[types.Diagnostic]:
    """The diagnostics of `uri` once `until(them)` holds (those published before the last change
    fail it: each step changes what is wrong)."""
    async with asyncio.timeout(20):
        while uri not in client.diagnostics or not until(list(client.diagnostics[uri])):
            await asyncio.sleep(0.01)
    return list(client.diagnostics[uri])


def _none(found: list[types.Diagnostic]) -> bool:
    return found == []


def _one(found: list[types.Diagnostic]) -> bool:
    return len(found) == 1


def _pos(text: str, line_text: str, word: str) -> types.Position:
    line = text.split("\n").index(line_text)
    return types.Position(line, line_text.index(word) + 1)


async def test_the_server_says_what_it_can_do(client: LanguageClient) -> None:
    caps = client.server_capabilities
    assert caps.hover_provider and caps.definition_provider and caps.references_provider
    assert caps.inlay_hint_provider and caps.document_symbol_provider and caps.completion_provider
    try:  # formatting goes through `resdsl fmt` where this checkout has it
        import resdsl.lang.fmt  # noqa: F401

        assert caps.document_formatting_provider
    except ImportError:
        assert not caps.document_formatting_provider


async def test_diagnostics_appear_and_clear_as_the_document_changes(client: LanguageClient, tmp_path: Path) -> None:
    spec = tmp_path / "net.rd"  # unsaved: the file on disk is empty; std.rd comes from the library
    spec.write_text("")
    good = CIFAR20.read_text()
    uri = _open(client, spec, good)
    assert await _diagnostics(client, uri, _none) == []
    bad = good.replace("basic(32, stride: 2)", "basic(32, strid: 2)")
    _change(client, uri, 2, bad)
    [d] = await _diagnostics(client, uri, _one)
    assert d.message == "block `basic` has no argument `strid`\nhint: did you mean `stride`?"
    line = bad.split("\n").index(STAGE3.replace("stride", "strid"))
    assert (d.range.start.line, d.range.start.character) == (line, STAGE3.index("strid"))
    assert d.severity == types.DiagnosticSeverity.Error and d.source == "resdsl"
    _change(client, uri, 3, bad.replace("param n = 3", "param n = 3\nparam n = 4"))  # every error, with notes
    errors = await _diagnostics(client, uri, lambda f: any("defined twice" in e.message for e in f))
    twice = next(e for e in errors if "defined twice" in e.message)
    assert twice.related_information[0].message == "first defined here"
    assert twice.related_information[0].location.uri == uri
    _change(client, uri, 4, good)
    assert await _diagnostics(client, uri, _none) == []


async def test_an_unsaved_import_is_read_from_its_buffer(client: LanguageClient, tmp_path: Path) -> None:
    lib = tmp_path / "lib.rd"
    lib.write_text("")
    lib_uri = _open(client, lib, "block twice(c) { conv 3x3, c; conv 3x3, c }\n")
    spec = tmp_path / "net.rd"
    text = 'import "lib.rd"\nnetwork t {\n    input 3x8x8\n    classes 2\n    stage s = twice(4)\n    head { avgpool global; fc classes }\n}\n'
    spec.write_text(text)
    uri = _open(client, spec, text)
    assert await _diagnostics(client, uri, _none) == []
    _change(
        client, lib_uri, 2, "block twice(c) { conv 3x3, c; conv 3x3, c, stride: 0 }\n"
    )  # the importer is checked again
    [d] = await _diagnostics(client, uri, _one)
    assert "lib.rd" in d.message and d.related_information[0].location.uri == lib_uri


async def test_hover_shows_a_stage_output_shape(client: LanguageClient) -> None:
    text = CIFAR20.read_text()
    uri = _open(client, CIFAR20, text)
    result = await client.text_document_hover_async(
        types.HoverParams(types.TextDocumentIdentifier(uri), _pos(text, STAGE3, "conv3"))
    )
    assert "**32x16x16**" in result.contents.value
    assert "51,072 params" in result.contents.value
    use = await client.text_document_hover_async(
        types.HoverParams(types.TextDocumentIdentifier(uri), _pos(text, STAGE3, "basic"))
    )
    assert "3 uses" in use.contents.value and "`layer2.0`: **32x16x16**, 13,952 params" in use.contents.value
    param = await client.text_document_hover_async(
        types.HoverParams(
            types.TextDocumentIdentifier(uri), types.Position(text.split("\n").index(STAGE3), len(STAGE3) - 1)
        )
    )
    assert param.contents.value.startswith("**param n** = `3`") and "cifar20.rd:6" in param.contents.value


async def test_definition_jumps_into_std(client: LanguageClient) -> None:
    text = CIFAR20.read_text()
    uri = _open(client, CIFAR20, text)
    result = await client.text_document_definition_async(
        types.DefinitionParams(types.TextDocumentIdentifier(uri), _pos(text, STAGE3, "basic"))
    )
    assert result.uri.endswith("/std.rd")
    std = Path(result.uri.removeprefix("file://")).read_text().split("\n")
    assert std[result.range.start.line][result.range.start.character :].startswith("basic(")
    refs = await client.text_document_references_async(
        types.ReferenceParams(
            text_document=types.TextDocumentIdentifier(uri),
            position=_pos(text, STAGE3, "basic"),
            context=types.ReferenceContext(include_declaration=True),
        )
    )
    uses = [i for i, line in enumerate(text.split("\n")) if "= basic(" in line]
    assert sorted(r.range.start.line for r in refs if r.uri == uri) == uses
    assert any(r.uri.endswith("/std.rd") for r in refs)


async def test_completion_offers_blocks_after_stage(client: LanguageClient) -> None:
    text = CIFAR20.read_text()
    uri = _open(client, CIFAR20, text)
    typed = text.replace(STAGE3, "    stage x = ")
    _change(client, uri, 2, typed)
    line = typed.split("\n").index("    stage x = ")
    result = await client.text_document_completion_async(
        types.CompletionParams(types.TextDocumentIdentifier(uri), types.Position(line, len("    stage x = ")))
    )
    labels = {item.label: item for item in result.items}
    assert "bottleneck" in labels and "basic" in labels
    assert labels["bottleneck"].detail.startswith("block bottleneck(")
    args = typed.replace("    stage x = ", "    stage x = basic(32, ")
    _change(client, uri, 3, args)
    result = await client.text_document_completion_async(
        types.CompletionParams(types.TextDocumentIdentifier(uri), types.Position(line, len("    stage x = basic(32, ")))
    )
    assert {"width:", "stride:", "n"} <= {item.label for item in result.items}
    _change(client, uri, 4, text)


async def test_inlay_hints_on_every_stage_line(client: LanguageClient) -> None:
    text = CIFAR20.read_text()
    uri = _open(client, CIFAR20, text)
    lines = text.split("\n")
    result = await client.text_document_inlay_hint_async(
        types.InlayHintParams(
            types.TextDocumentIdentifier(uri), types.Range(types.Position(0, 0), types.Position(len(lines), 0))
        )
    )
    hints = {h.position.line: h.label for h in result}
    stages = [i for i, line in enumerate(lines) if line.strip().startswith(("stage", "stem", "head"))]
    assert len(stages) == 5 and set(stages) <= set(hints)
    assert hints[lines.index(STAGE3)] == "-> 32x16x16"
    assert result[0].position.character == len(lines[result[0].position.line].rstrip())


async def test_document_symbols(client: LanguageClient) -> None:
    text = CIFAR20.read_text()
    uri = _open(client, CIFAR20, text)
    result = await client.text_document_document_symbol_async(
        types.DocumentSymbolParams(types.TextDocumentIdentifier(uri))
    )
    by_name = {s.name: s for s in result}
    assert set(by_name) == {"n", "cifar_resnet20", "train"}
    network = by_name["cifar_resnet20"]
    assert [(c.name, c.detail) for c in network.children] == [
        ("stem", "16x32x32"),
        ("conv2", "16x32x32"),
        ("conv3", "32x16x16"),
        ("conv4", "64x8x8"),
        ("head", "10"),
    ]


async def test_a_library_shows_the_figures_of_an_open_spec_that_uses_it(client: LanguageClient) -> None:
    _open(client, CIFAR20, CIFAR20.read_text())
    std = ROOT / "resdsl" / "lang" / "stdlib" / "std.rd"
    text = std.read_text()
    uri = _open(client, std, text)
    assert await _diagnostics(client, uri, _none) == []  # a library checks as `resdsl check` has it: ok
    lines = text.split("\n")
    conv = lines.index("        conv 3x3, width, stride: stride; bn; relu")
    result = await client.text_document_inlay_hint_async(
        types.InlayHintParams(
            types.TextDocumentIdentifier(uri), types.Range(types.Position(0, 0), types.Position(len(lines), 0))
        )
    )
    assert {h.position.line: h.label for h in result}[conv] == "-> 16x32x32"  # basic's first use: conv2
    header = await client.text_document_hover_async(
        types.HoverParams(
            types.TextDocumentIdentifier(uri), types.Position(lines.index("block basic(width, stride = 1) {"), 7)
        )
    )
    assert "used 9 times in `cifar_resnet20`" in header.contents.value


async def test_fixing_an_import_clears_the_importer(client: LanguageClient, tmp_path: Path) -> None:
    lib = tmp_path / "lib.rd"
    lib.write_text("")
    lib_uri = _open(client, lib, "block one(c) { conv 3x3, c\n")  # does not parse
    spec = tmp_path / "net.rd"
    text = 'import "lib.rd"\nnetwork t {\n    input 3x8x8\n    classes 2\n    stage s = one(4)\n    head { avgpool global; fc classes }\n}\n'
    uri = _open(client, spec, text)
    [d] = await _diagnostics(client, uri, _one)
    assert "lib.rd" in d.message
    _change(client, lib_uri, 2, "block one(c) { conv 3x3, c }\n")
    assert await _diagnostics(client, uri, _none) == []


async def test_formatting_goes_through_fmt(client: LanguageClient, tmp_path: Path) -> None:
    fmt = pytest.importorskip("resdsl.lang.fmt", reason="resdsl fmt is not in this checkout")
    messy = CIFAR20.read_text().replace("    stage conv2 = basic(16) * n", "  stage   conv2=basic( 16 )*n")
    spec = tmp_path / "messy.rd"
    spec.write_text(messy)
    uri = _open(client, spec, messy)
    edits = await client.text_document_formatting_async(
        types.DocumentFormattingParams(types.TextDocumentIdentifier(uri), types.FormattingOptions(4, True))
    )
    [edit] = edits
    assert edit.new_text == fmt.format_source(messy) and (edit.range.start.line, edit.range.start.character) == (0, 0)
