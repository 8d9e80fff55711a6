"""A trained run, opened for analysis: its checked IR (from the spec and --set values it was trained with),
its generated model with the checkpoint's weights in eval mode, the normaliser it was trained with, and its
test set. Shared by `resdsl responses` and `resdsl maps`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from resdsl.diagnostics import InputError, ResdslError
from resdsl.train import rundir

IN_MEMORY = (
    "cifar10",
    "cifar100",
    "npz",
    "digits",
    "mnist",
    "svhn",
    "synthetic",
)  # data sets whose test images fit in memory


@dataclass
class Run:
    path: Path
    recipe: dict[str, Any]  # recipe.json: spec, sets, network, dataset, data, recipe
    ir: Any  # the checked NetworkIR
    model: Any  # torch.nn.Module, eval mode, on `device`
    mean: Any  # normaliser: images in [0, 1] minus mean, divided by std (C x H x W tensors on `device`)
    std: Any
    device: Any

    @property
    def label(self) -> str:
        """`plain20 (cifar_resnet20 n=3 shortcut=none)`: the directory's name and the network it trained (the
        --set values of params and network settings; those of recipe fields are left out)."""
        from resdsl.lang.recipe import FIELDS

        sets = " ".join(s for s in self.recipe.get("sets") or [] if s.split("=")[0].strip() not in FIELDS)
        return f"{self.path.name} ({self.ir.name}{' ' + sets if sets else ''})"


def open_run(path: Path, device: str | None = None) -> Run:
    """The run in directory `path` (or its checkpoint.pt), ready to evaluate; InputError for anything that is not
    a finished or checkpointed resdsl run, or whose spec no longer describes the network it trained."""

    from resdsl.ir.pipeline import load_network
    from resdsl.lang.overrides import parse_sets
    from resdsl.train import fingerprint
    from resdsl.train.checkpoints import FORMAT, import_model, load_checkpoint
    from resdsl.train.dist import Dist, pick_device

    path = Path(path)
    run_dir = path.parent if path.name == rundir.CHECKPOINT else path
    if not run_dir.is_dir():
        raise InputError(f"{path}: no such run directory")
    recipe = _read_recipe(run_dir)
    ckpt = run_dir / rundir.CHECKPOINT
    if not ckpt.is_file():
        raise InputError(
            f"{run_dir} has no {rundir.CHECKPOINT}: the run stopped before its first checkpoint; "
            f"train it (resdsl train --resume {run_dir}) before analysing it"
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
    state = load_checkpoint(ckpt)
    if state.get("format") == FORMAT:
        diff = fingerprint.difference(state["network"], fingerprint.network(ir))
        if diff is not None:
            raise InputError(f"{spec} no longer describes the network trained in {run_dir}: {diff}")
    model_file = run_dir / rundir.MODEL
    if not model_file.is_file():
        raise InputError(f"{run_dir} has no {rundir.MODEL}; is it a resdsl run directory?")
    model = import_model(model_file).build_model()
    try:
        model.load_state_dict(state["trainer"]["model"])
    except (RuntimeError, KeyError) as err:
        raise InputError(f"{ckpt} does not fit {model_file}: {str(err).splitlines()[0]}") from None
    dev = pick_device(device, Dist())
    model = model.to(dev).eval()
    norm = state.get("normalize")
    if norm is None:  # checkpoints before the normaliser was saved: recomputed from the training images
        mean, std = _normalizer(recipe, ir)
    else:
        mean, std = norm["mean"].float(), norm["std"].float()
    return Run(run_dir, recipe, ir, model, mean.to(dev), std.to(dev), dev)


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


def held_out(run: Run, dataset: str | None = None, data: Path | None = None) -> tuple[Any, Any]:
    """The test images (uint8 N x C x H x W) and labels of the run's data set, or of `dataset` / `data`."""
    from resdsl.train import data as datasets

    name = dataset or run.recipe.get("dataset") or run.ir.recipe.dataset
    if data is None and dataset is None and run.recipe.get("data"):
        data = Path(run.recipe["data"])
    if name not in IN_MEMORY:
        raise InputError(
            f"{name} is read image by image while training; analysing a run needs a data set held in memory "
            f"({', '.join(IN_MEMORY)}): pass --dataset and --data"
        )
    loaded = datasets.load(name, data, tuple(run.ir.input_shape), run.ir.classes, quiet=True)
    return loaded["x_test"], loaded["y_test"]


def batches(run: Run, x, batch: int) -> Iterator[Any]:
    """The images normalised as in training, `batch` at a time, on the run's device."""
    for chunk in x.split(batch):
        yield (chunk.to(run.device).float() / 255.0 - run.mean) / run.std


def _normalizer(recipe: dict[str, Any], ir) -> tuple[Any, Any]:
    from resdsl.train import data as datasets
    from resdsl.train.trainlib import normalizer

    cfg = recipe.get("recipe") or {}
    name = recipe.get("dataset") or ir.recipe.dataset
    if name not in IN_MEMORY:
        raise InputError(f"{name}: the checkpoint holds no normaliser; analysing needs a data set held in memory")
    data = datasets.load(name, Path(recipe["data"]) if recipe.get("data") else None, tuple(ir.input_shape),
                         ir.classes, quiet=True)  # fmt: skip
    val = int(cfg.get("val") or 0)
    if val and val * 2 <= data["x_train"].shape[0]:
        data = datasets.split_val(data, val)
    return normalizer(data["x_train"], cfg.get("normalize", ir.recipe.normalize))
