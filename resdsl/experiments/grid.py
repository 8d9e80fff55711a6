"""A sweep's grid: `--grid n=3,5,7 --grid shortcut=A,none` and `--seeds S` -> the points, each a set of
`--set` values with a readable run name (`n=3,shortcut=A,seed=0`). No torch, no Optuna."""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass

from resdsl.diagnostics import UsageError

SEED = "seed"  # the grid's seed axis: the recipe's `seed` field, set with --set seed=N
MAX_POINTS = 10_000  # points of one sweep: checked from the axes' lengths before any list of points is made
NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
VALUE_RE = re.compile(r"^[A-Za-z0-9_.+\-x\"\[\] ]+$")  # what a run directory's name may hold (no / nor =)


@dataclass(frozen=True)
class Point:
    """One combination: the grid's values by name, in the grid's order (the seed last)."""

    values: tuple[tuple[str, str], ...]

    @property
    def name(self) -> str:
        return ",".join(f"{k}={v}" for k, v in self.values)

    @property
    def params(self) -> dict[str, str]:
        return dict(self.values)

    def sets(self) -> list[str]:
        """The `--set` values of this point."""
        return [f"{k}={v}" for k, v in self.values]


def split_values(text: str) -> list[str]:
    """`3,5,7` -> ['3', '5', '7']; commas inside brackets stay (`milestones=[100,150],[200,300]`)."""
    values, depth, current = [], 0, ""
    for ch in text:
        depth += {"[": 1, "]": -1}.get(ch, 0)
        if ch == "," and depth == 0:
            values.append(current.strip())
            current = ""
        else:
            current += ch
    values.append(current.strip())
    return values


def parse_grid(grids: tuple[str, ...] | list[str], seeds: int) -> dict[str, list[str]]:
    """The grid's axes in the order given, each a list of values as typed; the seed axis (0..seeds-1) last
    unless `--grid seed=...` names the seeds itself."""
    axes: dict[str, list[str]] = {}
    for text in grids:
        name, sep, rest = text.partition("=")
        name = name.strip()
        if not sep or not NAME_RE.match(name):
            raise UsageError(f"--grid takes NAME=V1,V2,..., got `{text}`")
        if name in axes:
            raise UsageError(f"--grid {name} is given twice; list all its values in one --grid {name}=...")
        values = split_values(rest)
        bad = next((v for v in values if not v or not VALUE_RE.match(v)), None)
        if bad is not None:
            what = "an empty value" if not bad else f"the value `{bad}`"
            raise UsageError(f"--grid {text}: {what} cannot name a run directory; use letters, digits and . _ - +")
        if len(set(values)) != len(values):
            raise UsageError(f"--grid {text}: a value is listed twice")
        axes[name] = values
    if SEED in axes:
        if seeds != 1:
            raise UsageError("--seeds and --grid seed=... both give the seeds; use one of them")
        if not all(v.isdigit() for v in axes[SEED]):
            raise UsageError(f"--grid seed={','.join(axes[SEED])}: seeds are whole numbers >= 0")
        axes[SEED] = axes.pop(SEED)  # the seed axis last, so that run names group by setting
        check_size({k: len(v) for k, v in axes.items()})
    else:
        check_size({**{k: len(v) for k, v in axes.items()}, SEED: seeds})
        axes[SEED] = [str(s) for s in range(seeds)]
    return axes


def check_size(lengths: dict[str, int], where: str = "") -> None:
    """Refuse a grid of more than MAX_POINTS points, from its axes' lengths (nothing allocated yet)."""
    total = 1
    for n in lengths.values():
        total *= n
    if total > MAX_POINTS:
        sizes = " x ".join(f"{k} {n:,}" for k, n in lengths.items())
        raise UsageError(
            f"{where}the grid has {total:,} points ({sizes}), more than the limit of {MAX_POINTS:,}; "
            f"split it into several sweeps"
        )


def points(axes: dict[str, list[str]]) -> list[Point]:
    """Every combination, the last axis varying fastest."""
    names = list(axes)
    return [Point(tuple(zip(names, combo))) for combo in itertools.product(*(axes[n] for n in names))]


def describe(axes: dict[str, list[str]]) -> str:
    """`n=3,5 x shortcut=A,none x seed=0,1` (for messages)."""
    return " x ".join(f"{k}={','.join(v)}" for k, v in axes.items())
