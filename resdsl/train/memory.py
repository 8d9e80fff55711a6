"""How much memory a run needs, estimated before anything is allocated, and how much the machine (or the GPU)
has.

The network's part (parameters, gradients and momentum; activations for training and for evaluation) is
resdsl.ir.memory's `training_memory`, the one `resdsl info --batch` prints, at the batch of one process; this
module adds the data set, as uint8 images and int64 labels, twice over (it is loaded, then indexed).

A spec that passes `resdsl check` can still need terabytes (a conv with `pad: 100000`, `--set
input=3x65536x65536`, `--set classes=100000000`); `resdsl train` refuses it with the estimate and the limit.
`RESDSL_MEMORY_LIMIT` (bytes, or with a K/M/G/T suffix) replaces the machine's figure.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

from resdsl.diagnostics import InputError, UsageError
from resdsl.ir.memory import FLOAT, training_memory
from resdsl.train.datafiles import fmt_bytes, memory_bytes
from resdsl.train.trainlib import EVAL_BATCH

DATA_IMAGES = {  # (train, test) images of the data sets whose size follows from the network's input
    "cifar10": (50000, 10000),
    "cifar100": (50000, 10000),
    "mnist": (60000, 10000),
    "svhn": (73257, 26032),
    "digits": (1437, 360),
    "synthetic": (5000, 1000),
}
ENV = "RESDSL_MEMORY_LIMIT"


@dataclass
class Estimate:
    params: int  # weights, gradients, momentum
    train: int  # activations of one batch, forward and backward
    evaluation: int
    data: int
    batch: int

    @property
    def total(self) -> int:
        return self.params + max(self.train, self.evaluation) + self.data

    def parts(self) -> str:
        return (
            f"parameters {fmt_bytes(self.params)}, activations of a batch of {self.batch} forward and backward "
            f"{fmt_bytes(self.train)}, evaluation {fmt_bytes(self.evaluation)}, data {fmt_bytes(self.data)}"
        )


def estimate(ir, local_batch: int, pad: int, data_bytes: int, amp: str = "off") -> Estimate:
    """Bytes one training process needs for `ir` at `local_batch` images per step (see the module's docstring);
    under bf16/fp16 autocast activations take 2 bytes an element."""
    net = training_memory(ir, local_batch, pad, amp, EVAL_BATCH)
    return Estimate(net.params, net.train, net.evaluation, data_bytes, local_batch)


def data_bytes(dataset: str, input_shape: tuple[int, ...], npz_arrays: dict | None = None) -> int:
    """The data set in memory: uint8 images and int64 labels, twice (loaded, then indexed); digits also
    resizes float copies."""
    image = math.prod(input_shape)
    if dataset == "npz" and npz_arrays:
        images = sum(nbytes for k, (_, _, nbytes) in npz_arrays.items() if k.startswith("x_"))
        labels = sum(8 * math.prod(shape) for k, (shape, _, _) in npz_arrays.items() if k.startswith("y_"))
        return 2 * (images + labels)
    if dataset not in DATA_IMAGES:
        return 0
    n = sum(DATA_IMAGES[dataset])
    if dataset in ("cifar10", "cifar100", "svhn"):
        image = 3 * 32 * 32  # the files' images, whatever the network takes (a mismatch is an error later)
    elif dataset == "mnist":
        image = 28 * 28
    total = 2 * n * (image + 8)
    if dataset == "digits":  # bilinear resizing in float32 before the uint8 conversion
        total += 2 * FLOAT * n * image
    return total


def parse_limit(text: str) -> int:
    units = {"": 1, "K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12}
    t = text.strip().upper().removesuffix("B")
    unit = t[-1:] if t[-1:] in units and t[-1:] else ""
    number = t[: len(t) - len(unit)] if unit else t
    try:
        value = float(number) * units[unit]
    except ValueError:
        raise UsageError(f"{ENV}={text}: must be a number of bytes, e.g. 64G") from None
    if not math.isfinite(value) or value <= 0:
        raise UsageError(f"{ENV}={text}: must be a positive number of bytes, e.g. 64G")
    return int(value)


def limit(device) -> tuple[int | None, str]:
    """(bytes, what they are) of the memory the run may use: RESDSL_MEMORY_LIMIT, the GPU's, or the machine's."""
    if os.environ.get(ENV):
        return parse_limit(os.environ[ENV]), f"{ENV}={os.environ[ENV]}"
    if device.type == "cuda":
        import torch

        props = torch.cuda.get_device_properties(device)
        return int(props.total_memory), f"the {fmt_bytes(props.total_memory)} of {device} ({props.name})"
    total = memory_bytes()
    return total, f"this machine's {fmt_bytes(total)}" if total else "unknown"


def data_limit() -> int | None:
    """Bytes a data file may unpack to: half of RESDSL_MEMORY_LIMIT if set, else None (half the machine's)."""
    if os.environ.get(ENV):
        return parse_limit(os.environ[ENV]) // 2
    return None


def check(ir, est: Estimate, device, processes: int = 1) -> None:
    """InputError when the estimate exceeds the limit; processes sharing this machine's memory multiply it."""
    available, what = limit(device)
    if available is None:
        return
    need = est.total * (processes if device.type == "cpu" else 1)
    if need <= available:
        return
    per = f" ({processes} processes, each " if processes > 1 and device.type == "cpu" else " ("
    raise InputError(
        f"training {ir.name} would need about {fmt_bytes(need)} of memory{per}{est.parts()}), more than "
        f"{what}; refusing before allocating anything: lower --batch, the input size or the widths "
        f"(or set {ENV} if the estimate is wrong)"
    )
