"""Completion: ops, blocks, params, keywords and argument names, each with its signature, chosen
by where the cursor is (top level, a network, a train section, a body, a call's arguments)."""

from __future__ import annotations

import re

from lsprotocol import types

from resdsl.ir.ops import OPS
from resdsl.ir.settings import NETWORK_SETTINGS
from resdsl.lang.argspec import Signature
from resdsl.lang.imports import STDLIB
from resdsl.lang.recipe import FIELDS
from resdsl.lang.signatures import SECTIONS_IN_BODY
from resdsl.lsp.analysis import Analysis
from resdsl.lsp.locate import enclosing_block
from resdsl.lsp.symbols import block_signature, find_block

TOP = ("import", "param", "block", "network", "train")
IN_NETWORK = (*NETWORK_SETTINGS, "stem", "stage", "head", "expect")
IN_BODY = (*SECTIONS_IN_BODY, "shortcut", "preact", "if", "else", "expect")

_STAGE = re.compile(r"^\s*stage\s+\w+(\([^)]*\))?\s*=\s*([^=]*,\s*)?\w*$")
_Kind = types.CompletionItemKind


def complete(a: Analysis, line: int, col: int, known: Analysis | None = None) -> list[types.CompletionItem]:
    """The completions at 1-based (line, col) of `a`'s text, with the names `known` knows (the
    document's last check that parsed: while a line is being typed, the document seldom does)."""
    if known is None or known.program is None:
        known = a
    lines = a.text.split("\n")
    prefix = lines[line - 1][: col - 1] if 0 < line <= len(lines) else ""
    offset = sum(len(x) + 1 for x in lines[: line - 1]) + len(prefix)
    headers = _open_bodies(a.text[:offset])
    block = enclosing_block(a.module or known.module, line, col) if (a.module or known.module) else None
    if re.match(r'^\s*import\s+"[^"]*$', prefix):
        return _files(a)
    call = open_call(prefix)
    if call is None and _STAGE.match(prefix):
        return _blocks(known)
    if call is None and headers and not headers[-1].startswith(("network", "train")):
        call = op_line(prefix)
    callee = call[0] if call else None
    if callee is not None:
        return _arguments(known, callee) + _values(known, block)
    if re.search(r"[=(,:+*/<>-]\s*\w*$|\b(expect|if)\s+\w*$", prefix) or not re.match(r"^\s*\w*$", prefix):
        return _values(known, block)
    if not headers:
        return _keywords(TOP)
    if headers[-1].startswith("network"):
        return _keywords(IN_NETWORK)
    if headers[-1].startswith("train"):
        return _keywords(sorted(FIELDS))
    return _ops() + _blocks(known) + _keywords(IN_BODY)


def _open_bodies(text: str) -> list[str]:
    """The headers (`network x`, `stem`, `block basic(c)`) of the bodies open at the end of `text`."""
    text = re.sub(r'#[^\n]*|"[^"\n]*"', "", text)
    stack: list[str] = []
    start = 0
    for m in re.finditer(r"[{}]", text):
        if m.group() == "{":
            header = text[start : m.start()].rsplit("\n", 1)[-1].split(";")[-1].strip()
            stack.append(header)
        elif stack:
            stack.pop()
        start = m.end()
    return stack


def open_call(prefix: str) -> tuple[str, str] | None:
    """The name before the innermost parenthesis still open in `prefix`, and the arguments typed
    after it (`basic(32, st` -> ("basic", "32, st"))."""
    depth = 0
    for i in range(len(prefix) - 1, -1, -1):
        ch = prefix[i]
        if ch == ")":
            depth += 1
        elif ch == "(":
            if depth == 0:
                m = re.search(r"(\w+)\s*$", prefix[:i])
                return (m.group(1), prefix[i + 1 :]) if m else None
            depth -= 1
    return None


def op_line(prefix: str) -> tuple[str, str] | None:
    """The op whose arguments are being typed and what is typed so far (`stem { conv 3x3, ` -> the op's
    name and `3x3, `), if any."""
    m = re.match(r"^\s*(\w+)\s+(.*)$", re.split(r"[{;]", prefix)[-1])
    return (m.group(1), m.group(2)) if m and m.group(1) in OPS else None


def _files(a: Analysis) -> list[types.CompletionItem]:
    """What `import "` can name: the .rd files beside the document and the standard library's."""
    beside = sorted(p.name for p in a.path.parent.glob("*.rd") if p != a.path)
    std = sorted(p.name for p in STDLIB.glob("std*.rd"))
    return [
        types.CompletionItem(n, kind=_Kind.File, detail="standard library" if n in std else None)
        for n in {**dict.fromkeys(beside), **dict.fromkeys(std)}
    ]


def _keywords(words) -> list[types.CompletionItem]:
    return [types.CompletionItem(w, kind=_Kind.Keyword) for w in words]


def _signature(name: str, sig: Signature) -> str:
    parts = [p.name for p in sig.positional]
    parts += [f"{p.name}: {p.default}" if p.default is not None else f"{p.name}:" for p in sig.keyword]
    return f"{name} {', '.join(parts)}".strip()


def _ops() -> list[types.CompletionItem]:
    return [
        types.CompletionItem(
            name,
            kind=_Kind.Function,
            detail=_signature(name, sig),
            documentation=f"e.g. `{sig.example}`" if sig.example else None,
        )
        for name, sig in OPS.items()
    ]


def _blocks(a: Analysis) -> list[types.CompletionItem]:
    blocks = a.program.blocks.values() if a.program else [b for m in a.modules() for b in m.blocks]
    return [
        types.CompletionItem(
            b.name,
            kind=_Kind.Class,
            detail=f"block {b.name}({', '.join(f.name for f in b.formals)})",
            documentation=types.MarkupContent(types.MarkupKind.Markdown, block_signature(b)),
        )
        for b in blocks
    ]


def _arguments(a: Analysis, callee: str) -> list[types.CompletionItem]:
    block = find_block(a, callee)
    if block is not None:
        names = [(f.name, block_signature(block).split("\n")[1]) for f in block.formals]
    elif callee in OPS:
        names = [(p.name, _signature(callee, OPS[callee])) for p in OPS[callee].params()]
    else:
        return []
    return [
        types.CompletionItem(f"{n}:", kind=_Kind.Property, detail=detail, insert_text=f"{n}: ", sort_text=f"0{n}")
        for n, detail in names
    ]


def _values(a: Analysis, block) -> list[types.CompletionItem]:
    """Names an expression can read: the params and, inside a block, its arguments."""
    items: dict[str, types.CompletionItem] = {}
    for module in a.modules():
        for p in module.params:
            text = p.span.source.line(p.span.line).strip()
            items[p.name] = types.CompletionItem(p.name, kind=_Kind.Constant, detail=text)
    for f in block.formals if block else []:
        items[f.name] = types.CompletionItem(f.name, kind=_Kind.Variable, detail=f"argument of {block.name}")
    return list(items.values())
