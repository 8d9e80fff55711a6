"""Weights, input and output summaries shared by scripts/record_zoo.py (run beside torchvision and
timm, it records the originals) and tests/test_zoo.py (in CI, without them: the generated modules
must give what was recorded).

Every tensor is made from its state_dict key and shape alone (`seeded`): the same key gives the
same values in both places, so the weights never need to be stored. A network's output is kept
as a few numbers (`summary`) that any wrong op, stride, pool or order of modules changes.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from typing import Any

import torch

SEED = "resdsl-zoo-1"  # part of every tensor's hash: change it and record again
BATCH = 2
# Input sizes: small for CI time, odd so that ceil-mode pools (ResNet-D's shortcuts) and paddings
# matter (35: 18, 9, 5, 3, 2 through a ResNet); 67 where VGG's last map must be more than one pixel
# (2x2 into its 7x7 pool) and DenseNet's and ConvNeXt's (/32: 2x2) more than 1x1.
SIZE = 35
SIZES = {"vgg16": 67, "vgg19": 67, "densenet121": 67, "convnext_tiny": 67}
HEAD, PROJECTIONS = 16, 4  # per image: the first HEAD outputs and PROJECTIONS random projections
DIGITS = 7  # significant digits kept


def seeded(name: str, shape: Sequence[int]) -> torch.Tensor:
    """Uniform values in [-1, 1) from a generator seeded by a stable hash (sha256, never Python's
    hash()) of SEED, the name and the shape."""
    digest = hashlib.sha256(f"{SEED}/{name}/{list(shape)}".encode()).digest()
    generator = torch.Generator().manual_seed(int.from_bytes(digest[:8], "little") >> 1)
    return torch.rand(tuple(shape), generator=generator).mul_(2).sub_(1)


def weight(key: str, shape: Sequence[int]) -> torch.Tensor:
    """The tensor of one state_dict entry: conv and fc weights with variance 2/fan_in (He), so
    activations keep their scale; BN scales in [0.5, 1.5), running variances in [0.5, 2) and
    running means in [-0.5, 0.5); biases in [-0.1, 0.1); num_batches_tracked 0."""
    if not shape:  # num_batches_tracked, the only scalar of these networks
        return torch.tensor(0)
    values = seeded(key, shape)
    if len(shape) > 1:
        return values.mul_(math.sqrt(6 / math.prod(shape[1:])))  # U(-a, a) has variance a^2 / 3
    if key.endswith("running_var"):
        return values.mul_(0.75).add_(1.25)
    if key.endswith("running_mean"):
        return values.mul_(0.5)
    if key.endswith("weight"):
        return values.mul_(0.5).add_(1)
    return values.mul_(0.1)


def state_dict(keys_shapes: Sequence[Sequence[Any]]) -> dict[str, torch.Tensor]:
    """A state_dict with these (key, shape) entries, in this order, made by `weight`."""
    return {key: weight(key, shape) for key, shape in keys_shapes}


def probe() -> list[float]:
    """A few values of the rule and of the input: if these change, torch's generator did, not a network."""
    return _rounded(seeded("probe", (4,))) + [_rounded(images(SIZE).abs().sum())[0]]


def input_size(network: str) -> int:
    return SIZES.get(network, SIZE)


def images(size: int) -> torch.Tensor:
    return seeded("input", (BATCH, 3, size, size))


def _rounded(values: torch.Tensor) -> list:
    return [float(f"{v:.{DIGITS}g}") for v in values.double().flatten().tolist()]


def _values(t: torch.Tensor) -> dict[str, Any]:
    t = t.detach().double()
    return {"rms": _rounded(t.pow(2).mean().sqrt())[0], "head": _rounded(t.flatten()[:HEAD])}


def summary(out: torch.Tensor) -> dict[str, Any]:
    """What is kept of a (batch, n) output: its rms, each image's first HEAD values and its
    projections on PROJECTIONS random unit vectors (which every one of the n values moves)."""
    out = out.detach().double()
    directions = seeded("projections", (out.shape[1], PROJECTIONS)).double()
    directions /= directions.norm(dim=0)
    return {
        "shape": list(out.shape),
        "rms": _rounded(out.pow(2).mean().sqrt())[0],
        "head": _rounded(out[:, :HEAD]),
        "projections": _rounded(out @ directions),
    }


