"""The package's shape: every module imports on its own (no import cycles), and the layers
contract of pyproject.toml (cli -> experiments -> train -> backends -> ir -> lang -> diagnostics) holds."""

from __future__ import annotations

import pkgutil
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import resdsl

ROOT = Path(__file__).resolve().parent.parent


def all_modules() -> list[str]:
    names = ["resdsl"]
    for info in pkgutil.walk_packages(resdsl.__path__, prefix="resdsl."):
        if info.name != "resdsl.__main__":
            names.append(info.name)
    return sorted(names)


def test_the_package_has_its_layers() -> None:
    modules = set(all_modules())
    for package in (
        "resdsl.lang",
        "resdsl.ir",
        "resdsl.backends",
        "resdsl.backends.pytorch",
        "resdsl.train",
        "resdsl.experiments",
        "resdsl.lsp",
        "resdsl.serve",
        "resdsl.cli",
    ):
        assert package in modules


def test_every_module_imports_first_in_a_fresh_interpreter() -> None:
    """Each module is imported with no resdsl module loaded before it: a cycle shows as an ImportError."""
    probe = (
        "import importlib, sys\n"
        "failed = []\n"
        "for name in sys.argv[1:]:\n"
        "    for loaded in [m for m in sys.modules if m == 'resdsl' or m.startswith('resdsl.')]:\n"
        "        del sys.modules[loaded]\n"
        "    try:\n"
        "        importlib.import_module(name)\n"
        "    except Exception as err:\n"
        "        failed.append(f'{name}: {type(err).__name__}: {err}')\n"
        "print('\\n'.join(failed))\n"
        "sys.exit(1 if failed else 0)\n"
    )
    proc = subprocess.run([sys.executable, "-c", probe, *all_modules()], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def _imports_of_every_module() -> dict[str, set[str]]:
    """resdsl module -> the resdsl modules it imports anywhere: at the top, inside functions and
    under TYPE_CHECKING (a package's own submodules importing it are not counted)."""
    import ast

    root = Path(resdsl.__file__).parent
    modules = {}
    for path in root.rglob("*.py"):
        parts = path.relative_to(root.parent).with_suffix("").parts
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(up + ([base] if base else []))
                targets = [base] + [f"{base}.{a.name}" for a in node.names]
            else:
                continue
            for target in targets:
                while target and target not in modules:
                    target = target.rpartition(".")[0]
                if target and target != name and not name.startswith(target + "."):
                    graph[name].add(target)
    return graph


def test_no_import_cycle_among_the_modules() -> None:
    """Function-level and TYPE_CHECKING imports included: the code generator's writers take a
    protocol (backends/pytorch/context.py), the op kinds live apart from the graph (ir/ops.py)."""
    import networkx as nx

    graph = nx.DiGraph([(a, b) for a, targets in _imports_of_every_module().items() for b in targets])
    assert graph.number_of_edges() > 100  # the walk found the imports
    assert sorted(" -> ".join(c) for c in nx.simple_cycles(graph)) == []


def test_import_linter_contracts_hold() -> None:
    lint = shutil.which("lint-imports", path=str(Path(sys.executable).parent)) or shutil.which("lint-imports")
    if lint is None:
        pytest.skip("import-linter is not installed (pip install -e '.[dev]')")
    proc = subprocess.run([lint], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]


def test_the_contracts_can_fail(tmp_path: Path) -> None:
    """A module of a lower layer importing a higher one breaks the layers contract."""
    lint = shutil.which("lint-imports", path=str(Path(sys.executable).parent)) or shutil.which("lint-imports")
    if lint is None:
        pytest.skip("import-linter is not installed")
    copy = tmp_path / "repo"
    shutil.copytree(ROOT / "resdsl", copy / "resdsl", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", copy / "pyproject.toml")
    bad = copy / "resdsl" / "lang" / "values.py"
    bad.write_text(bad.read_text() + "\nfrom resdsl.cli import main  # noqa: E402\n")
    proc = subprocess.run(
        [lint], cwd=copy, capture_output=True, text=True, timeout=300, env={"PYTHONPATH": str(copy), "PATH": ""}
    )
    assert proc.returncode != 0
    assert "resdsl.lang is not allowed to import resdsl.cli" in proc.stdout


def test_every_module_is_named_in_the_architecture_doc() -> None:
    """docs/architecture.md names every module of the package (`paths.py`, `stagetable.py`, ...)."""
    doc = (ROOT / "docs" / "architecture.md").read_text()
    modules = sorted(p for p in (ROOT / "resdsl").rglob("*.py") if p.name not in ("__init__.py", "__main__.py"))
    assert len(modules) > 80
    assert [str(p.relative_to(ROOT)) for p in modules if f"{p.name}" not in doc] == []


BLOCK_PATH = ("resdsl/ir/expand.py", "resdsl/ir/binding.py")  # lowering's block path: templates only


def test_the_block_lowering_never_reads_the_syntax_tree() -> None:
    """ir/template.py's contract: a block's uses are expanded from its template. The modules of the
    block path import nothing that reaches a block's syntax (the syntax tree, the parser, the merged
    program) and name none of syntax.py's own classes (BlockDef, Stmt, OpStmt, Formal, ...); the
    expression nodes a template holds (lang/expr.py) are theirs to read."""
    import ast

    from resdsl.lang import expr, syntax

    syntax_own = {
        name
        for name, value in vars(syntax).items()
        if isinstance(value, type) and value.__module__ == syntax.__name__ and name not in vars(expr)
    }
    assert {"BlockDef", "Stmt", "OpStmt", "InvokeStmt", "SectionStmt", "IfStmt", "Formal"} <= syntax_own
    forbidden = {"resdsl.lang.syntax", "resdsl.lang.parser", "resdsl.lang.imports"}
    for relative in BLOCK_PATH:
        tree = ast.parse((ROOT / relative).read_text(encoding="utf-8"))
        imported: set[str] = set()
        used: set[str] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                imported |= {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom):
                imported |= {node.module or ""} | {f"{node.module}.{a.name}" for a in node.names}
                used |= {a.name for a in node.names}
            elif isinstance(node, ast.Name):
                used.add(node.id)
            elif isinstance(node, ast.Attribute):
                used.add(node.attr)
        assert not imported & forbidden, (relative, imported & forbidden)
        assert not used & (syntax_own | {"syntax", "program", "Program"}), (relative, used & syntax_own)


def test_the_network_lowering_reaches_blocks_through_templates() -> None:
    """ir/lower.py reads the network's own syntax, but a block only through `Templates`: it never
    names a BlockDef, its formals or the program's blocks."""
    import ast

    tree = ast.parse((ROOT / "resdsl/ir/lower.py").read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            assert node.attr not in ("BlockDef", "formals"), ast.unparse(node)
            if node.attr == "blocks":
                owner = node.value.attr if isinstance(node.value, ast.Attribute) else getattr(node.value, "id", "")
                assert owner != "program", ast.unparse(node)
