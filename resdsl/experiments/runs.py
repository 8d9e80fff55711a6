"""What a report reads of a run directory: recipe.json (network, depth, params, shortcut, --set values, seed,
data set), summary.json (final test error), metrics.csv (curves) and eval.json (10-crop errors)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from resdsl.diagnostics import InputError, ResdslError
from resdsl.train import rundir


@dataclass
class RunRecord:
    path: Path
    network: str
    spec: str
    dataset: str
    sets: tuple[str, ...]  # the --set values, less the seed
    seed: int
    layers: int
    params: int
    shortcut: str  # the network's option; `none` is a plain net
    rows: list[dict[str, float]]  # metrics.csv
    summary: dict[str, Any] | None  # None while the run has not finished
    evaluation: dict[str, Any] | None  # eval.json

    @property
    def plain(self) -> bool:
        return self.shortcut == "none"

    @property
    def setting(self) -> tuple:
        """What the seeds of one configuration share."""
        return (self.dataset, self.network, self.layers, self.params, self.shortcut, self.sets)


def find_runs(dirs: list[Path]) -> list[Path]:
    """Run directories: each DIR that is one (it holds recipe.json), else those below it (a sweep's runs/)."""
    found: list[Path] = []
    for d in dirs:
        d = Path(d)
        if (d / rundir.RECIPE).exists():
            found.append(d)
            continue
        below = sorted(p.parent for p in d.rglob(rundir.RECIPE) if "tensorboard" not in p.parts)
        if not below:
            raise InputError(f"{d} holds no run directories (no {rundir.RECIPE} in it or below it)")
        found += below
    return list(dict.fromkeys(found))


def _json(path: Path) -> dict[str, Any] | None:
    try:
        value = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as err:
        raise InputError(f"cannot read {path}: {err}") from None
    if not isinstance(value, dict):
        raise InputError(f"{path} is not a JSON object resdsl wrote")
    return value


def read_run(path: Path) -> RunRecord:
    recipe = _json(path / rundir.RECIPE) or {}
    try:
        network, spec, sets = str(recipe["network"]), str(recipe["spec"]), [str(s) for s in recipe.get("sets") or []]
        seed = int(recipe["recipe"]["seed"])
        dataset = str(recipe["dataset"])
        params = int(recipe["model_params"])
    except (KeyError, TypeError, ValueError):
        raise InputError(f"{path / rundir.RECIPE} is not a recipe.json resdsl wrote") from None
    layers, shortcut = recipe.get("model_layers"), recipe.get("model_shortcut")
    if layers is None or shortcut is None:  # a run from before recipe.json recorded them: ask the IR
        layers, shortcut = _from_ir(path, spec, sets)
    rows = rundir.read_metrics(path / rundir.METRICS)
    return RunRecord(
        path=path,
        network=network,
        spec=spec,
        dataset=dataset,
        sets=tuple(s for s in sets if not s.startswith("seed=")),
        seed=seed,
        layers=int(layers),
        params=params,
        shortcut=str(shortcut),
        rows=rows,
        summary=_json(path / rundir.SUMMARY),
        evaluation=_json(path / "eval.json"),
    )


def _from_ir(path: Path, spec: str, sets: list[str]) -> tuple[int, str]:
    from resdsl.ir.pipeline import load_network
    from resdsl.lang.overrides import parse_sets

    try:
        ir = load_network(Path(spec), parse_sets(sets))
    except ResdslError as err:
        raise InputError(
            f"{path}: its recipe.json predates model_layers, and its spec {spec} does not load here to count them "
            f"({str(err).splitlines()[0]})"
        ) from None
    return int(ir.totals.layers), ir.shortcut.value
