"""`resdsl responses`: the standard deviation of each 3x3 layer's response over the test set (He et al. 2015,
Sec. 4.2 and Fig. 7: "the responses are the outputs of each 3x3 layer, after BN and before other
nonlinearity (ReLU/addition)").

Which layers: from the IR, every conv op with a 3x3 kernel, in network order. Its response is the output of
the BN op that consumes it (its only consumer); a 3x3 conv without a BN after it (NIN's convs with bias, the
last conv of a pre-activation block) is measured at its own output, still before any ReLU or addition. The
module that computes that op in the trained model comes from the code generator's record of where it put
each op (decided in the IR: resdsl.ir.paths), never from guessing module names.

The statistic: for each channel, the standard deviation of its values over all test images and all
spatial positions (population std, accumulated in float64 batch by batch with Chan et al.'s pairwise
update); a layer's std is the mean of its channels' stds. The paper does not say how channels are combined;
this is the common reproduction. The model runs in eval mode (BN uses its running statistics), no_grad.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from resdsl.diagnostics import InputError
from resdsl.ir.graph import NetworkIR, OpKind

DEFINITION = (
    "std over the test set of each 3x3 layer's output after BN, before ReLU/addition: per channel over images "
    "and positions (population std), averaged over channels"
)


@dataclass(frozen=True)
class ResponseLayer:
    index: int  # 1-based, network order
    conv: int  # IR op id of the 3x3 conv
    op: int  # IR op id whose output is the response: the BN after the conv, else the conv
    after: str  # "bn" | "conv"
    where: str  # `stem`, `conv3 block 2`, `head`
    shape: tuple[int, ...]  # C x H x W


def response_layers(ir: NetworkIR) -> list[ResponseLayer]:
    """The 3x3 layers of a checked IR, in network order, each with the op whose output is its response."""
    out: list[ResponseLayer] = []
    for op in ir.ops():
        if op.kind is not OpKind.CONV or tuple(op.attrs["kernel"]) != (3, 3):
            continue
        users = list(ir.graph.successors(op.id))
        measured = ir.op(users[0]) if len(users) == 1 and ir.op(users[0]).kind is OpKind.BN else op
        where = op.scope.section + (f" block {op.scope.block + 1}" if op.scope.block is not None else "")
        out.append(ResponseLayer(len(out) + 1, op.id, measured.id, measured.kind.value, where, tuple(measured.shape)))
    return out


@dataclass
class LayerResponse:
    layer: ResponseLayer
    module: str  # the hooked module's path in the model
    std: float


@dataclass
class RunResponses:
    run: str
    label: str
    network: str
    dataset: str
    images: int
    layers: list[LayerResponse]

    @property
    def stds(self) -> list[float]:
        return [r.std for r in self.layers]

    def to_json(self) -> dict[str, Any]:
        return {
            "run": self.run,
            "label": self.label,
            "network": self.network,
            "dataset": self.dataset,
            "test_images": self.images,
            "layers": [
                {**asdict(r.layer), "shape": list(r.layer.shape), "module": r.module, "std": r.std} for r in self.layers
            ],
            "sorted": sorted(self.stds, reverse=True),
        }


class _Moments:
    """Per-channel count, mean and sum of squared deviations, merged batch by batch (Chan et al. 1979)."""

    def __init__(self) -> None:
        self.n = 0
        self.mean = None
        self.m2 = None
        self.calls = 0

    def add(self, y) -> None:
        values = y.detach().transpose(0, 1).reshape(y.shape[1], -1).double()  # C x (N*H*W)
        n_b = values.shape[1]
        mean_b = values.mean(1)
        m2_b = ((values - mean_b[:, None]) ** 2).sum(1)
        self.calls += 1
        if self.mean is None:
            self.n, self.mean, self.m2 = n_b, mean_b, m2_b
            return
        n = self.n + n_b
        delta = mean_b - self.mean
        self.mean = self.mean + delta * (n_b / n)
        self.m2 = self.m2 + m2_b + delta**2 * (self.n * n_b / n)
        self.n = n

    def std(self) -> float:
        return float((self.m2 / self.n).sqrt().mean())


def measure(run, x, batch: int = 500) -> list[LayerResponse]:
    """The response std of every 3x3 layer of an opened run (experiments.trained.Run) over the images `x`."""
    import torch

    from resdsl.experiments.trained import batches
    from resdsl.ir.paths import module_paths

    layers = response_layers(run.ir)
    if not layers:
        raise InputError(f"{run.ir.name} has no 3x3 convolutions: there is no layer response to measure")
    paths = module_paths(run.ir)
    moments = [_Moments() for _ in layers]
    handles = []
    try:
        for layer, m in zip(layers, moments):
            module = _module(run, paths[layer.op])
            handles.append(module.register_forward_hook(_recorder(run, layer, paths[layer.op], m)))
        with torch.no_grad():
            for chunk in batches(run, x, batch):
                run.model(chunk)
    finally:
        for h in handles:
            h.remove()
    batches_run = -(-int(x.shape[0]) // batch)
    for layer, m in zip(layers, moments):
        if m.calls != batches_run:
            raise InputError(
                f"{run.path / 'model.py'}: module {paths[layer.op]} ran {m.calls} times for {batches_run} batches; "
                f"the model does not follow its spec (was model.py edited?)"
            )
    return [LayerResponse(layer, paths[layer.op], m.std()) for layer, m in zip(layers, moments)]


def _module(run, path: str):
    try:
        return run.model.get_submodule(path)
    except AttributeError:
        raise InputError(
            f"{run.path / 'model.py'} has no module {path}, where the spec puts one (was model.py edited?)"
        ) from None


def _recorder(run, layer: ResponseLayer, path: str, moments: _Moments):
    def hook(module, inputs, output) -> None:
        if tuple(output.shape[1:]) != layer.shape:
            raise InputError(
                f"{run.path / 'model.py'}: module {path} gives {'x'.join(map(str, output.shape[1:]))} where the "
                f"spec's op gives {'x'.join(map(str, layer.shape))} (was model.py edited?)"
            )
        moments.add(output)

    return hook


def responses(
    paths: list[Path], dataset: str | None = None, data: Path | None = None, batch: int = 500, device=None
) -> list[RunResponses]:
    """Open each run, load its test set, measure."""
    from resdsl.experiments.trained import held_out, open_run

    out = []
    for path in paths:
        run = open_run(path, device)
        x, _ = held_out(run, dataset, data)
        name = dataset or run.recipe.get("dataset") or run.ir.recipe.dataset
        out.append(RunResponses(str(path), run.label, run.ir.name, name, int(x.shape[0]), measure(run, x, batch)))
    return out


# ---------------------------------------------------------------------------------------- output


def table(result: RunResponses) -> str:
    """One run's layers: index, where, module, channels, std."""
    rows = [(str(r.layer.index), r.layer.where, r.module, r.layer.after, f"{r.std:.4f}") for r in result.layers]
    head = ("layer", "where", "module", "after", "std")
    widths = [max(len(h), *(len(row[k]) for row in rows)) for k, h in enumerate(head)]
    right = (True, False, False, False, True)

    def line(cells) -> str:
        return "  ".join(c.rjust(w) if r else c.ljust(w) for c, w, r in zip(cells, widths, right)).rstrip()

    sorted_stds = ", ".join(f"{s:.3f}" for s in sorted(result.stds, reverse=True))
    return "\n".join(
        [
            f"{result.label}: {len(result.layers)} 3x3 layers, {result.dataset} test set ({result.images} images)",
            line(head),
            line(["-" * w for w in widths]),
            *(line(row) for row in rows),
            f"sorted (descending): {sorted_stds}",
        ]
    )


def figure(results: list[RunResponses]):
    """Fig. 7: the std of each layer in network order (top) and sorted by magnitude, descending (bottom)."""
    from resdsl.experiments.figures import pyplot

    plt = pyplot()
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(7, 6.5))
    for i, result in enumerate(results):
        stds = result.stds
        style = {"color": f"C{i % 10}", "marker": "o", "markersize": 3, "linewidth": 1.2, "label": result.label}
        top.plot(range(1, len(stds) + 1), stds, **style)
        bottom.plot(range(1, len(stds) + 1), sorted(stds, reverse=True), **style)
    top.set_xlabel("layer index (original)")
    bottom.set_xlabel("layer index (sorted by magnitude)")
    for ax in (top, bottom):
        ax.set_ylabel("std")
        ax.grid(True, alpha=0.3)
    top.legend(fontsize=8)
    top.set_title("std of 3x3 layer responses (after BN, before ReLU/addition)", fontsize=10)
    fig.tight_layout()
    return fig
