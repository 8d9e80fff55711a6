"""Positions: spans as LSP ranges and locations, and the syntax nodes under a cursor."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator
from pathlib import Path

from lsprotocol import types

from resdsl.diagnostics import Span
from resdsl.lang import syntax
from resdsl.lsp.analysis import resolve_display

_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def to_range(span: Span) -> types.Range:
    """A span (1-based lines and columns, end exclusive) as an LSP range (0-based)."""
    return types.Range(
        types.Position(span.line - 1, span.col - 1), types.Position(span.end_line - 1, max(span.end_col - 1, 0))
    )


def span_path(span: Span) -> Path:
    return resolve_display(span.path)


def to_location(span: Span) -> types.Location:
    return types.Location(span_path(span).as_uri(), to_range(span))


def contains(span: Span, line: int, col: int) -> bool:
    """Whether the 1-based (line, col) lies in the span (its end included: the cursor after a word)."""
    return (span.line, span.col) <= (line, col) <= (span.end_line, span.end_col)


def size(span: Span) -> tuple[int, int]:
    return (span.end_line - span.line, span.end_col - span.col if span.end_line == span.line else 10**9)


def nodes(root: object) -> Iterator[object]:
    """Every dataclass node below `root` (statements, expressions, arguments), depth first."""
    stack = [root]
    while stack:
        node = stack.pop()
        if isinstance(node, list):
            stack.extend(reversed(node))
        elif dataclasses.is_dataclass(node) and not isinstance(node, type):
            yield node
            for f in dataclasses.fields(node):
                if f.name not in ("span", "name_span"):
                    value = getattr(node, f.name)
                    if isinstance(value, list) or dataclasses.is_dataclass(value):
                        stack.append(value)


def under(module: syntax.Module, line: int, col: int) -> list[object]:
    """The nodes of `module` whose span holds (line, col), innermost first."""
    found = [n for n in nodes(module) if isinstance(getattr(n, "span", None), Span) and contains(n.span, line, col)]
    return sorted(found, key=lambda n: size(n.span))


def word_at(text: str, line: int, col: int) -> tuple[str, int, int] | None:
    """The identifier at 1-based (line, col) of `text`, with its 1-based start and end columns."""
    lines = text.split("\n")
    if not 0 < line <= len(lines):
        return None
    for m in _WORD.finditer(lines[line - 1]):
        if m.start() + 1 <= col <= m.end() + 1:
            return m.group(), m.start() + 1, m.end() + 1
    return None


def name_span(span: Span, name: str) -> Span:
    """Where `name` is written in the first line of a definition (`block basic(...)`, `param n = 3`)."""
    line = span.source.line(span.line)
    m = re.search(rf"\b{re.escape(name)}\b", line[span.col - 1 :])
    if m is None:
        return span
    col = span.col + m.start()
    return Span(span.source, span.line, col, span.line, col + len(name))


def enclosing_block(module: syntax.Module, line: int, col: int) -> syntax.BlockDef | None:
    return next((b for b in module.blocks if contains(b.span, line, col)), None)
