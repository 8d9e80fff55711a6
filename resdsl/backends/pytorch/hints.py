"""Type hints of a block class's parameters, from the values its uses give them."""

from __future__ import annotations

from typing import Any

from resdsl.lang.values import Size


def uses_hint(values: list[Any]) -> str:
    """The hint of an argument from the values of all its uses: `int | tuple[int, int]` for a kernel
    given as a size somewhere, `int | str` for `avgpool k` given `global` somewhere."""
    hints = dict.fromkeys(type_hint(v) for v in values)
    if "int | tuple[int, int]" in hints or "float" in hints:
        hints.pop("int", None)
    return " | ".join(hints) or "object"


def type_hint(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "int" if value.is_integer() else "float"
    if isinstance(value, str):
        return "str"
    if isinstance(value, Size):
        return "int | tuple[int, int]"
    return "object"
