"""The op catalogue: each op's arguments, their checks and defaults, and binding a call to them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from resdsl.diagnostics import Span, SpecError, did_you_mean
from resdsl.lang import syntax
from resdsl.lang.evaluate import Env, evaluate, source_text, unknown_name
from resdsl.lang.values import Size, Value, describe

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
    "relu6": Signature([]),
    "sigmoid": Signature([]),
    "silu": Signature([]),
    "hardswish": Signature([]),
    "gelu": Signature([]),
    "maxpool": Signature(
        [Param("kernel", _kernel, _KERNEL, required=True)],
        [
            Param("stride", _positive, "a positive whole number"),
            Param("pad", _nonneg, "a whole number >= 0", 0),
            Param("ceil", _bool, "true or false", False),  # PyTorch's ceil_mode: a partial last window counts
        ],
        "maxpool 3x3, stride: 2, pad: 1",
    ),
    "avgpool": Signature(
        [Param("kernel", _pool_kernel, "`global` or " + _KERNEL, required=True)],
        [
            Param("stride", _positive, "a positive whole number"),
            Param("pad", _nonneg, "a whole number >= 0", 0),
            Param("ceil", _bool, "true or false", False),
            Param("count_pad", _bool, "true or false", True),  # count_include_pad: padding zeros in the mean
        ],
        "avgpool global",
    ),
    "adaptive_avgpool": Signature(
        [Param("size", _kernel, "an output size such as 7x7 or 7", required=True)],
        [],
        "adaptive_avgpool 7x7",
    ),
    "fc": Signature(
        [Param("out", _positive, "a positive whole number of outputs", required=True)],
        [Param("bias", _bool, "true or false", True)],
        "fc classes",
    ),
    "dropout": Signature([Param("p", _prob, "a probability in [0, 1)", 0.5)], [], "dropout 0.5"),
}

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
        names = ", ".join(p.name for p in sig.positional) or "no"
        extra = positional[len(sig.positional)]
        binding.errors.append(
            SpecError(
                f"`{what}` takes {len(sig.positional)} positional argument{'s' if len(sig.positional) != 1 else ''} ({names}), got {len(positional)}",
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
    "swish": "silu",
    "hard_swish": "hardswish",
    "hswish": "hardswish",
    "relu_6": "relu6",
    "logistic": "sigmoid",
}
