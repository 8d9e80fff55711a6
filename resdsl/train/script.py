"""A standalone train.py for a generated model.py: the training core's source (`datafiles`, `trainlib`) and the
resolved recipe, nothing of resdsl."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

from resdsl.backends.pytorch.pyexpr import literal
from resdsl.ir.graph import NetworkIR

CORE = ("../files.py", "datafiles.py", "trainlib.py")  # torch and the standard library only; in this order


def _imports_and_body(text: str) -> tuple[list[ast.stmt], str]:
    """A module's top-level imports, and its text after them (its docstring and imports dropped)."""
    tree = ast.parse(text)
    imports = []
    end = 0
    for node in tree.body:
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
            end = node.end_lineno
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            if not (isinstance(node, ast.ImportFrom) and (node.module or "").startswith("resdsl")):
                imports.append(node)  # resdsl's own modules are embedded, not imported
            end = node.end_lineno
        else:
            break
    lines = text.splitlines(keepends=True)
    return imports, "".join(lines[end:]).strip("\n")


def _import_block(imports: list[ast.stmt]) -> str:
    """The modules' imports merged, in isort's order: __future__, the standard library, then torch and numpy;
    `import x` before `from x import y` within each group."""
    plain: set[tuple[str, str | None]] = set()
    names: dict[str, set[tuple[str, str | None]]] = {}
    for node in imports:
        if isinstance(node, ast.Import):
            plain.update((a.name, a.asname) for a in node.names)
        else:
            names.setdefault(node.module or "", set()).update((a.name, a.asname) for a in node.names)

    def group(module: str) -> int:
        top = module.split(".")[0]
        return 0 if top == "__future__" else 1 if top in sys.stdlib_module_names else 2

    def alias(name: str, asname: str | None) -> str:
        return f"{name} as {asname}" if asname else name

    def order(item: tuple[str, str | None]) -> tuple[int, str]:  # isort: CONSTANTS, Classes, then the rest
        name = item[0]
        return (0 if name.isupper() else 1 if name[:1].isupper() else 2, name)

    blocks = []
    for g in (0, 1, 2):
        lines = [f"import {alias(*a)}" for a in sorted(plain) if group(a[0]) == g]
        for module in sorted(m for m in names if group(m) == g):
            lines.append(f"from {module} import " + ", ".join(alias(*a) for a in sorted(names[module], key=order)))
        if lines:
            blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def core_source() -> str:
    """The training core as one module's text: its modules' merged imports, then their bodies."""
    imports: list[ast.stmt] = []
    bodies = []
    for name in CORE:
        found, body = _imports_and_body((Path(__file__).resolve().parent / name).read_text())
        imports += found
        bodies.append(body)
    gap = "\n\n\n" if bodies[0].startswith(("class ", "def ", "@")) else "\n\n"  # as ruff format spaces them
    return _import_block(imports) + gap + "\n\n\n".join(bodies)


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
        trainlib=core_source(),
        recipe=[(k, literal(v)) for k, v in recipe.items()],
    )
