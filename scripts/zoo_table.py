"""Write docs/zoo.md's table from specs/*.rd: each network's title and source (from the spec's
header comment), input, layers, params and FLOPs (from the analysis). tests/test_zoo.py checks
that the committed table is current.

    .venv/bin/python scripts/zoo_table.py
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "zoo.md"
BEGIN, END = "<!-- zoo table: scripts/zoo_table.py -->", "<!-- end of zoo table -->"


def header(path: Path) -> tuple[str, str]:
    """`ResNet-50 for ImageNet`, `He et al. 2015, Table 1`: the title and source of a spec's comment."""
    lines = []
    for line in path.read_text().splitlines():
        if not line.startswith("#"):
            break
        lines.append(line.lstrip("#").strip())
    text = " ".join(lines)
    title, _, rest = text.partition(": ")
    source = re.split(r" \(|(?<!et al)(?<!Sec)(?<!Fig)\. |, as |; | — |: ", rest, maxsplit=1)[0].rstrip(".,")
    while len(source) > 60 and ", " in source:
        source = source.rsplit(", ", 1)[0]
    return title, source


def table() -> str:
    sys.path.insert(0, str(ROOT))
    from resdsl.ir.pipeline import load_network

    rows = ["| spec | network | source | input | layers | params | FLOPs |", "|---|---|---|---|---:|---:|---:|"]
    for path in sorted((ROOT / "specs").glob("*.rd")):
        if path.stem == "std":
            continue
        ir = load_network(path)
        title, source = header(path)
        t = ir.totals
        shape = "x".join(map(str, ir.input_shape))
        rows.append(
            f"| [`{path.name}`](../specs/{path.name}) | {title} | {source} | {shape} | {t.layers} "
            f"| {t.params:,} | {t.flops / 1e9:.2f}G |"
        )
    return "\n".join(rows)


def render(doc: str) -> str:
    start, end = doc.index(BEGIN) + len(BEGIN), doc.index(END)
    return doc[:start] + "\n" + table() + "\n" + doc[end:]


if __name__ == "__main__":
    DOC.write_text(render(DOC.read_text()))
    print(f"wrote {DOC}")
