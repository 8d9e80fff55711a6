"""Evaluation of spec expressions to values (resdsl.lang.values)."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

from resdsl.diagnostics import SpecError, did_you_mean
from resdsl.lang import syntax
from resdsl.lang.values import MAX_EXPONENT, MAX_MAGNITUDE, CallValue, Size, Symbol, Value, describe

_FUNCS: dict[str, Callable[..., Any]] = {
    "min": min,
    "max": max,
    "int": int,
    "round": round,
    "floor": math.floor,
    "ceil": math.ceil,
}


class Env:
    """Names visible to an expression: block arguments over the spec's params."""

    def __init__(self, values: Mapping[str, Value], parent: Env | None = None) -> None:
        self.values = dict(values)
        self.parent = parent

    def lookup(self, name: str) -> tuple[bool, Value]:
        env: Env | None = self
        while env is not None:
            if name in env.values:
                return True, env.values[name]
            env = env.parent
        return False, None

    def names(self) -> set[str]:
        out: set[str] = set()
        env: Env | None = self
        while env is not None:
            out |= set(env.values)
            env = env.parent
        return out

    def child(self, values: Mapping[str, Value]) -> Env:
        return Env(values, self)


def evaluate(expr: syntax.Expr, env: Env) -> Value:
    fn = _EVAL.get(type(expr))
    assert fn is not None, f"no evaluator for {type(expr).__name__}"
    return fn(expr, env)


def _number(e: syntax.Number, env: Env) -> Value:
    if (isinstance(e.value, float) and not math.isfinite(e.value)) or abs(e.value) > MAX_MAGNITUDE:
        raise SpecError(f"the number {e.text} is out of range", e.span, f"numbers here are at most {MAX_MAGNITUDE:.0e}")
    return e.value


def _name(e: syntax.Name, env: Env) -> Value:
    found, value = env.lookup(e.id)
    if not found and e.id.startswith("in."):  # lowering binds `in.channels` at each use of a block
        raise SpecError(
            f"`{e.id}` is only known inside a block",
            e.span,
            "it is the channels of the block's input; outside blocks, write the number",
        )
    return value if found else Symbol(e.id)


def _list(e: syntax.ListExpr, env: Env) -> Value:
    return [evaluate(i, env) for i in e.items]


def _call(e: syntax.Call, env: Env) -> Value:
    args = [evaluate(a.value, env) for a in e.args if a.name is None]
    kwargs = tuple((a.name, evaluate(a.value, env)) for a in e.args if a.name is not None)
    if e.name in _FUNCS:
        if kwargs or not args or not all(_is_number(a) for a in args):
            raise SpecError(f"`{e.name}` takes numbers only", e.span)
        if e.name not in ("min", "max") and len(args) != 1:
            raise SpecError(f"`{e.name}` takes one number", e.span)
        try:
            return _FUNCS[e.name](*args)
        except (OverflowError, ValueError) as err:  # int(inf), floor(nan): out-of-range arguments
            raise SpecError(f"`{e.name}` cannot take {', '.join(describe(a) for a in args)}: {err}", e.span) from None
    return CallValue(e.name, tuple(args), kwargs, e.span)


def _unary(e: syntax.Unary, env: Env) -> Value:
    v = evaluate(e.operand, env)
    if e.op == "not":
        return not _truth(v, e.operand)
    return -need_number(v, e.operand, "`-`", env)


def _cond(e: syntax.Cond, env: Env) -> Value:
    return evaluate(e.then, env) if _truth(evaluate(e.test, env), e.test) else evaluate(e.orelse, env)


def _binop(e: syntax.BinOp, env: Env) -> Value:
    if e.op in ("and", "or"):
        left = _truth(evaluate(e.left, env), e.left)
        if (e.op == "and") != left:
            return left
        return _truth(evaluate(e.right, env), e.right)
    a, b = evaluate(e.left, env), evaluate(e.right, env)
    if e.op in ("==", "!="):
        same = a == b
        return same if e.op == "==" else not same
    x = need_number(a, e.left, f"`{e.op}`", env)
    y = need_number(b, e.right, f"`{e.op}`", env)
    return arith(e.op, x, y, e)


