"""Errors as LSP diagnostics: the located errors, hints and notes `resdsl check` prints."""

from __future__ import annotations

from lsprotocol import types

from resdsl.diagnostics import ResdslError, SpecError
from resdsl.lsp.analysis import Analysis
from resdsl.lsp.locate import span_path, to_location, to_range

_START = types.Range(types.Position(0, 0), types.Position(0, 0))


def diagnostics(a: Analysis) -> list[types.Diagnostic]:
    """The document's diagnostics: its own errors where they are; an error in an imported file (a
    block's body, at a use) where a note points into this document, else on its first `import`,
    its place named in the message and given as related information."""
    return [_diagnostic(a, err) for err in a.errors]


def _diagnostic(a: Analysis, err: ResdslError) -> types.Diagnostic:
    if not isinstance(err, SpecError):
        return types.Diagnostic(_START, err.render(), types.DiagnosticSeverity.Error, source="resdsl")
    message = err.message
    related: list[types.DiagnosticRelatedInformation] = []
    span = err.span
    here = span is not None and span_path(span) == a.path
    if span is not None and not here:
        message = f"{span}: {message}"
        related.append(types.DiagnosticRelatedInformation(to_location(span), err.message))
    if err.hint:
        message += f"\nhint: {err.hint}"
    for note in err.notes:
        if note.span is not None:
            related.append(types.DiagnosticRelatedInformation(to_location(note.span), note.message))
        else:
            message += f"\nnote: {note.message}"
    local = next((n.span for n in err.notes if n.span is not None and span_path(n.span) == a.path), None)
    rng = to_range(span) if here else to_range(local) if local is not None else _import_line(a)
    return types.Diagnostic(
        rng, message, types.DiagnosticSeverity.Error, source="resdsl", related_information=related or None
    )


def _import_line(a: Analysis) -> types.Range:
    if a.module is not None and a.module.imports:
        return to_range(a.module.imports[0].span)
    return _START
