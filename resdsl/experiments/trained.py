"""A trained run, opened for analysis: `train.trained.open_trained`'s run (the IR rebuilt from the spec and --set
values it was trained with, its fingerprint checked) with its model on a device in eval mode, the normaliser it
was trained with, and its test set. Shared by `resdsl responses` and `resdsl maps`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from resdsl.diagnostics import InputError

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
    """The run in directory `path` (or its checkpoint.pt), ready to evaluate: opened by `train.trained` (its
    spec checked against the network it trained), the model on `device` in eval mode, and its normaliser."""
    from resdsl.train.dist import Dist, pick_device
    from resdsl.train.trained import open_trained

    trained = open_trained(path, doing="analysing it")
    model = trained.build()
    dev = pick_device(device, Dist())
    model = model.to(dev).eval()
    norm = trained.normalize
    if norm is None:  # checkpoints before the normaliser was saved: recomputed from the training images
        mean, std = _normalizer(trained.recipe, trained.ir)
    else:
        mean, std = norm["mean"].float(), norm["std"].float()
    return Run(trained.path, trained.recipe, trained.ir, model, mean.to(dev), std.to(dev), dev)


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
