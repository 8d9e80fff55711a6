"""`resdsl maps`: the category confidence maps of a network whose head is global average pooling over one
feature map per class (Lin et al. 2013, Network in Network, Sec. 3.2 and Fig. 4): for a few test images, the
image beside the last layer's feature map for each class, the predicted class marked.

The maps are the input of the global average pool, found in the IR: the `avgpool global` op whose input has
`classes` channels and after which no layer with weights follows (so each class's score is the mean of its
map). Its module is the path the IR decided for the pool (resdsl.ir.paths).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import networkx as nx

from resdsl.diagnostics import InputError
from resdsl.ir.graph import WEIGHTED, NetworkIR, Op, OpKind

CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
NEEDS = (
    "maps needs a network whose head is global average pooling over one feature map per class "
    "(as NIN's: the last conv makes `classes` channels, then `avgpool global`)"
)


def class_map_pool(ir: NetworkIR) -> Op:
    """The global average pool whose input holds one map per class; InputError saying what maps needs."""
    pools = [op for op in ir.ops() if op.kind is OpKind.GLOBAL_AVGPOOL]
    if not pools:
        raise InputError(f"{ir.name} has no `avgpool global`: {NEEDS}")
    pool = pools[-1]
    channels = pool.in_shapes[0][0]
    after = [ir.op(n) for n in nx.descendants(ir.graph, pool.id) if ir.op(n).kind in WEIGHTED]
    if channels != ir.classes or after:
        what = f"{ir.name}'s global average pool takes {channels} channels"
        if after:
            kinds = ", ".join(dict.fromkeys(op.kind.value for op in after))
            what += (
                f" and is followed by {len(after)} {'layer' if len(after) == 1 else 'layers'} with weights ({kinds})"
            )
        raise InputError(f"{what}: {NEEDS}")
    return pool


@dataclass
class Maps:
    images: Any  # uint8 N x C x H x W
    labels: Any  # int64 N
    maps: Any  # float N x classes x h x w: the input of the global pool
    predicted: Any  # int64 N: the model's top class
    class_names: list[str]
    label: str  # the run, for the title


def compute(run, x, y, n: int) -> Maps:
    """The class maps and predictions of the first `n` images of `x`."""
    import torch

    from resdsl.experiments.trained import batches
    from resdsl.ir.paths import module_paths

    pool = class_map_pool(run.ir)
    path = module_paths(run.ir)[pool.id]
    try:
        module = run.model.get_submodule(path)
    except AttributeError:
        raise InputError(f"{run.path / 'model.py'} has no module {path}, where the spec puts the global pool") from None
    seen: list[Any] = []
    handle = module.register_forward_hook(
        lambda m, inputs, output: seen.append(inputs[0].detach().float().cpu().clone())
    )
    try:
        with torch.no_grad():
            logits = torch.cat([run.model(chunk).float().cpu() for chunk in batches(run, x[:n], 100)])
    finally:
        handle.remove()
    maps = torch.cat(seen)
    if tuple(maps.shape[1:]) != tuple(pool.in_shapes[0]):
        raise InputError(f"{run.path / 'model.py'}: module {path} does not take the spec's class maps")
    dataset = run.recipe.get("dataset")
    names = (
        list(CIFAR10_CLASSES)
        if dataset == "cifar10" and run.ir.classes == 10
        else [str(c) for c in range(run.ir.classes)]
    )
    return Maps(x[:n], y[:n], maps, logits.argmax(1), names, run.label)


def figure(m: Maps):
    """One row per image: the image (true and predicted class), then the map of every class on one colour
    scale per row; the predicted class's map framed in red."""
    from resdsl.experiments.figures import pyplot

    plt = pyplot()
    n, classes = m.maps.shape[0], m.maps.shape[1]
    fig, axes = plt.subplots(n, classes + 1, figsize=(1.15 * (classes + 1), 1.3 * n + 0.5), squeeze=False)
    for i in range(n):
        image = m.images[i].permute(1, 2, 0).numpy()
        ax = axes[i][0]
        ax.imshow(
            image[..., 0] if image.shape[2] == 1 else image[..., :3], cmap="gray" if image.shape[2] == 1 else None
        )
        truth, guess = int(m.labels[i]), int(m.predicted[i])
        ax.set_title(f"{m.class_names[truth]} -> {m.class_names[guess]}", fontsize=7,
                     color="black" if truth == guess else "red")  # fmt: skip
        row = m.maps[i]
        lo, hi = float(row.min()), float(row.max())
        for c in range(classes):
            ax = axes[i][c + 1]
            ax.imshow(row[c].numpy(), cmap="viridis", vmin=lo, vmax=hi)
            if i == 0:
                ax.set_title(m.class_names[c], fontsize=7)
            if c == guess:
                for spine in ax.spines.values():
                    spine.set_edgecolor("red")
                    spine.set_linewidth(2.5)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(f"class confidence maps (input of the global average pool): {m.label}", fontsize=9)
    fig.tight_layout()
    return fig


def maps(path: Path, images: int, dataset: str | None = None, data: Path | None = None, device=None) -> Maps:
    from resdsl.experiments.trained import held_out, open_run

    run = open_run(path, device)
    class_map_pool(run.ir)  # before loading any data
    x, y = held_out(run, dataset, data)
    if images > x.shape[0]:
        raise InputError(f"--images {images}: the test set has {x.shape[0]} images")
    return compute(run, x, y, images)
