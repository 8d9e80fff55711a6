"""The op catalogue: each op's arguments, their checks and defaults, and binding a call to them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from resdsl.diagnostics import Span, SpecError, did_you_mean
from resdsl.lang import syntax
from resdsl.lang.values import Env, Size, Value, describe, evaluate, source_text, unknown_name

MAX_SPATIAL = 1 << 16


def _kernel(v: Value) -> tuple[int, int] | None:
    if isinstance(v, Size) and len(v.dims) == 2 and all(0 < d <= MAX_SPATIAL for d in v.dims):
        return v.dims  # type: ignore[return-value]
    if _whole(v) is not None and _whole(v) > 0:
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


_KERNEL = "a kernel size such as 3x3 or 3"
OPS: dict[str, Signature] = {
    "conv": Signature(
        [
            Param("kernel", _kernel, _KERNEL, required=True),
            Param("channels", _positive, "a positive whole number of channels", required=True),
        ],
        [
            Param("stride", _positive, "a positive whole number", 1),
            Param("pad", _nonneg, "a whole number >= 0"),
            Param("bias", _bool, "true or false", False),
            Param("groups", _positive, "a positive whole number", 1),
        ],
        "conv 3x3, 64, stride: 2",
    ),
    "bn": Signature([]),
    "relu": Signature([]),
    "maxpool": Signature(
        [Param("kernel", _kernel, _KERNEL, required=True)],
        [Param("stride", _positive, "a positive whole number"), Param("pad", _nonneg, "a whole number >= 0", 0)],
        "maxpool 3x3, stride: 2, pad: 1",
    ),
    "avgpool": Signature(
        [Param("kernel", _pool_kernel, "`global` or " + _KERNEL, required=True)],
        [Param("stride", _positive, "a positive whole number"), Param("pad", _nonneg, "a whole number >= 0", 0)],
        "avgpool global",
    ),
    "fc": Signature(
        [Param("out", _positive, "a positive whole number of outputs", required=True)],
        [Param("bias", _bool, "true or false", True)],
        "fc classes",
    ),
    "dropout": Signature([Param("p", _prob, "a probability in [0, 1)", 0.5)], [], "dropout 0.5"),
}

SECTIONS_IN_BODY = ("residual", "dense")


# ---------------------------------------------------------------- argument binding


def bind(
    what: str,
    sig: Signature,
    args: list[syntax.Arg],
    env: Env,
    span: Span,
    errors: list[SpecError],
) -> dict[str, Any] | None:
    """Match call arguments to a signature, evaluate and check them; None after an error."""
    out: dict[str, Any] = {}
    given: dict[str, syntax.Arg] = {}
    ok = True
    positional = [a for a in args if a.name is None]
    if len(positional) > len(sig.positional):
        names = ", ".join(p.name for p in sig.positional) or "no"
        extra = positional[len(sig.positional)]
        errors.append(
            SpecError(
                f"`{what}` takes {len(sig.positional)} positional argument{'s' if len(sig.positional) != 1 else ''} ({names}), got {len(positional)}",
                extra.span,
                f"e.g. `{sig.example}`" if sig.example else None,
            )
        )
        return None
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
            errors.append(SpecError(f"`{what}` has no argument `{a.name}`", a.span, hint))
            ok = False
            continue
        if a.name in given:
            errors.append(SpecError(f"argument `{a.name}` of `{what}` is given twice", a.span))
            ok = False
            continue
        given[a.name] = a
    for p in sig.params():
        if p.name not in given:
            if p.required:
                example = f"e.g. `{sig.example}`" if sig.example else None
                errors.append(SpecError(f"`{what}` needs its `{p.name}` argument ({p.expects})", span, example))
                ok = False
            else:
                out[p.name] = p.default
            continue
        arg = given[p.name]
        try:
            value = evaluate(arg.value, env)
        except SpecError as err:
            errors.append(err)
            ok = False
            continue
        checked = p.check(value)
        if checked is None:
            unknown = unknown_name(value, arg.value, env.names())
            if unknown is not None:
                errors.append(unknown)
                ok = False
                continue
            hint = whole_hint(value, arg.value)
            errors.append(
                SpecError(f"`{p.name}` of `{what}` must be {p.expects}, got {describe(value)}", arg.value.span, hint)
            )
            ok = False
            continue
        out[p.name] = checked
    return out if ok else None


def names_in(expr: syntax.Expr) -> list[str]:
    """Every name an expression reads, in order."""
    if isinstance(expr, syntax.Name):
        return [expr.id]
    if isinstance(expr, syntax.BinOp):
        return names_in(expr.left) + names_in(expr.right)
    if isinstance(expr, syntax.Unary):
        return names_in(expr.operand)
    if isinstance(expr, syntax.Cond):
        return names_in(expr.test) + names_in(expr.then) + names_in(expr.orelse)
    if isinstance(expr, syntax.Call):
        return [n for a in expr.args for n in names_in(a.value)]
    if isinstance(expr, syntax.ListExpr):
        return [n for i in expr.items for n in names_in(i)]
    return []


def whole_hint(v: Value, expr: syntax.Expr) -> str | None:
    """For a fraction where a whole number was wanted: say how to round it."""
    if isinstance(v, float) and not v.is_integer() and not isinstance(expr, syntax.Number):
        text = source_text(expr)
        return f"`{text}` is {v:g}; round it explicitly, e.g. `int({text})` or `round({text})`"
    return None


# Names from other frameworks -> resdsl's op.
OP_ALIASES = {
    "batchnorm": "bn",
    "batch_norm": "bn",
    "bn2d": "bn",
    "batchnorm2d": "bn",
    "conv2d": "conv",
    "convolution": "conv",
    "linear": "fc",
    "dense": "fc",
    "maxpool2d": "maxpool",
    "avgpool2d": "avgpool",
    "pool": "maxpool",
    "gap": "avgpool global",
    "globalavgpool": "avgpool global",
    "drop": "dropout",
}