def record(model: torch.nn.Module, size: int) -> dict[str, Any]:
    """Summaries of the eval-mode output, of the train-mode output (batch statistics; dropout and
    stochastic depth with torch's generator seeded) and of the gradients a fixed loss on it sends back to the input and
    to the first parameter (the stem's conv), which every layer's backward reaches, for
    `images(size)`. Other weights get no gradient: that half of the backward is skipped. The
    model's BN running statistics change (train mode)."""
    x = images(size)
    model.eval()
    with torch.no_grad():
        evaluated = model(x)
    model.train()
    x.requires_grad_(True)
    with torch.random.fork_rng(devices=[]):  # the dropout masks, leaving the global generator as it was
        torch.manual_seed(0)
        trained = model(x)
    first = next(model.parameters())
    loss = (trained * seeded("loss", trained.shape)).sum()
    to_first, to_input = torch.autograd.grad(loss, [first, x])
    return {
        "eval": summary(evaluated),
        "train": summary(trained),
        "grad": {"first": _values(to_first), "input": _values(to_input)},
    }


def weights_fingerprint(weights: dict[str, torch.Tensor]) -> float:
    """The sum of |w| over every tensor: tells a changed weight rule (or generator) from a wrong network."""
    return _rounded(torch.stack([w.double().abs().sum() for w in weights.values()]).sum())[0]


# Train mode normalises each BN by the statistics of a batch of 2 (a few values per channel in the
# last stages), which amplifies float rounding: the summation order of another thread count or CPU
# moves deep nets' train outputs by up to ~1e-3 and their gradients by up to ~3% of their rms
# (measured: resnet101/152, resnext101, densenet121 with 1 thread against a 2-thread recording). Eval
# mode is exact to float rounding. A wrong network differs by the scale itself (~1) in all three.
TRAIN_FACTOR = 100  # train mode's tolerance: this many times eval's
GRAD_FACTOR = 1000  # the gradients'


def differences(recorded: dict[str, Any], got: dict[str, Any], tolerance: float) -> list[str]:
    """The numbers of `got` (from `record`) that differ from `recorded` by more than `tolerance`
    relative to their scale (the output's rms, a projection's |output row|, a gradient's rms); train
    mode and the gradients by TRAIN_FACTOR and GRAD_FACTOR times it."""
    problems = []
    for mode in ("eval", "train"):
        rec, new = recorded[mode], got[mode]
        if new["shape"] != rec["shape"]:
            problems.append(f"{mode}: output of shape {new['shape']}, recorded {rec['shape']}")
            continue
        rms = rec["rms"]
        row_norm = rms * math.sqrt(rec["shape"][1])  # a projection's scale: an image's |output|
        checks = [
            ("rms", [rms], [new["rms"]], rms),
            ("head", rec["head"], new["head"], rms),
            ("projections", rec["projections"], new["projections"], row_norm),
        ]
        problems += _compare(mode, checks, tolerance * (TRAIN_FACTOR if mode == "train" else 1))
    checks = []
    for to in ("first", "input"):
        rec, new = recorded["grad"][to], got["grad"][to]
        checks += [
            (f"{to} rms", [rec["rms"]], [new["rms"]], rec["rms"]),
            (f"{to} head", rec["head"], new["head"], rec["rms"]),
        ]
    return problems + _compare("grad", checks, tolerance * GRAD_FACTOR)


def _compare(mode: str, checks: list, tolerance: float) -> list[str]:
    problems = []
    for name, expected, actual, scale in checks:
        if len(expected) != len(actual):
            problems.append(f"{mode} {name}: {len(actual)} values, {len(expected)} recorded")
            continue
        for i, (a, b) in enumerate(zip(actual, expected)):
            if not abs(a - b) <= tolerance * (abs(scale) + abs(b)):
                problems.append(f"{mode} {name}[{i}]: {a:.{DIGITS}g}, recorded {b:.{DIGITS}g}")
    return problems
