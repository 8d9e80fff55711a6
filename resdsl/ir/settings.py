"""The network's settings (`input`, `classes`, `shortcut`, `projection`, `survival`) and their checks."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from resdsl.diagnostics import Span, SpecError, UsageError
from resdsl.ir.graph import ShortcutOption
from resdsl.lang import syntax
from resdsl.lang.evaluate import Env, evaluate
from resdsl.lang.signatures import MAX_SPATIAL, _positive
from resdsl.lang.values import CallValue, Size, Value, describe

NETWORK_SETTINGS = ("input", "classes", "shortcut", "projection", "survival")


SHORTCUT_CHOICES = "A, B, C, none, identity or identity_or_none"


def check_shortcut(v: Value) -> ShortcutOption | None:
    if isinstance(v, str):
        for opt in ShortcutOption:
            if opt.value.lower() == v.lower():
                return opt
    return None


def check_survival(v: Value) -> float | None:
    if isinstance(v, (int, float)) and not isinstance(v, bool) and 0 < v <= 1:
        return float(v)
    return None


def network_settings(
    net: syntax.NetworkDef, env: Env, overrides: dict[str, Value], errors: list[SpecError]
) -> dict[str, Any]:
    """`input`, `classes`, `shortcut`, `projection`, `survival`: checked, `--set` applied, defaults filled."""

    def error(message: str, span: Span | None, hint: str | None = None) -> None:
        errors.append(SpecError(message, span, hint))

    found: dict[str, tuple[Value, syntax.Expr | None, Span]] = {}
    for stmt in net.body:
        if not isinstance(stmt, syntax.OpStmt) or stmt.name not in NETWORK_SETTINGS:
            continue
        if stmt.name in found:
            error(f"`{stmt.name}` is set twice", stmt.span)
            continue
        if len(stmt.args) != 1 or stmt.args[0].name is not None:
            error(f"`{stmt.name}` takes one value", stmt.span, _SETTING_EXAMPLES[stmt.name])
            continue
        try:
            value = evaluate(stmt.args[0].value, env)
        except SpecError as err:
            errors.append(err)
            value = None
        found[stmt.name] = (value, stmt.args[0].value, stmt.span)
    for name, value in overrides.items():
        if name in NETWORK_SETTINGS:
            span = found[name][2] if name in found else net.span
            found[name] = (value, None, span)
    out: dict[str, Any] = {}
    for name, (check, expects, default) in _SETTING_CHECKS.items():
        if name not in found:
            if default is _REQUIRED:
                error(f"network `{net.name}` needs `{name}`", net.span, _SETTING_EXAMPLES[name])
            out[name] = default
            continue
        value, expr, span = found[name]
        checked = check(value)
        if checked is None and expr is None:
            raise UsageError(f"--set {name}: must be {expects}, got {describe(value)}; {_SETTING_EXAMPLES[name]}")
        if checked is None and name == "survival" and (problem := _survival_mode_problem(expr, value)):
            errors.append(problem)
            continue
        if checked is None:
            where = expr.span
            error(
                f"`{name}` must be {expects}, got {describe(value)}",
                where,
                _SETTING_EXAMPLES[name],
            )
            continue
        out[name] = checked
        if name == "input":
            out["input_span"] = span
    out.setdefault("input_span", net.span)
    return out


def _input(v: Value) -> tuple[int, ...] | None:
    if isinstance(v, Size) and len(v.dims) == 3 and all(0 < d <= MAX_SPATIAL for d in v.dims):
        return v.dims
    return None


SURVIVAL_MODES = ("per_batch", "per_sample")


def _survival_setting(v: Value) -> Any:
    """(rule, mode): ("uniform", p) | ("linear", last) | ("span", first, last), and per_batch | per_sample."""
    if (
        isinstance(v, CallValue)
        and v.name == "linear"
        and not v.args
        and {"last"} <= set(v.kw()) <= {"last", "first", "mode"}
    ):
        kw = v.kw()
        last = check_survival(kw["last"])
        mode = kw.get("mode", "per_batch")
        if last is None or mode not in SURVIVAL_MODES:
            return None
        if "first" not in kw:  # Huang et al.: unit l of L survives with 1 - l/L (1 - last)
            return ("linear", last), mode
        first = check_survival(kw["first"])
        return (("span", first, last), mode) if first is not None else None
    p = check_survival(v)
    return (("uniform", p), "per_batch") if p is not None else None


def _survival_mode_problem(expr: syntax.Expr, value: Value) -> SpecError | None:
    """`linear(..., mode: X)` with X neither per_batch nor per_sample, located at X."""
    if not isinstance(expr, syntax.Call) or not isinstance(value, CallValue):
        return None
    mode = value.kw().get("mode")
    arg = next((a for a in expr.args if a.name == "mode"), None)
    if arg is None or mode in SURVIVAL_MODES:
        return None
    return SpecError(
        f"`mode` of `survival` must be per_batch or per_sample, got {describe(mode)}",
        arg.value.span,
        "per_batch: the whole batch skips a branch, scaled at test time (Huang et al.); per_sample: each image "
        'skips it alone, rescaled in training (torchvision\'s StochasticDepth(p, "row"))',
    )


_REQUIRED = object()
_SETTING_CHECKS: dict[str, tuple[Callable[[Value], Any], str, Any]] = {
    "input": (_input, f"channels x height x width, each 1..{MAX_SPATIAL}", _REQUIRED),
    "classes": (_positive, "a positive whole number", _REQUIRED),
    "shortcut": (check_shortcut, SHORTCUT_CHOICES, ShortcutOption.IDENTITY),
    "projection": (lambda v: v if v in ("conv_bn", "conv") else None, "conv_bn or conv", "conv_bn"),
    "survival": (
        _survival_setting,
        "a probability in (0, 1] or linear(last: p), with `first: q` and `mode: per_batch` or `per_sample`",
        None,
    ),
}
_SETTING_EXAMPLES = {
    "input": "e.g. `input 3x32x32`",
    "classes": "e.g. `classes 10`",
    "shortcut": "e.g. `shortcut A` (A | B | C | none | identity)",
    "projection": "e.g. `projection conv` (1x1 conv without BN) or `projection conv_bn`",
    "survival": "e.g. `survival linear(last: 0.5)`",
}
