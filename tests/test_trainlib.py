"""trainlib units: the schedule (the paper's steps, cosine, both warm-ups), whole-batch augmentation
against a per-image reference, normalisation, the CIFAR-100 reader and the warm-up switch."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest

from resdsl.lang.recipe import Recipe

if TYPE_CHECKING:
    import torch

PAPER = Recipe().to_json()  # batch 128, lr 0.1, /10 at 32k and 48k, 64k iterations


def test_step_schedule_is_the_papers() -> None:
    from resdsl.train import trainlib

    lr = lambda it: trainlib.lr_at(it, PAPER)  # noqa: E731
    assert lr(0) == 0.1 and lr(31999) == 0.1
    assert lr(32000) == pytest.approx(0.01) and lr(47999) == pytest.approx(0.01)
    assert lr(48000) == pytest.approx(0.001) and lr(63999) == pytest.approx(0.001)


def test_cosine_constant_and_linear_warmup() -> None:
    from resdsl.train import trainlib

    cos = dict(PAPER, schedule="cosine", milestones=[], iterations=100)
    assert trainlib.lr_at(0, cos) == pytest.approx(0.1)
    assert trainlib.lr_at(50, cos) == pytest.approx(0.05)
    assert trainlib.lr_at(100, cos) == pytest.approx(0.0, abs=1e-12)
    const = dict(PAPER, schedule="constant", milestones=[])
    assert trainlib.lr_at(60000, const) == 0.1
    warm = dict(PAPER, warmup_iterations=4)
    assert [trainlib.lr_at(i, warm) for i in range(5)] == pytest.approx([0.025, 0.05, 0.075, 0.1, 0.1])


def test_resnet110_warmup_lr_until_error() -> None:
    from resdsl.train import trainlib

    cfg = dict(PAPER, warmup_lr=0.01, warmup_until_error=0.8)
    assert trainlib.lr_at(0, cfg, warming=True) == 0.01
    assert trainlib.lr_at(0, cfg, warming=False) == 0.1


def constant_model():
    """A module that predicts class 0 (right on every image labelled 0) and has a parameter for SGD."""
    import torch
    from torch import nn

    class Constant(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.w = nn.Parameter(torch.zeros(1))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            logits = torch.zeros(x.shape[0], 10) + self.w * 0
            logits[:, 0] = 10.0
            return logits

    return Constant()


def tiny_data(n: int = 80, label: int = 0) -> dict[str, torch.Tensor]:
    import torch

    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (n, 3, 8, 8), dtype=torch.uint8, generator=g)
    y = torch.full((n,), label)
    return {"x_train": x, "y_train": y, "x_test": x[:10], "y_test": y[:10]}


def test_warmup_ends_when_training_error_drops_below_the_threshold() -> None:
    from resdsl.train import trainlib

    cfg = dict(PAPER, batch=8, warmup_lr=0.01, warmup_until_error=0.8, pad=0, crop=0, flip=False)
    wrong = trainlib.Trainer(constant_model(), cfg, tiny_data(label=3), channels_last=False)
    for _ in range(2 * trainlib.WARMUP_WINDOW):
        assert wrong.step() == 0.01  # every prediction wrong: error 100% >= 80%, still warming
    assert wrong.warming
    right = trainlib.Trainer(constant_model(), cfg, tiny_data(label=0), channels_last=False)
    lrs = [right.step() for _ in range(trainlib.WARMUP_WINDOW + 1)]
    assert lrs[: trainlib.WARMUP_WINDOW] == [0.01] * trainlib.WARMUP_WINDOW
    assert lrs[-1] == 0.1 and not right.warming  # back to the base lr after the first window


def test_batch_augmentation_equals_per_image_pad_crop_flip() -> None:
    import torch
    import torch.nn.functional as F

    from resdsl.train import trainlib

    g = torch.Generator().manual_seed(1)
    x = torch.randn(16, 3, 32, 32)
    params = trainlib.augment_params(16, 4, 32, (32, 32), True, g)
    assert params[:, :2].min() >= 0 and params[:, :2].max() <= 8 and set(params[:, 2].tolist()) == {0, 1}
    out = trainlib.augment(x, params, 4, 32)
    for i in range(16):
        dy, dx, flip = params[i].tolist()
        ref = F.pad(x[i], (4, 4, 4, 4))[:, dy : dy + 32, dx : dx + 32]
        if flip:
            ref = ref.flip(-1)
        assert torch.equal(out[i], ref), i


def test_per_pixel_mean_and_per_channel_normalisation() -> None:
    import torch

    from resdsl.train import trainlib

    x = torch.randint(0, 256, (50, 3, 4, 4), dtype=torch.uint8)
    mean, std = trainlib.normalizer(x, "per_pixel_mean")
    torch.testing.assert_close(mean, (x.double() / 255).mean(0).float())
    assert torch.equal(std, torch.ones(3, 4, 4))
    mean_c, std_c = trainlib.normalizer(x, "per_channel")
    torch.testing.assert_close(mean_c[:, 0, 0], (x.double() / 255).mean((0, 2, 3)).float())
    torch.testing.assert_close(std_c[:, 0, 0], (x.double() / 255).std((0, 2, 3), unbiased=False).float())


def test_data_order_is_a_seeded_permutation_per_epoch() -> None:
    import torch

    from resdsl.train import trainlib

    cfg = dict(PAPER, batch=20, pad=0, crop=0, flip=False)
    t = trainlib.Trainer(constant_model(), cfg, tiny_data(), channels_last=False)
    seen = []
    for _ in range(4):  # one epoch of 80 images
        seen.append(t.perm[t.pos : t.pos + 20].clone())
        t.next_batch()
    assert sorted(torch.cat(seen).tolist()) == list(range(80))
    t.next_batch()
    assert t.epoch == 1


def test_reads_cifar100(tmp_path: Path) -> None:
    from resdsl.train import datafiles

    rng = np.random.default_rng(0)
    for name, n in (("train", 30), ("test", 10)):
        with open(tmp_path / name, "wb") as f:
            labels = [int(v) for v in rng.integers(0, 100, n)]
            pickle.dump({b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8), b"fine_labels": labels}, f)
    data = datafiles.read_cifar(tmp_path)
    assert data["x_train"].shape == (30, 3, 32, 32) and data["x_test"].shape == (10, 3, 32, 32)
    datafiles.check_data(data, (3, 32, 32), 100)
    with pytest.raises(datafiles.DataError, match="labels run 0..9[0-9] but the network has 10 classes"):
        datafiles.check_data(data, (3, 32, 32), 10)
