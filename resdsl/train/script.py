"""A standalone train.py for a generated model.py: trainlib's source and the resolved recipe, nothing of resdsl."""

from __future__ import annotations

import ast
from pathlib import Path

from resdsl.backends.pytorch.pyexpr import literal
from resdsl.ir.graph import NetworkIR


def trainlib_source() -> str:
    """trainlib.py's text without its module docstring (the script has its own header)."""
    text = (Path(__file__).resolve().parent / "trainlib.py").read_text()
    tree = ast.parse(text)
    first = tree.body[0]
    if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
        lines = text.splitlines(keepends=True)
        text = "".join(lines[first.end_lineno :]).lstrip("\n")
    return text.rstrip("\n")


def render_train_script(ir: NetworkIR, model_module: str = "model", spec_path: str | Path | None = None) -> str:
    """The text of train.py: trains `model_module`.py's build_model() on CIFAR-format data with ir's recipe."""
    from resdsl.backends.pytorch.templating import template_env

    env = template_env()
    recipe = ir.recipe.to_json()
    spec = Path(spec_path).as_posix() if spec_path else str(ir.span.path if ir.span else ir.name)
    return env.get_template("train_script.py.j2").render(
        spec=spec,
        network=ir.name,
        model_module=model_module,
        trainlib=trainlib_source(),
        recipe=[(k, literal(v)) for k, v in recipe.items()],
    )
