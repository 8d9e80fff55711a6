"""A trained run, opened: its recipe.json, the network rebuilt from the spec and --set values it records, checked
against the run's network fingerprint, and its model.py with the checkpoint's weights. The one way a run is
opened after training: by `resdsl eval` (train/evaluate.py) and by `resdsl responses` and `resdsl maps`
(experiments/trained.py).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from resdsl.diagnostics import InputError, ResdslError
from resdsl.train import rundir

EDITED_HINT = "put back the spec the run was trained with, or train the edited network as a new run"


@dataclass(frozen=True)
class TrainedRun:
    path: Path  # the run directory
    recipe: dict[str, Any]  # recipe.json: spec, sets, network, dataset, data, recipe, fingerprint
    spec: Path  # the spec it was trained from
    ir: Any  # the checked NetworkIR from `spec` and the run's --set values: the network the run trained
    model_file: Path  # the run's model.py, the code that was trained
    checkpoint: Path
    state: dict[str, Any] | None  # the checkpoint read (checkpoints.load_checkpoint); None when opened without

    @property
    def normalize(self) -> dict[str, Any] | None:
        """The normaliser the run trained with ({"mean", "std"} tensors); None in checkpoints older than it."""
        return self.state.get("normalize") if self.state is not None else None

    def build(self, weights: dict[str, Any] | None = None, source: str | None = None) -> Any:
        """model.py's network (a torch.nn.Module on the CPU, training mode) with the checkpoint's weights, or
        with `weights` read from `source`; InputError naming what does not fit."""
        from resdsl.backends.pytorch.weights import load_weights
        from resdsl.train.checkpoints import import_model

        if weights is None:
            if self.state is None:
                raise ValueError("opened without its checkpoint: pass the weights")
            weights, source = self.state["trainer"]["model"], str(self.checkpoint)
        model = import_model(self.model_file).build_model()
        load_weights(model, weights, source or "the weights", str(self.model_file))
        return model


def open_trained(path: Path, *, with_checkpoint: bool = True, doing: str = "analysing it") -> TrainedRun:
    """The run in directory `path` (or the run of the checkpoint file `path`); InputError for anything that is
    not a checkpointed resdsl run (without `with_checkpoint`: a resdsl run), or whose spec no longer describes
    the network it trained. `doing` ends the message for a run stopped before its first checkpoint."""
    from resdsl.ir.pipeline import load_network
    from resdsl.lang.overrides import parse_sets
    from resdsl.train import fingerprint
    from resdsl.train.checkpoints import load_checkpoint

    path = Path(path)
    if path.is_dir():
        run_dir, ckpt = path, path / rundir.CHECKPOINT
    elif path.is_file():
        run_dir, ckpt = path.parent, path
    else:
        raise InputError(f"{path}: no such run directory")
    recipe = _read_recipe(run_dir)
    if with_checkpoint and not ckpt.is_file():
        raise InputError(
            f"{run_dir} has no {rundir.CHECKPOINT}: the run stopped before its first checkpoint; "
            f"train it (resdsl train --resume {run_dir}) before {doing}"
        )
    spec = Path(recipe["spec"])
    if not spec.is_file():
        raise InputError(
            f"{run_dir / rundir.RECIPE} names the spec {spec}, which is not found from here; "
            f"run the command from the directory the run was trained in"
        )
    try:
        ir = load_network(spec, dict(parse_sets(tuple(recipe.get("sets") or ()))))
    except ResdslError as err:
        raise InputError(f"the spec of {run_dir} does not load any more: {err.render()}") from None
    state = load_checkpoint(ckpt) if with_checkpoint else None
    here = fingerprint.network(ir)
    diff, theirs = _difference(state, recipe, here, ckpt)
    if diff is not None:
        raise InputError(
            f"{spec} no longer describes the network trained in {run_dir}: {diff} "
            f"(the run: {theirs}; here: {fingerprint.summary(here)})\n  hint: {EDITED_HINT}"
        )
    model_file = run_dir / rundir.MODEL
    if not model_file.is_file():
        raise InputError(f"{run_dir} has no {rundir.MODEL}; is it a resdsl run directory?")
    return TrainedRun(run_dir, recipe, spec, ir, model_file, ckpt, state)


def _difference(
    state: dict[str, Any] | None, recipe: dict[str, Any], here: dict[str, Any], ckpt: Path
) -> tuple[str | None, str | None]:
    """(the first difference, the run's network in brief) between the run's fingerprint and `here`: the
    checkpoint's, else recipe.json's digest; a checkpoint from before fingerprints compares name, params,
    FLOPs and layers; a run that records none is not checked."""
    from resdsl.train import fingerprint
    from resdsl.train.checkpoints import FORMAT

    try:
        if state is not None and state["format"] == FORMAT:
            return fingerprint.difference(state["network"], here), fingerprint.summary(state["network"])
        if state is not None:
            old = state["spec"]
            theirs = f"{old['name']}, {old['layers']} layers, {old['params']:,} params"
            return fingerprint.legacy_difference(old, here), theirs
    except (KeyError, TypeError, AttributeError, ValueError):
        raise InputError(f"{ckpt}: its network fingerprint is unreadable; it cannot be checked") from None
    stored = recipe.get("fingerprint")
    if not isinstance(stored, dict) or stored.get("network") in (None, here["digest"]):
        return None, None
    return "another network fingerprint", stored.get("summary")


def _read_recipe(run_dir: Path) -> dict[str, Any]:
    where = run_dir / rundir.RECIPE
    try:
        recipe = json.loads(where.read_text())
    except FileNotFoundError:
        raise InputError(f"{run_dir} is not a resdsl run directory (no {rundir.RECIPE})") from None
    except (OSError, ValueError) as err:
        raise InputError(f"cannot read {where}: {err}") from None
    if not isinstance(recipe, dict) or not isinstance(recipe.get("spec"), str):
        raise InputError(f"{where} is not a recipe.json written by resdsl train (no `spec`)")
    return recipe
