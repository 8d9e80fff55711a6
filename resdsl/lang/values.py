"""The values spec expressions evaluate to: numbers, bools, strings, bare words, sizes, lists and calls."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from resdsl.diagnostics import Span


class Symbol(str):
    """A bare word that names no variable (`A`, `global`, `cifar10`); equal to its string."""


@dataclass(frozen=True)
class Size:
    dims: tuple[int, ...]

    def __str__(self) -> str:
        return "x".join(str(d) for d in self.dims)


@dataclass(frozen=True)
class CallValue:
    """`sgd(lr: 0.1)` as a value: used by settings such as `optimizer` and `schedule`."""

    name: str
    args: tuple[Any, ...]
    kwargs: tuple[tuple[str, Any], ...]
    span: Span

    def kw(self) -> dict[str, Any]:
        return dict(self.kwargs)


Value = Any  # int | float | bool | str | Symbol | Size | list | CallValue

MAX_EXPONENT = 64
MAX_MAGNITUDE = 10**18


def describe(v: Value) -> str:
    if isinstance(v, Symbol):
        return f"the bare word `{v}`"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return f'the string "{v}"'
    if isinstance(v, Size):
        return f"the size {v}"
    if isinstance(v, list):
        return "a list"
    if isinstance(v, CallValue):
        return f"`{v.name}(...)`"
    return str(v)
