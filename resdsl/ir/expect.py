"""`expect` statements: checks of the measured totals (layers, params, FLOPs) written in the spec."""

from __future__ import annotations

from resdsl.diagnostics import SpecError
from resdsl.ir.graph import Expectation
from resdsl.lang import syntax
from resdsl.lang.evaluate import Env, about_tolerance, evaluate, source_text
from resdsl.lang.values import Value, describe


def expectation(stmt: syntax.ExpectStmt, env: Env) -> Expectation:
    def check(measures: dict[str, Value]) -> tuple[bool, str]:
        scope = env.child(measures)
        expr = stmt.expr
        result = evaluate(expr, scope)
        if not isinstance(result, bool):
            raise SpecError(
                f"`expect` needs a comparison, got {describe(result)}", expr.span, "e.g. `expect layers == 6*n + 2`"
            )
        detail = ""
        if isinstance(expr, syntax.BinOp) and expr.op in ("==", "!=", "<", "<=", ">", ">=", "~="):
            left, right = evaluate(expr.left, scope), evaluate(expr.right, scope)
            detail = _expect_detail(expr, left, right)
        return result, detail

    return Expectation(source_text(stmt.expr), stmt.span, check)


def _expect_detail(expr: syntax.BinOp, left: Value, right: Value) -> str:
    """`layers is 20, 6*n + 2 is 56`; a literal side is not repeated; `~=` shows its tolerance."""

    def side(e: syntax.Expr, v: Value) -> str | None:
        return (
            None
            if isinstance(e, (syntax.Number, syntax.SizeLit, syntax.String, syntax.Bool))
            else f"{source_text(e)} is {_fmt(v)}"
        )

    parts = [p for p in (side(expr.left, left), side(expr.right, right)) if p]
    if expr.op == "~=" and isinstance(right, (int, float)) and not isinstance(right, bool):
        parts.append(f"expected {_fmt(right)} ± {_fmt(about_tolerance(right, expr.right))}")
    return ", ".join(parts)


def _fmt(v: Value) -> str:
    if isinstance(v, int) and not isinstance(v, bool):
        return f"{v:,}"
    if isinstance(v, float):
        return f"{v:,.6g}"
    return describe(v)