def arith(op: str, x: float, y: float, e: syntax.BinOp) -> Value:
    if op in ("/", "//", "%") and y == 0:
        raise SpecError("division by zero", e.span)
    if op == "**" and abs(y) > MAX_EXPONENT:
        raise SpecError(f"exponent {y} is too large (at most {MAX_EXPONENT})", e.right.span)
    if op == "**" and x == 0 and y < 0:
        raise SpecError("division by zero (0 to a negative power)", e.span)
    if op == "**" and x < 0 and not float(y).is_integer():
        raise SpecError(f"({x}) ** {y} is not a real number", e.span, "only whole powers of negative numbers exist")
    table = {
        "+": lambda: x + y,
        "-": lambda: x - y,
        "*": lambda: x * y,
        "/": lambda: x / y,
        "//": lambda: x // y,
        "%": lambda: x % y,
        "**": lambda: x**y,
        "<": lambda: x < y,
        "<=": lambda: x <= y,
        ">": lambda: x > y,
        ">=": lambda: x >= y,
        "~=": lambda: about(x, y, e.right),
    }
    try:
        result = table[op]()
    except OverflowError:
        raise SpecError(f"the result of `{op}` is out of range", e.span) from None
    if _is_number(result) and abs(result) > MAX_MAGNITUDE:
        raise SpecError(f"value {result:.3g} is out of range", e.span)
    return result


def about(actual: float, expected: float, written: syntax.Expr | None = None) -> bool:
    """`a ~= b`: a rounds to b at the precision b is written with (`1.7M`: within 0.05M); else 1%."""
    return abs(actual - expected) <= about_tolerance(expected, written)


def about_tolerance(expected: float, written: syntax.Expr | None = None) -> float:
    """Half a unit in the last written digit of a literal (`1.7M`: 50,000), else 1% of the value."""
    if isinstance(written, syntax.Number):
        return precision_of(written.text) / 2
    return abs(expected) * 0.01


def precision_of(text: str) -> float:
    """One unit in the last written digit of a number literal: `1.7M` -> 1e5, `0.27M` -> 1e4."""
    scale = {"K": 1e3, "M": 1e6, "G": 1e9}.get(text[-1], 1.0)
    body = text.rstrip("KMG").lower().split("e")[0]
    exp = int(text.rstrip("KMG").lower().split("e")[1]) if "e" in text.rstrip("KMG").lower() else 0
    decimals = len(body.split(".")[1]) if "." in body else 0
    return scale * 10.0 ** (exp - decimals)


def _truth(v: Value, e: syntax.Expr) -> bool:
    if isinstance(v, bool):
        return v
    raise SpecError(f"expected true or false, got {describe(v)}", e.span)


def _is_number(v: Value) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def need_number(v: Value, e: syntax.Expr, what: str, env: Env | None = None) -> float:
    if _is_number(v):
        return v
    unknown = unknown_name(v, e, env.names() if env else None)
    if unknown:
        raise unknown
    raise SpecError(f"{what} needs a number, got {describe(v)}", e.span)


def unknown_name(v: Value, e: syntax.Expr, names: set[str] | None) -> SpecError | None:
    """A bare word where a value was wanted, written as a name: most likely a misspelt param."""
    if not (isinstance(v, Symbol) and isinstance(e, syntax.Name)):
        return None
    names = names or set()
    close = did_you_mean(v, names)
    if close:
        hint = close
    elif names:
        listed = sorted(names)
        hint = "names here: " + ", ".join(listed[:10]) + (", ..." if len(listed) > 10 else "")
    else:
        hint = "no params are defined here; add `param NAME = VALUE`"
    return SpecError(f"unknown name `{v}`", e.span, hint)


_EVAL: dict[type, Callable[[Any, Env], Value]] = {
    syntax.Number: _number,
    syntax.String: lambda e, env: e.value,
    syntax.Bool: lambda e, env: e.value,
    syntax.SizeLit: lambda e, env: Size(e.dims),
    syntax.Name: _name,
    syntax.ListExpr: _list,
    syntax.Call: _call,
    syntax.BinOp: _binop,
    syntax.Unary: _unary,
    syntax.Cond: _cond,
    syntax.Literal: lambda e, env: e.value,
}


def source_text(expr: syntax.Expr) -> str:
    """The exact text of an expression, as written in the spec."""
    s = expr.span
    if s.line == s.end_line:
        return s.source.line(s.line)[s.col - 1 : s.end_col - 1]
    lines = [s.source.line(n) for n in range(s.line, s.end_line + 1)]
    lines[0] = lines[0][s.col - 1 :]
    lines[-1] = lines[-1][: s.end_col - 1]
    return " ".join(x.strip() for x in lines)
