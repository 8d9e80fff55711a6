"""Source spans and the user-facing errors that carry them."""

from __future__ import annotations

import re
from dataclasses import dataclass, field


class SourceFile:
    """A spec file's display path and text; spans point into it."""

    def __init__(self, path: str, text: str) -> None:
        self.path = path
        self.text = text
        # Lines as the parser counts them: split at "\n" only (str.splitlines also splits at form
        # feeds and U+2028, which the grammar allows, and would show the wrong line under an error).
        body = text[:-1] if text.endswith("\n") else text
        self.lines = [line.removesuffix("\r") for line in body.split("\n")] if text else []

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
        parts = [printable(_located(self.span, f"error: {self.message}"))]
        parts += _excerpt(self.span)
        if self.hint:
            parts.append(printable(f"  hint: {self.hint}"))
        notes = self.notes
        if len(notes) > MAX_NOTES:  # e.g. a chain of 50 block calls: the ends say enough
            hidden = len(notes) - MAX_NOTES + 1
            notes = notes[: MAX_NOTES // 2] + [Note(f"... {hidden} more")] + notes[-(MAX_NOTES // 2 - 1) :]
        for note in notes:
            parts.append(printable(_located(note.span, f"note: {note.message}")))
        return "\n".join(parts)


MAX_ERRORS = 100  # errors reported for one spec; the stages stop looking once they have more


class SpecErrors(ResdslError):
    """Several independent errors found in one spec (the first MAX_ERRORS of them, in source order)."""

    def __init__(self, errors: list[SpecError]) -> None:
        super().__init__(f"{len(errors)} errors")
        self.errors = sorted(errors, key=_error_order)
        self.truncated = len(self.errors) > MAX_ERRORS
        del self.errors[MAX_ERRORS:]

    def render(self) -> str:
        text = "\n".join(e.render() for e in self.errors)
        if self.truncated:
            text += f"\nerror: too many errors; stopped after the first {MAX_ERRORS}"
        return text


def too_many(errors: list[SpecError]) -> bool:
    """Whether a stage has found more errors than are reported: it may stop looking (each error can
    cost a search of every name for a did-you-mean, and a 1 MB spec can hold 20,000 of them)."""
    return len(errors) > MAX_ERRORS


class UsageError(ResdslError):
    """A bad command-line value (exit code 2)."""

    def render(self) -> str:
        return printable(f"error: {self}")


class InputError(ResdslError):
    """Bad data, checkpoints or other non-spec input (exit code 1)."""

    def render(self) -> str:
        return printable(f"error: {self}")


def _error_order(e: SpecError) -> tuple:
    s = e.span
    return (s.path, s.line, s.col) if s else ("", 0, 0)


def _located(span: Span | None, text: str) -> str:
    return f"{span}: {text}" if span else text


EXCERPT_WIDTH = 200  # characters of a source line shown under an error; a longer line is cut around the caret
EXCERPT_BEFORE = 100  # of which at most this many before the caret

# Characters that must not reach a terminal as they are: C0 and C1 controls (ESC starts terminal
# escape sequences), DEL, and the bidirectional overrides that make text display out of order.
_UNSAFE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\ufeff]")


def _escape(match: re.Match) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: str) -> str:
    """Text from a spec, a file name or the command line made safe to print: control characters
    and bidirectional overrides written as escapes (`\\x1b`, `\\u202e`); newlines and tabs kept."""
    return _UNSAFE.sub(_escape, text)


def _excerpt(span: Span | None) -> list[str]:
    """The source line of a span with carets under the spanned text, made printable, and cut
    around the caret when it is longer than EXCERPT_WIDTH."""
    if span is None:
        return []
    text = span.source.line(span.line)
    if not text:
        return []
    end = span.end_col if span.end_line == span.line and span.end_col > span.col else span.col + 1
    end = min(max(end, span.col + 1), len(text) + 2)
    start, stop = span.col - 1, end - 1  # 0-based; stop may pass the end by one (a caret after the line)
    lo, hi = max(0, start - EXCERPT_BEFORE + 3), min(len(text), start + EXCERPT_WIDTH)  # enough to show
    before = ("..." if lo else "") + _cells(text[lo:start])
    marked = _cells(text[start : min(stop, hi)])
    after = _cells(text[min(stop, hi) : hi]) + ("..." if hi < len(text) else "")
    width = len(marked) + max(0, stop - len(text))
    if len(before) > EXCERPT_BEFORE:
        before = "..." + before[-(EXCERPT_BEFORE - 3) :]
    room = EXCERPT_WIDTH - len(before)
    shown = marked + after
    if len(shown) > room:
        shown = shown[: room - 3] + "..."
        width = min(width, room - 3)
    gutter = f"{span.line:>5} | "
    pad = " " * (len(gutter) - 2) + "| "
    return [gutter + before + shown, pad + " " * len(before) + "^" * max(width, 1)]


def _cells(text: str) -> str:
    """Source text as shown in an excerpt: a tab as one space (the caret counts it as one column)."""
    return printable(text.replace("\t", " "))


def collect(errors: list[SpecError]) -> None:
    """Raise the collected errors, if any, as one exception."""
    if len(errors) == 1:
        raise errors[0]
    if errors:
        raise SpecErrors(errors)


MAX_SUGGEST = 2000  # names compared with a misspelt one; past that, no did-you-mean


def did_you_mean(name: str, choices) -> str | None:
    import difflib

    # only names whose length allows a similarity of 0.6 (difflib's upper bound 2*min/(sum)):
    # cheap, and the same answer
    n = len(name)
    near = sorted(c for c in choices if 10 * min(n, len(c)) >= 3 * (n + len(c)))
    if len(near) > MAX_SUGGEST:
        return None
    close = difflib.get_close_matches(name, near, n=1, cutoff=0.6)
    return f"did you mean `{close[0]}`?" if close else None
