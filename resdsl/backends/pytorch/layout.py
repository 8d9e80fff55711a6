"""Lays out generated Python lines as ruff format would (88 columns): calls split at their arguments."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from resdsl.backends.pytorch.view import BlockClass


def finish(cls: BlockClass) -> None:
    """Lay out a class's lines as ruff would: the def line wrapped, long calls split."""
    cls.signature = def_lines(["self", *cls.signature], indent=4)
    cls.init = [out for line in cls.init for out in wrap_indented(line, 8)]
    cls.forward = [out for line in cls.forward for out in wrap_indented(line, 8)]
    cls.methods = [out for line in cls.methods for out in wrap_method_line(line)]


def def_lines(params: list[str], indent: int) -> list[str]:
    one = f"def __init__({', '.join(params)}) -> None:"
    if indent + len(one) <= 88:
        return [one]
    inner = ", ".join(params)
    if indent + 4 + len(inner) <= 88:
        return ["def __init__(", "    " + inner, ") -> None:"]
    return ["def __init__("] + ["    " + p + "," for p in params] + [") -> None:"]


def wrap_method_line(line: str) -> list[str]:
    """A line of a further method (4 spaces in the class): its def wrapped like __init__'s, calls split."""
    if line.startswith("def ") and 4 + len(line) > 88:
        head, _, rest = line.partition("(")
        params = rest[: rest.rfind(")")]
        tail = rest[rest.rfind(")") :]
        parts = _split_args(params)  # not at a ", " inside a string default
        inner = ", ".join(parts)
        if 8 + len(inner) <= 88:
            return [f"{head}(", "    " + inner, tail]
        return [f"{head}("] + ["    " + p + "," for p in parts] + [tail]
    return wrap_indented(line, 4) if line else [line]


def wrap_indented(line: str, indent: int) -> list[str]:
    stripped = line.lstrip(" ")
    if stripped.startswith("#"):
        return [line]  # a comment (it may quote a spec's call): ruff leaves it long, split it would be code
    lead = " " * (len(line) - len(stripped))
    return [lead + part for part in wrap_call(stripped, indent + len(lead))]


def generator_lines(call: str, loop: str) -> list[str]:
    """`*(call for ...),` on one line, or as ruff splits it when it is too long for a stage."""
    one = f"*({call} {loop}),"
    if 12 + len(one) <= 88:
        return [one]
    return ["*(", *("    " + line for line in wrap_call(call, 16)), f"    {loop}", "),"]


def wrap_call(line: str, indent: int, width: int = 88) -> list[str]:
    """A line as ruff would format it: unchanged if it fits, else its outermost call's arguments
    on one line of their own, or one per line with a trailing comma; a sole argument that is a
    call too long for its line is split the same way, hugged (no trailing comma)."""
    if indent + len(line) <= width:
        return [line]
    open_at = line.find("(")
    if open_at < 0 or not line.endswith(")") and not line.endswith("),"):
        return [line]
    tail = line[line.rfind(")") :]
    inner = line[open_at + 1 : line.rfind(")")]
    parts = _split_args(inner)
    if indent + 4 + len(", ".join(parts)) <= width:
        return [line[: open_at + 1], "    " + ", ".join(parts), tail]
    if len(parts) == 1 and parts[0].endswith(")") and "(" in parts[0]:
        return [line[: open_at + 1], *("    " + x for x in wrap_call(parts[0], indent + 4, width)), tail]
    lines = [line[: open_at + 1]]
    for part in parts:
        lines += ["    " + x for x in wrap_call(part + ",", indent + 4, width)]
    return lines + [tail]


def _split_args(text: str) -> list[str]:
    parts, depth, start = [], 0, 0
    quote = ""
    for i, ch in enumerate(text):
        if quote:
            if ch == quote:
                quote = ""
            continue
        if ch in "\"'":
            quote = ch
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(text[start:i].strip())
            start = i + 1
    parts.append(text[start:].strip())
    return [p for p in parts if p]
