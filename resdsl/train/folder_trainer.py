"""The Trainer for image folders (ImageNet): batches decoded and augmented by DataLoader workers instead of
gathered from device-resident tensors; evaluation over the val/ folder, sharded over the processes."""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from resdsl.train import imagefolder
from resdsl.train.trainlib import EVAL_BATCH, Trainer


class FolderTrainer(Trainer):
    """`data` is {"train": Folder, "val": Folder} (imagefolder.scan_imagenet); `workers` DataLoader processes
    decode and augment (0: in this process). Everything else is the Trainer's, checkpoints included: the
    data order and augmentation follow from the seed and the iteration (imagefolder.TrainBatches)."""

    def __init__(self, *args: Any, workers: int = 0, input_shape: tuple[int, ...] = (3, 224, 224), **kw: Any) -> None:
        self.workers = workers
        self.crop = input_shape[1]
        super().__init__(*args, **kw)

    def _init_data(self, data: dict[str, Any]) -> tuple[Tensor, Tensor]:
        self.train_folder, self.test_folder = data["train"], data["val"]
        self.x_train = self.x_test = self.x_val = self.y_val = None
        self.n_train = len(self.train_folder)
        if self.n_train < self.batch:
            raise ValueError(f"the batch of {self.batch} is larger than the {self.n_train} training images")
        self.batches = imagefolder.TrainBatches(self.train_folder, self.cfg, self.crop, self.rank, self.world)
        self._batch_iter = None
        self._test_loader = None
        self._lighting = float(self.cfg.get("lighting") or 0.0) > 0
        return data.get("normalizer") or imagefolder.normalizer(
            self.train_folder, self.cfg["normalize"], self.crop, seed=int(self.cfg["seed"])
        )

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self._batch_iter = None  # start again at the checkpoint's iteration

    def next_batch(self) -> tuple[Tensor, Tensor]:
        if self._batch_iter is None:
            start = self.iteration
            sampler = range(start, int(self.cfg["iterations"]))
            pin = self.device.type == "cuda"
            self._batch_iter = iter(imagefolder.loader(self.batches, None, self.workers, pin, sampler=sampler))
        x, y, alpha = imagefolder.checked(imagefolder.next_item(self._batch_iter, "training"))
        blocking = self.device.type != "cuda"
        x = x.to(self.device, non_blocking=not blocking).float() / 255.0
        if self._lighting:
            x = x + imagefolder.lighting_rgb(alpha.to(self.device, non_blocking=not blocking))[:, :, None, None]
        x = (x - self.mean) * self.inv_std
        return x.contiguous(memory_format=self.memory_format), y.to(self.device, non_blocking=not blocking)

    def test_metrics(self) -> dict[str, float]:
        """Centre-crop loss and error on val/, each process a shard, the sums all-reduced."""
        if self._test_loader is None:
            dataset = imagefolder.TestImages(self.test_folder, "center", self.crop, rank=self.rank, world=self.world)
            pin = self.device.type == "cuda"
            self._test_loader = imagefolder.loader(dataset, EVAL_BATCH, self.workers, pin) if len(dataset) else []
        sums = torch.zeros(3, dtype=torch.float64)
        self.model.eval()
        with torch.no_grad():
            for batch in imagefolder.items(self._test_loader, "validation"):
                x, y = imagefolder.checked(batch)
                with self._autocast():
                    logits = self.model(self.prepare(x.to(self.device))).float()
                y = y.to(self.device)
                sums += torch.tensor(
                    [float(F.cross_entropy(logits, y, reduction="sum")), float((logits.argmax(1) != y).sum()), len(y)],
                    dtype=torch.float64,
                )
        self.model.train()
        sums = self.all_reduce(sums)
        n = float(sums[2])
        return {"test_loss": float(sums[0]) / n if n else math.nan, "test_error": float(sums[1]) / n if n else math.nan}
