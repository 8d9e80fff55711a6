"""Source spans and the user-facing errors that carry them."""

from __future__ import annotations

from dataclasses import dataclass, field


class SourceFile:
    """A spec file's display path and text; spans point into it."""

    def __init__(self, path: str, text: str) -> None:
        self.path = path
        self.text = text
        self.lines = text.splitlines()

    def line(self, number: int) -> str:
        return self.lines[number - 1] if 0 < number <= len(self.lines) else ""

    def __repr__(self) -> str:
        return f"SourceFile({self.path!r})"


@dataclass(frozen=True)
class Span:
    source: SourceFile = field(compare=False, repr=False)
    line: int
    col: int
    end_line: int
    end_col: int

    @property
    def path(self) -> str:
        return self.source.path

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.col}"


@dataclass
class Note:
    message: str
    span: Span | None = None


MAX_NOTES = 8


class ResdslError(Exception):
    """Base of every error the tool reports to a user (exit code 1)."""

    def render(self) -> str:  # pragma: no cover - overridden
        return f"error: {self}"


class SpecError(ResdslError):
    """A problem in a spec, located at a span, with an optional hint and notes."""

    def __init__(
        self,
        message: str,
        span: Span | None = None,
        hint: str | None = None,
        notes: list[Note] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.span = span
        self.hint = hint
        self.notes = list(notes or [])

    def render(self) -> str:
        parts = [_located(self.span, f"error: {self.message}")]
        parts += _excerpt(self.span)
        if self.hint:
            parts.append(f"  hint: {self.hint}")
        notes = self.notes
        if len(notes) > MAX_NOTES:  # e.g. a chain of 50 block calls: the ends say enough
            hidden = len(notes) - MAX_NOTES + 1
            notes = notes[: MAX_NOTES // 2] + [Note(f"... {hidden} more")] + notes[-(MAX_NOTES // 2 - 1) :]
        for note in notes:
            parts.append(_located(note.span, f"note: {note.message}"))
        return "\n".join(parts)


class SpecErrors(ResdslError):
    """Several independent errors found in one spec."""

    def __init__(self, errors: list[SpecError]) -> None:
        super().__init__(f"{len(errors)} errors")
        self.errors = sorted(errors, key=_error_order)

    def render(self) -> str:
        return "\n".join(e.render() for e in self.errors)


class UsageError(ResdslError):
    """A bad command-line value (exit code 2)."""

    def render(self) -> str:
        return f"error: {self}"


class InputError(ResdslError):
    """Bad data, checkpoints or other non-spec input (exit code 1)."""

    def render(self) -> str:
        return f"error: {self}"


def _error_order(e: SpecError) -> tuple:
    s = e.span
    return (s.path, s.line, s.col) if s else ("", 0, 0)


def _located(span: Span | None, text: str) -> str:
    return f"{span}: {text}" if span else text


def _excerpt(span: Span | None) -> list[str]:
    """The source line of a span with carets under the spanned text."""
    if span is None:
        return []
    text = span.source.line(span.line)
    if not text:
        return []
    end = span.end_col if span.end_line == span.line and span.end_col > span.col else span.col + 1
    end = min(max(end, span.col + 1), len(text) + 2)
    gutter = f"{span.line:>5} | "
    pad = " " * (len(gutter) - 2) + "| "
    caret = " " * (span.col - 1) + "^" * (end - span.col)
    return [gutter + text.expandtabs(1), pad + caret]


def collect(errors: list[SpecError]) -> None:
    """Raise the collected errors, if any, as one exception."""
    if len(errors) == 1:
        raise errors[0]
    if errors:
        raise SpecErrors(errors)


def did_you_mean(name: str, choices) -> str | None:
    import difflib

    close = difflib.get_close_matches(name, sorted(choices), n=1, cutoff=0.6)
    return f"did you mean `{close[0]}`?" if close else None
