"""The language server (pygls): documents checked on open and on every change, and the
requests answered from the latest check."""

from __future__ import annotations

import os
import re
from importlib.metadata import version
from pathlib import Path

from lsprotocol import types
from pygls.lsp.server import LanguageServer
from pygls.uris import to_fs_path

from resdsl.diagnostics import ResdslError
from resdsl.lsp.analysis import Analysis, ParseCache, analyze
from resdsl.lsp.complete import complete
from resdsl.lsp.hints import inlay_hints
from resdsl.lsp.hover import hover
from resdsl.lsp.problems import diagnostics
from resdsl.lsp.signature import signature_help
from resdsl.lsp.symbols import definition, document_symbols, references

try:  # `resdsl fmt`, where this checkout has it
    from resdsl.lang.fmt import format_source
except ImportError:  # pragma: no cover - depends on the checkout
    format_source = None

_IMPORT = re.compile(r'^\s*import\s+"[^"\n]*"', re.M)


class ResdslServer(LanguageServer):
    """Keeps the latest check of every open document (and its last one that parsed)."""

    def __init__(self) -> None:
        super().__init__("resdsl", version("resdsl"), text_document_sync_kind=types.TextDocumentSyncKind.Incremental)
        self.cache = ParseCache()
        self.checks: dict[str, Analysis] = {}
        self.parsed: dict[str, Analysis] = {}  # the last check whose program loaded: names for completion

    def path_of(self, uri: str) -> Path:
        path = to_fs_path(uri)
        return Path(path) if path else Path.cwd() / "untitled.rd"

    def check(self, uri: str) -> Analysis:
        doc = self.workspace.get_text_document(uri)
        others = {
            Path(os.path.realpath(self.path_of(u))): d.source
            for u, d in self.workspace.text_documents.items()
            if u != uri
        }
        try:
            a = analyze(self.path_of(uri), doc.source, self.cache, others)
        except Exception as err:  # a bug in resdsl: said in the log, the last check kept
            self.window_log_message(types.LogMessageParams(types.MessageType.Error, f"resdsl: internal error: {err!r}"))
            return self.checks.get(uri) or Analysis(self.path_of(uri), doc.source)
        self.checks[uri] = a
        if a.program is not None:
            self.parsed[uri] = a
        self.text_document_publish_diagnostics(types.PublishDiagnosticsParams(uri, diagnostics(a), version=doc.version))
        self.window_log_message(  # the editor's output panel; benchmarks/lsp_recheck.py reads it
            types.LogMessageParams(
                types.MessageType.Log,
                f"checked {a.display} in {a.seconds * 1000:.1f} ms ({a.cpu_seconds * 1000:.1f} ms CPU)",
            )
        )
        return a

    def check_with_dependents(self, uri: str) -> None:
        """Check a changed document, then the open documents that import it."""
        a = self.check(uri)
        for other in list(self.checks):
            if other != uri and self._reads(other, a.path):
                self.check(other)
        if self._refresh_hints():
            self.workspace_inlay_hint_refresh(None)

    def _reads(self, uri: str, path: Path) -> bool:
        """Whether the open document `uri` imports `path`, as far as its checks tell (one that never
        loaded, for a syntax error in an import, may: it is checked again)."""
        loaded = self.parsed.get(uri)
        return loaded is None or path in loaded.program.files

    def _refresh_hints(self) -> bool:
        ws = self.client_capabilities.workspace
        return bool(ws and ws.inlay_hint and ws.inlay_hint.refresh_support)

    def latest(self, uri: str) -> Analysis:
        return self.checks.get(uri) or self.check(uri)

    def known(self, uri: str) -> Analysis:
        """Names for completion: the last check that loaded, else the document's imports alone."""
        if uri in self.parsed:
            return self.parsed[uri]
        a = self.latest(uri)
        stub = "\n".join(_IMPORT.findall(a.text))
        return analyze(a.path, stub, self.cache)

    def others(self, uri: str) -> list[Analysis]:
        return [a for u, a in self.checks.items() if u != uri]


server = ResdslServer()


