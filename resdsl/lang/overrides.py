"""`--set NAME=VALUE` on the command line: the text of each value -> a spec value."""

from __future__ import annotations

import math
import re
from typing import Any

from resdsl.diagnostics import UsageError
from resdsl.lang.build import parse_number
from resdsl.lang.values import MAX_MAGNITUDE, Size, Symbol, Value

_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?[KMG]?$")
_SIZE = re.compile(r"^\d+(x\d+)+$")


def parse_override(text: str) -> Value:
    """A `--set NAME=VALUE` value: number (64, 0.1, 1e-4, 1.7M), size (3x32x32), bool or word."""
    if _NUMBER.match(text):
        sign = -1 if text.startswith("-") else 1
        value = sign * parse_number(text.lstrip("+-"))
        if not math.isfinite(value) or abs(value) > MAX_MAGNITUDE:
            raise UsageError(f"--set: the number {text} is out of range (at most {MAX_MAGNITUDE:.0e})")
        return value
    if _SIZE.match(text):
        return Size(tuple(int(d) for d in text.split("x")))
    if text in ("true", "false"):
        return text == "true"
    if len(text) >= 2 and text[0] == text[-1] == '"':
        return text[1:-1]
    return Symbol(text)


def parse_sets(pairs: tuple[str, ...] | list[str]) -> dict[str, Any]:
    """`--set n=9 --set shortcut=B` -> {"n": 9, "shortcut": Symbol("B")}."""
    out: dict[str, Any] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip() or not value.strip():
            raise UsageError(f"--set takes NAME=VALUE, got `{pair}`")
        out[name.strip()] = parse_override(value.strip())
    return out
