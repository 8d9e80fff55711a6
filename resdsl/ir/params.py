"""The spec's `param` values, with `--set` overrides applied."""

from __future__ import annotations

from resdsl.diagnostics import SpecError, UsageError, too_many
from resdsl.lang import syntax
from resdsl.lang.evaluate import Env, evaluate
from resdsl.lang.expr import names_in
from resdsl.lang.imports import Program
from resdsl.lang.values import CallValue, Size, Symbol, Value, describe


def evaluate_params(program: Program, overrides: dict[str, Value], errors: list[SpecError]) -> dict[str, Value]:
    """Every param in definition order, each seeing the ones before it.

    One environment grows as the params are evaluated (a copy per param made a spec of many
    params quadratic). A param that fails is reported once: the params that use it are skipped,
    not reported again as `unknown name`.
    """
    env = Env({})
    values = env.values  # filled in place, never copied: each param sees the ones before it
    failed: set[str] = set()
    for name, pdef in program.params.items():
        if too_many(errors):
            break
        if name in overrides:
            default = None if _uses(pdef.value, failed) else _eval_quiet(pdef.value, env)
            values[name] = check_override(name, overrides[name], default)
            continue
        if _uses(pdef.value, failed):
            failed.add(name)
            continue
        try:
            values[name] = evaluate(pdef.value, env)
        except SpecError as err:
            errors.append(err)
            failed.add(name)
    return values


def _uses(expr: syntax.Expr, failed: set[str]) -> bool:
    return bool(failed) and any(n in failed for n in names_in(expr))


def _eval_quiet(expr: syntax.Expr, env: Env) -> Value:
    try:
        return evaluate(expr, env)
    except SpecError:
        return None


def check_override(name: str, value: Value, default: Value) -> Value:
    """A `--set` value for a param must be of the param's kind, judged by its default: a number
    for a number, true/false for a bool, a size (or one number) for a size; a word given to a
    string param becomes a string. Anything else is one usage error, not an error at every use."""
    if default is None or isinstance(default, (list, CallValue)):
        return value  # nothing to judge by: the uses check it
    if isinstance(default, bool):
        ok, expects = isinstance(value, bool), "true or false"
    elif isinstance(default, (int, float)):
        ok, expects = _is_number(value), "a number"
    elif isinstance(default, Size):
        ok, expects = isinstance(value, Size) or _is_number(value), f"a size like {default} or a number"
    elif isinstance(default, Symbol):
        ok, expects = isinstance(value, str) and value.isidentifier(), "a word"
    else:  # a string
        if isinstance(value, Symbol):
            return str(value)
        ok, expects = isinstance(value, str), "a string"
    if not ok:
        raise UsageError(
            f"--set {name}: must be {expects} (the param's default is {_shown(default)}), got {_shown(value)}"
        )
    return value


def _is_number(v: Value) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _shown(v: Value) -> str:
    if isinstance(v, Symbol) and not v.isidentifier():
        return f"`{v}`"
    if isinstance(v, str) and not isinstance(v, Symbol):
        return f'"{v}"'
    return describe(v)
