"""Argument specifications: the parameters an op or section takes, each with its check, what it
expects (for messages) and its default. Free of the syntax tree, so the op registry
(resdsl.ir.ops), which back ends read, can hold signatures."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from resdsl.lang.values import Size, Value

MAX_SPATIAL = 1 << 16


def _kernel(v: Value) -> tuple[int, int] | None:
    if isinstance(v, Size) and len(v.dims) == 2 and all(0 < d <= MAX_SPATIAL for d in v.dims):
        return v.dims  # type: ignore[return-value]
    if _whole(v) is not None and 0 < _whole(v) <= MAX_SPATIAL:
        return (_whole(v), _whole(v))
    return None


def _whole(v: Value) -> int | None:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    if isinstance(v, float):
        return int(v) if v.is_integer() else None
    return v


def _positive(v: Value) -> int | None:
    w = _whole(v)
    return w if w is not None and w > 0 else None


def _nonneg(v: Value) -> int | None:
    w = _whole(v)
    return w if w is not None and w >= 0 else None


def _bool(v: Value) -> bool | None:
    return v if isinstance(v, bool) else None


def _prob(v: Value) -> float | None:
    if isinstance(v, (int, float)) and not isinstance(v, bool) and 0 <= v < 1:
        return float(v)
    return None


def _positive_real(v: Value) -> float | None:
    if isinstance(v, (int, float)) and not isinstance(v, bool) and 0 < v < float("inf"):
        return float(v)
    return None


def _unit(v: Value) -> float | None:
    """A fraction in [0, 1] (a running-average momentum)."""
    if isinstance(v, (int, float)) and not isinstance(v, bool) and 0 <= v <= 1:
        return float(v)
    return None


def _pool_kernel(v: Value) -> Any:
    return "global" if v == "global" else _kernel(v)


@dataclass
class Param:
    name: str
    check: Callable[[Value], Any]
    expects: str
    default: Any = None
    required: bool = False


@dataclass
class Signature:
    positional: list[Param]
    keyword: list[Param] = field(default_factory=list)
    example: str = ""

    def params(self) -> list[Param]:
        return self.positional + self.keyword
