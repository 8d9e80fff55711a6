"""How much memory training a network needs, estimated from the checked IR's shapes alone (no torch), for
`resdsl info --batch` and for `resdsl train`'s refusal (resdsl/train/memory.py adds the data set and the limit).

The estimate is deliberately simple and on the high side (float32 everywhere):

- parameters: weights, gradients and SGD momentum, 3 x 4 bytes per parameter;
- training: every op's output for the batch (the input, each conv, bn, activation, pool, shortcut, addition,
  ...; `kept_per_image`), kept for the backward pass, plus twice the largest one (the gradients in flight)
  and the augmented input batch; 2 bytes an activation under bf16/fp16 autocast;
- evaluation: two of the largest activations for an evaluation batch (no gradients).

The total is the parameters plus the larger of training and evaluation.
"""

from __future__ import annotations

from dataclasses import dataclass

from resdsl.ir.graph import NetworkIR

FLOAT = 4  # bytes per float32 element
EVAL_BATCH = 500  # images per evaluation step: trainlib.EVAL_BATCH (which imports torch); a test checks they agree


@dataclass(frozen=True)
class TrainingMemory:
    """Bytes one training process needs, in parts."""

    params: int  # weights, gradients, momentum
    train: int  # activations of one batch, forward and backward
    evaluation: int  # activations of an evaluation batch
    batch: int

    @property
    def total(self) -> int:
        return self.params + max(self.train, self.evaluation)


def numel(shape: tuple[int, ...]) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


def kept_per_image(ir: NetworkIR) -> int:
    """Elements of every op's output for one image, the input's included: what autograd may keep."""
    return sum(numel(op.shape) for op in ir.ops() if op.shape)


def training_memory(
    ir: NetworkIR, batch: int, pad: int = 0, amp: str = "off", eval_batch: int = EVAL_BATCH
) -> TrainingMemory:
    """The estimate of the module's docstring for `batch` images per step, inputs padded by `pad` pixels
    (the recipe's augmentation); `amp` "bf16" or "fp16" stores activations in 2 bytes."""
    largest = max((numel(op.shape) for op in ir.ops() if op.shape), default=0)
    c, h, w = ir.input_shape
    augmented = c * (h + 2 * pad) * (w + 2 * pad)
    act = FLOAT if amp == "off" else 2
    train = act * batch * (kept_per_image(ir) + 2 * largest) + FLOAT * batch * 2 * augmented
    evaluation = act * eval_batch * 2 * largest
    return TrainingMemory(3 * FLOAT * int(ir.totals.params), train, evaluation, batch)


def fmt_bytes(n: float) -> str:
    """1234567 -> '1.2 MB' (decimal units), as train.datafiles.fmt_bytes writes them."""
    for unit in ("B", "kB", "MB", "GB", "TB", "PB"):
        if abs(n) < 1000 or unit == "PB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} PB"  # pragma: no cover