@server.feature(types.TEXT_DOCUMENT_DID_OPEN)
def _did_open(ls: ResdslServer, params: types.DidOpenTextDocumentParams) -> None:
    ls.check_with_dependents(params.text_document.uri)


@server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
def _did_change(ls: ResdslServer, params: types.DidChangeTextDocumentParams) -> None:
    ls.check_with_dependents(params.text_document.uri)


@server.feature(types.TEXT_DOCUMENT_DID_SAVE)
def _did_save(ls: ResdslServer, params: types.DidSaveTextDocumentParams) -> None:
    ls.check_with_dependents(params.text_document.uri)


@server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
def _did_close(ls: ResdslServer, params: types.DidCloseTextDocumentParams) -> None:
    uri = params.text_document.uri
    ls.checks.pop(uri, None)
    ls.parsed.pop(uri, None)
    ls.text_document_publish_diagnostics(types.PublishDiagnosticsParams(uri, []))


@server.feature(types.TEXT_DOCUMENT_HOVER)
def _hover(ls: ResdslServer, params: types.HoverParams) -> types.Hover | None:
    pos = params.position
    uri = params.text_document.uri
    return hover(ls.latest(uri), pos.line + 1, pos.character + 1, ls.others(uri))


@server.feature(types.TEXT_DOCUMENT_INLAY_HINT)
def _inlay_hints(ls: ResdslServer, params: types.InlayHintParams) -> list[types.InlayHint]:
    r = params.range
    uri = params.text_document.uri
    return inlay_hints(ls.latest(uri), r.start.line + 1, r.end.line + 1, ls.others(uri))


@server.feature(types.TEXT_DOCUMENT_DEFINITION)
def _definition(ls: ResdslServer, params: types.DefinitionParams) -> types.Location | None:
    pos = params.position
    return definition(ls.latest(params.text_document.uri), pos.line + 1, pos.character + 1)


@server.feature(types.TEXT_DOCUMENT_REFERENCES)
def _references(ls: ResdslServer, params: types.ReferenceParams) -> list[types.Location] | None:
    uri, pos = params.text_document.uri, params.position
    return references(
        ls.others(uri), ls.latest(uri), pos.line + 1, pos.character + 1, params.context.include_declaration
    )


@server.feature(types.TEXT_DOCUMENT_COMPLETION, types.CompletionOptions(trigger_characters=["(", ",", " ", "="]))
def _completion(ls: ResdslServer, params: types.CompletionParams) -> types.CompletionList:
    uri, pos = params.text_document.uri, params.position
    items = complete(ls.latest(uri), pos.line + 1, pos.character + 1, ls.known(uri))
    return types.CompletionList(is_incomplete=False, items=items)


@server.feature(types.TEXT_DOCUMENT_SIGNATURE_HELP, types.SignatureHelpOptions(trigger_characters=["(", ",", " "]))
def _signature_help(ls: ResdslServer, params: types.SignatureHelpParams) -> types.SignatureHelp | None:
    uri, pos = params.text_document.uri, params.position
    return signature_help(ls.latest(uri), pos.line + 1, pos.character + 1, ls.known(uri))


@server.feature(types.TEXT_DOCUMENT_DOCUMENT_SYMBOL)
def _symbols(ls: ResdslServer, params: types.DocumentSymbolParams) -> list[types.DocumentSymbol]:
    return document_symbols(ls.latest(params.text_document.uri))


if format_source is not None:

    @server.feature(types.TEXT_DOCUMENT_FORMATTING)
    def _formatting(ls: ResdslServer, params: types.DocumentFormattingParams) -> list[types.TextEdit] | None:
        doc = ls.workspace.get_text_document(params.text_document.uri)
        try:
            text = format_source(doc.source, ls.path_of(doc.uri).name)
        except ResdslError:  # a spec that does not parse is left as it is (its diagnostics say why)
            return None
        if text == doc.source:
            return []
        end = types.Position(len(doc.lines), 0)
        return [types.TextEdit(types.Range(types.Position(0, 0), end), text)]


def serve() -> None:
    """Serve over stdin and stdout until the client says exit."""
    import sys

    server.start_io()
    if sys.stdout.closed:  # pygls closes it on exit: what is left to flush goes nowhere
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115
