"""Signature help: the parameters of the block or op being called, the one being typed marked."""

from __future__ import annotations

import re

from lsprotocol import types

from resdsl.ir.ops import OPS
from resdsl.lsp.analysis import Analysis
from resdsl.lsp.complete import op_line, open_call
from resdsl.lsp.symbols import find_block


def signature_help(a: Analysis, line: int, col: int, known: Analysis | None = None) -> types.SignatureHelp | None:
    """At 1-based (line, col) inside `block(...)` or after an op's name (`conv 3x3, |`)."""
    lines = a.text.split("\n")
    prefix = lines[line - 1][: col - 1] if 0 < line <= len(lines) else ""
    known = known if known is not None and known.program is not None else a
    found = open_call(prefix) or op_line(prefix)
    if found is None:
        return None
    name, args = found
    block = find_block(known, name)
    if block is not None:
        params = [f.name if f.default is None else f"{f.name} = {_source(f.default.span)}" for f in block.formals]
        label = f"{name}({', '.join(params)})"
    elif name in OPS:
        sig = OPS[name]
        params = [p.name for p in sig.positional] + [f"{p.name}: {p.default}" for p in sig.keyword]
        label = f"{name} {', '.join(params)}"
    else:
        return None
    active = _active(args, [p.split(" ")[0].rstrip(":") for p in params])
    info = types.SignatureInformation(
        label, parameters=[types.ParameterInformation(p) for p in params], active_parameter=active
    )
    return types.SignatureHelp([info], active_signature=0, active_parameter=active)


def _source(span) -> str:
    return span.source.line(span.line)[span.col - 1 : span.end_col - 1] if span.line == span.end_line else "..."


def _active(args: str, names: list[str]) -> int:
    """The parameter the cursor is at: a keyword's by name, else by position."""
    parts = _split(args)
    last = parts[-1].strip() if parts else ""
    m = re.match(r"(\w+)\s*:", last)
    if m and m.group(1) in names:
        return names.index(m.group(1))
    return min(len(parts) - 1, len(names) - 1) if parts else 0


def _split(args: str) -> list[str]:
    """The arguments typed so far, split at top-level commas."""
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(args):
        if ch in "([":
            depth += 1
        elif ch in ")]":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(args[start:i])
            start = i + 1
    parts.append(args[start:])
    return parts
