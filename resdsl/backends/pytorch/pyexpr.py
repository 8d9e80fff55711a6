"""Template expressions (resdsl.lang.expr, params already folded) -> Python source."""

from __future__ import annotations

import json
import re
from typing import Any

from resdsl.diagnostics import ResdslError
from resdsl.lang import expr as E
from resdsl.lang.values import Size, Symbol


class CodegenError(ResdslError):
    """The IR holds something the generator cannot write (a bug or an unsupported construct)."""

    def render(self) -> str:
        return f"error: cannot generate PyTorch code: {self}"


def literal(v: Any) -> str:
    """A Python literal for a spec value."""
    if isinstance(v, bool):
        return "True" if v else "False"
    if isinstance(v, (Symbol, str)):
        return json.dumps(str(v))  # a valid Python literal: control characters and quotes escaped
    if isinstance(v, Size):
        return kernel_literal(v.dims)
    if isinstance(v, float):
        return repr(int(v)) if v.is_integer() and abs(v) < 1e15 else repr(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(literal(i) for i in v) + "]"
    return repr(v)


def kernel_literal(dims: tuple[int, ...]) -> str:
    if len(set(dims)) == 1:
        return str(dims[0])
    return "(" + ", ".join(str(d) for d in dims) + ")"


def compared(text: str) -> str:
    """An operand of `==`: arithmetic binds tighter, a conditional or boolean expression does not."""
    return f"({text})" if re.search(r"\b(if|and|or|not|lambda)\b|[<>=!]=|[<>]", text) else text


def paren(text: str) -> str:
    return text if re.fullmatch(r"[\w.]+", text) else f"({text})"


# Python's precedence, lowest first (the grammar's levels are the same).
_COND, _OR, _AND, _NOT, _COMPARE, _SUM, _PRODUCT, _UNARY, _POWER, _ATOM = range(1, 11)
_BINARY = {
    "or": _OR, "and": _AND,
    **dict.fromkeys(("==", "!=", "<", "<=", ">", ">="), _COMPARE),
    "+": _SUM, "-": _SUM, "*": _PRODUCT, "/": _PRODUCT, "//": _PRODUCT, "%": _PRODUCT, "**": _POWER,
}  # fmt: skip

_FUNCS = {"min": "min", "max": "max", "int": "int", "round": "round", "floor": "math.floor", "ceil": "math.ceil"}


class Translator:
    """Expressions of a block's body -> Python expressions over the block's arguments."""

    def __init__(self, locals_: dict[str, str], floats: frozenset[str] = frozenset()) -> None:
        self.locals = locals_  # formal -> Python local name
        self.floats = floats  # formals given a fraction at some use (`t = 0.5`): their products are not whole
        self.uses_math = False

    def is_constant(self, e: E.Expr) -> bool:
        return not any(n in self.locals for n in E.names_in(e))

    def __call__(self, e: E.Expr) -> str:
        return self.render(e)[0]

    def render(self, e: E.Expr) -> tuple[str, int]:
        """Python text and its precedence (Python's, which the grammar shares): an operand is
        parenthesised only where the precedence of its place requires it."""
        if isinstance(e, E.Literal):
            return literal(e.value), _ATOM
        if isinstance(e, (E.Number, E.String, E.Bool)):
            return literal(e.value), _ATOM
        if isinstance(e, E.SizeLit):
            return kernel_literal(e.dims), _ATOM
        if isinstance(e, E.Name):
            return (self.locals[e.id] if e.id in self.locals else literal(Symbol(e.id))), _ATOM
        if isinstance(e, E.ListExpr):
            return "[" + ", ".join(self(i) for i in e.items) + "]", _ATOM
        if isinstance(e, E.Call) and e.name in _FUNCS:
            self.uses_math |= e.name in ("floor", "ceil")
            return f"{_FUNCS[e.name]}(" + ", ".join(self(a.value) for a in e.args) + ")", _ATOM
        if isinstance(e, E.Unary):
            if e.op == "not":
                return f"not {self.operand(e.operand, _NOT)}", _NOT
            return f"-{self.operand(e.operand, _UNARY)}", _UNARY
        if isinstance(e, E.BinOp) and e.op in _BINARY:
            p = _BINARY[e.op]
            if e.op == "**":  # atom ** unary
                left, right = self.operand(e.left, _ATOM), self.operand(e.right, _UNARY)
            elif p == _COMPARE:  # sum OP sum: comparisons do not chain
                left, right = self.operand(e.left, _SUM), self.operand(e.right, _SUM)
            else:  # left-associative
                left, right = self.operand(e.left, p), self.operand(e.right, p + 1)
            return f"{left} {e.op} {right}", p
        if isinstance(e, E.Cond):
            then, test = self.operand(e.then, _OR), self.operand(e.test, _OR)
            return f"{then} if {test} else {self.operand(e.orelse, _COND)}", _COND
        raise CodegenError(f"an expression at {e.span} cannot be written in Python inside a block")

    def operand(self, e: E.Expr, least: int) -> str:
        """`e` where an expression of precedence `least` or higher may stand unparenthesised."""
        text, p = self.render(e)
        return text if p >= least else f"({text})"

    def whole(self, e: E.Expr) -> str:
        """A whole-number argument (channels, strides): `int(...)` where the spec divides or multiplies by a
        fraction (the analysis checked the result is whole)."""
        text = self(e)
        if not self.is_constant(e) and _divides(e, self.floats):
            return f"int({text})"
        return text


def _divides(e: E.Expr, floats: frozenset[str] = frozenset()) -> bool:
    if isinstance(e, E.BinOp) and e.op in ("/", "**"):
        return True
    if isinstance(e, (E.Number, E.Literal)) and isinstance(e.value, float):
        return True
    if isinstance(e, E.Name) and e.id in floats:
        return True
    children = [getattr(e, k) for k in ("left", "right", "operand", "test", "then", "orelse") if hasattr(e, k)]
    return any(_divides(c, floats) for c in children)


def split_keyword(arg: str) -> tuple[str, str]:
    """A call's argument as Python: `stride=2` -> ("stride", "2"); a positional one -> ("", it)."""
    m = re.match(r"(\w+)=(?!=)(.*)\Z", arg, re.S)
    return (m.group(1), m.group(2)) if m else ("", arg)
