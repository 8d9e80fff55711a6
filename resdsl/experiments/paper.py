"""The paper's reference values (paper_values.json, each table with its citation), looked up by what a run
is: its data set, plain or residual, depth and shortcut option."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any


@dataclass(frozen=True)
class Reference:
    table: str  # "Table 6", "Table 2", "Table 3"
    text: str  # as the paper prints it: "6.43 (6.61±0.16)", "top-1 25.03, top-5 7.76"
    citation: str


@cache
def values() -> dict[str, Any]:
    return json.loads(resources.files("resdsl.experiments").joinpath("paper_values.json").read_text())


def lookup(dataset: str, plain: bool, layers: int, shortcut: str) -> list[Reference]:
    """The paper's values for a network of this kind, [] where the paper gives none."""
    data = values()
    if dataset == "cifar10" and not plain and shortcut == "A":
        t6 = data["cifar10_table6"]
        for row in t6["residual"]:
            if row["layers"] == layers:
                text = f"{row['error']:.2f}"
                if "mean" in row:
                    text += f" ({row['mean']:.2f}±{row['std']:.2f})"
                return [Reference("Table 6", text, t6["citation"])]
        return []
    if dataset != "imagenet":
        return []
    found = []
    for key, name in (("imagenet_table2", "Table 2"), ("imagenet_table3", "Table 3")):
        table = data[key]
        for row in table["rows"]:
            if row["layers"] == layers and row["plain"] == plain and (plain or row["shortcut"] == shortcut):
                text = f"top-1 {row['top1']:.2f}" + (f", top-5 {row['top5']:.2f}" if "top5" in row else "")
                found.append(Reference(name, text, table["citation"]))
    return found
