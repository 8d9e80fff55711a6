"""Draw resdsl's layers: docs/images/architecture.dot and, where Graphviz's `dot` is installed, .svg.

    .venv/bin/python scripts/architecture_diagram.py

Everything drawn is read from the checkout, so the picture follows the code: the layers and the
forbidden imports from pyproject.toml's [tool.importlinter] contracts, the modules and package data
of each layer from resdsl/, each layer's one-line role from its package docstring, and the
third-party packages it imports (at the top of a module or inside a function) from its source.
Uses the `graphviz` package resdsl itself depends on; without `dot` only the DOT file is written.
"""

from __future__ import annotations

import ast
import sys
import tomllib
from pathlib import Path

import graphviz

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "images" / "architecture"
DATA = ("*.lark", "*.rd", "*.j2")  # package data shown under its layer
FONT = "Helvetica,Arial,sans-serif"
FORBIDDEN = "#b2182b"
PER_ROW = 5


def contracts() -> list[dict]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]


def layer_path(module: str) -> Path:
    """resdsl.ir -> resdsl/ir (a package) or resdsl/diagnostics.py (a module)."""
    path = ROOT.joinpath(*module.split("."))
    return path if path.is_dir() else path.with_suffix(".py")


def modules_of(path: Path) -> list[str]:
    """Module names relative to the layer (`codegen` as `pytorch.codegen`), __init__ left out."""
    if path.is_file():
        return []
    names = []
    for py in sorted(path.rglob("*.py")):
        if py.name != "__init__.py":
            names.append(".".join(py.relative_to(path).with_suffix("").parts))
    return names


def data_of(path: Path) -> list[str]:
    if path.is_file():
        return []
    return sorted(str(f.relative_to(path)) for pattern in DATA for f in path.rglob(pattern))


def role_of(path: Path) -> str:
    source = path / "__init__.py" if path.is_dir() else path
    doc = ast.get_docstring(ast.parse(source.read_text())) or ""
    return doc.split("\n\n")[0].replace("\n", " ")


def third_party(path: Path) -> list[str]:
    """Top-level names of every non-stdlib, non-resdsl import in the layer."""
    found: set[str] = set()
    for py in [path] if path.is_file() else sorted(path.rglob("*.py")):
        for node in ast.walk(ast.parse(py.read_text())):
            if isinstance(node, ast.Import):
                found.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.add(node.module.split(".")[0])
    return sorted(n for n in found if n != "resdsl" and n not in sys.stdlib_module_names and n != "__future__")


def port(name: str) -> str:
    return name.replace(".", "_")


def esc(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def layer_label(module: str, marked: set[str]) -> str:
    """An HTML-like table: the layer's name and role, its modules (one port each), data, imports."""
    path = layer_path(module)
    rows = [
        f'<tr><td colspan="{PER_ROW}" align="left"><b>{esc(module)}</b>   '
        f'<font point-size="10">{esc(role_of(path))}</font></td></tr>'
    ]
    cells = []
    for name in modules_of(path):
        colour = f' color="{FORBIDDEN}"' if f"{module}.{name}" in marked else ""
        cells.append(f'<td port="{port(name)}" bgcolor="#f7f7f7"{colour}>{esc(name)}</td>')
    for start in range(0, len(cells), PER_ROW):
        row = cells[start : start + PER_ROW]
        row += ['<td border="0"></td>'] * (PER_ROW - len(row))
        rows.append("<tr>" + "".join(row) + "</tr>")
    extra = []
    if data_of(path):
        extra.append("data: " + ", ".join(data_of(path)))
    if third_party(path):
        extra.append("imports: " + ", ".join(third_party(path)))
    for line in extra:
        rows.append(
            f'<tr><td colspan="{PER_ROW}" align="left"><font point-size="10"><i>{esc(line)}</i></font></td></tr>'
        )
    return '<<table border="1" cellborder="1" cellspacing="2" cellpadding="4">' + "".join(rows) + "</table>>"


def node_of(module: str, layers: list[str]) -> str:
    """`resdsl.lang.syntax` -> the port `lang:syntax`; a layer -> its node; anything else -> itself."""
    for layer in layers:
        if module == layer:
            return port(layer)
        if module.startswith(layer + "."):
            return f"{port(layer)}:{port(module[len(layer) + 1 :])}"
    return module


def build() -> graphviz.Digraph:
    all_contracts = contracts()
    layers = next(c for c in all_contracts if c["type"] == "layers")["layers"]
    forbidden = [c for c in all_contracts if c["type"] == "forbidden"]
    marked = {m for c in forbidden for m in c["forbidden_modules"]}
    g = graphviz.Digraph("architecture", graph_attr={"rankdir": "TB", "nodesep": "0.6", "ranksep": "0.4"})
    g.attr("node", shape="plain", fontname=FONT, fontsize="12")
    g.attr("edge", fontname=FONT, fontsize="10")
    for layer in layers:
        g.node(port(layer), layer_label(layer, marked))
    for upper, lower in zip(layers, layers[1:]):
        g.edge(port(upper), port(lower), label=" may import", color="#525252")
    externals = list(dict.fromkeys(m for c in forbidden for m in c["forbidden_modules"] if node_of(m, layers) == m))
    if externals:
        with g.subgraph() as side:  # beside the middle of the stack
            side.attr(rank="same")
            side.node(port(layers[len(layers) // 2 - 1]))
            side.node(
                "external", "\n".join(externals), shape="box", style="dashed", color=FORBIDDEN, fontcolor=FORBIDDEN
            )
    for number, c in enumerate(forbidden, start=1):
        for source in c["source_modules"]:
            # one edge per target layer (its forbidden modules are outlined in red) or to the external box
            heads = dict.fromkeys(
                "external" if node_of(t, layers) == t else node_of(t, layers).split(":")[0]
                for t in c["forbidden_modules"]
            )
            for head in heads:
                g.edge(
                    node_of(source, layers) + ("" if ":" in node_of(source, layers) else ":e"),
                    head + ("" if head == "external" else ":e"),
                    label=f" {number}",
                    style="dashed",
                    color=FORBIDDEN,
                    fontcolor=FORBIDDEN,
                    constraint="false",
                )
    key = "".join(f"{n}: {c['name']}\\l" for n, c in enumerate(forbidden, start=1))
    g.node(
        "key",
        "solid: the layers contract; a layer imports only layers below it\\l"
        "dashed, red: forbidden imports (indirect ones too); forbidden modules outlined in red\\l" + key,
        shape="note",
        fontsize="10",
        color="#969696",
    )
    g.edge(port(layers[-1]), "key", style="invis")
    return g


def main() -> None:
    g = build()
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.with_suffix(".dot").write_text(g.source)
    print(OUT.with_suffix(".dot").relative_to(ROOT))
    try:
        OUT.with_suffix(".svg").write_bytes(g.pipe(format="svg"))
    except graphviz.ExecutableNotFound:
        print("Graphviz's dot is missing (apt-get install graphviz): wrote the DOT only", file=sys.stderr)
        return
    print(OUT.with_suffix(".svg").relative_to(ROOT))


if __name__ == "__main__":
    main()
