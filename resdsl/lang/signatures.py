"""Binding an op's or section's arguments to its signature (lang/argspec.py): matching, evaluation,
checks and defaults. The ops themselves and their signatures are listed in resdsl.ir.ops."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from resdsl.diagnostics import Span, SpecError, did_you_mean
from resdsl.lang import syntax
from resdsl.lang.argspec import MAX_SPATIAL, Param, Signature, _positive  # noqa: F401 (re-exported)
from resdsl.lang.evaluate import Env, evaluate, source_text, unknown_name
from resdsl.lang.values import Value, describe

SECTIONS_IN_BODY = ("residual", "dense", "gate")


# ---------------------------------------------------------------- argument binding


@dataclass
class Slot:
    """One parameter of a signature and the expression given for it (None: not given)."""

    param: Param
    expr: syntax.Expr | None


@dataclass
class Binding:
    """A call's arguments matched to a signature by name, before anything is evaluated.

    `errors` are the problems of the match (an unknown or repeated argument name); with `fatal`
    (too many positional arguments) nothing is evaluated at all. A Binding is made once per
    statement and evaluated at every use, so the errors are copied when they are reported.
    """

    what: str
    span: Span
    example: str
    slots: list[Slot]
    errors: list[SpecError] = field(default_factory=list)
    fatal: bool = False

    def given(self) -> dict[str, syntax.Expr]:
        return {s.param.name: s.expr for s in self.slots if s.expr is not None}


def match(what: str, sig: Signature, args: list[syntax.Arg], span: Span) -> Binding:
    """Match call arguments to a signature by position and name (no evaluation)."""
    binding = Binding(what, span, sig.example, [])
    given: dict[str, syntax.Arg] = {}
    positional = [a for a in args if a.name is None]
    if len(positional) > len(sig.positional):
        n = len(sig.positional)
        takes = f"{n} positional argument{'s' if n != 1 else ''} ({', '.join(p.name for p in sig.positional)})"
        extra = positional[n]
        binding.errors.append(
            SpecError(
                f"`{what}` takes {takes if n else 'no positional arguments'}, got {len(positional)}",
                extra.span,
                f"e.g. `{sig.example}`" if sig.example else None,
            )
        )
        binding.fatal = True
        return binding
    for p, a in zip(sig.positional, positional):
        given[p.name] = a
    names = {p.name: p for p in sig.params()}
    for a in args:
        if a.name is None:
            continue
        if a.name not in names:
            hint = did_you_mean(a.name, names) or (
                f"`{what}` takes: {', '.join(names)}" if names else f"`{what}` takes no arguments"
            )
            binding.errors.append(SpecError(f"`{what}` has no argument `{a.name}`", a.span, hint))
            continue
        if a.name in given:
            binding.errors.append(SpecError(f"argument `{a.name}` of `{what}` is given twice", a.span))
            continue
        given[a.name] = a
    binding.slots = [Slot(p, given[p.name].value if p.name in given else None) for p in sig.params()]
    return binding


def copy_error(err: SpecError) -> SpecError:
    return SpecError(err.message, err.span, err.hint, list(err.notes))


def evaluate_binding(binding: Binding, env: Env, errors: list[SpecError]) -> dict[str, Any] | None:
    """Evaluate and check a matched call's arguments (defaults where not given); None after an error."""
    if binding.errors:
        errors.extend(copy_error(e) for e in binding.errors)
    if binding.fatal:
        return None
    out: dict[str, Any] = {}
    ok = not binding.errors
    for slot in binding.slots:
        p = slot.param
        if slot.expr is None:
            if p.required:
                example = f"e.g. `{binding.example}`" if binding.example else None
                errors.append(
                    SpecError(f"`{binding.what}` needs its `{p.name}` argument ({p.expects})", binding.span, example)
                )
                ok = False
            else:
                out[p.name] = p.default
            continue
        try:
            value = evaluate(slot.expr, env)
        except SpecError as err:
            errors.append(err)
            ok = False
            continue
        checked = p.check(value)
        if checked is None:
            unknown = unknown_name(value, slot.expr, env.names())
            if unknown is not None:
                errors.append(unknown)
                ok = False
                continue
            hint = whole_hint(value, slot.expr)
            errors.append(
                SpecError(
                    f"`{p.name}` of `{binding.what}` must be {p.expects}, got {describe(value)}", slot.expr.span, hint
                )
            )
            ok = False
            continue
        out[p.name] = checked
    return out if ok else None


def bind(
    what: str,
    sig: Signature,
    args: list[syntax.Arg],
    env: Env,
    span: Span,
    errors: list[SpecError],
) -> dict[str, Any] | None:
    """Match call arguments to a signature, evaluate and check them; None after an error."""
    return evaluate_binding(match(what, sig, args, span), env, errors)


def whole_hint(v: Value, expr: syntax.Expr) -> str | None:
    """For a fraction where a whole number was wanted: say how to round it."""
    if isinstance(v, float) and not v.is_integer() and not isinstance(expr, syntax.Number):
        text = source_text(expr)
        return f"`{text}` is {v:g}; round it explicitly, e.g. `int({text})` or `round({text})`"
    return None
