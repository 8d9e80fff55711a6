"""The spec's `param` values, with `--set` overrides applied."""

from __future__ import annotations

from resdsl.diagnostics import SpecError
from resdsl.lang import syntax
from resdsl.lang.evaluate import Env, evaluate
from resdsl.lang.imports import Program
from resdsl.lang.values import Symbol, Value


def evaluate_params(program: Program, overrides: dict[str, Value], errors: list[SpecError]) -> dict[str, Value]:
    values: dict[str, Value] = {}
    for name, pdef in program.params.items():
        if name in overrides:
            default = _eval_quiet(pdef.value, Env(values))
            values[name] = _coerce(overrides[name], default)
            continue
        try:
            values[name] = evaluate(pdef.value, Env(values))
        except SpecError as err:
            errors.append(err)
    return values


def _eval_quiet(expr: syntax.Expr, env: Env) -> Value:
    try:
        return evaluate(expr, env)
    except SpecError:
        return None


def _coerce(value: Value, default: Value) -> Value:
    """`--set stride_at=middle` gives a word; a string param keeps being a string."""
    if isinstance(default, str) and not isinstance(default, Symbol) and isinstance(value, Symbol):
        return str(value)
    return value
