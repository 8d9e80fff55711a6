"""Training core shared by `resdsl train` and the standalone train.py: torch and the standard library only.

Whole-batch augmentation on the device, the learning-rate schedule as a function of the iteration and a
`Trainer` whose complete state (weights, optimizer, data order, RNGs, warm-up) round-trips through
`state_dict()` so that a resumed run continues exactly. The data files it trains on are read by `datafiles`.
"""

from __future__ import annotations

import math
import time
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

WARMUP_WINDOW = 20  # iterations per training-error check while warming up (the paper: error < 80%)
EVAL_BATCH = 500
PLATEAU_MARGIN = 1e-3  # a validation error lower by less than 0.1% is no improvement


class NonFiniteLoss(FloatingPointError):
    """The training loss became NaN or infinite."""

    def __init__(self, iteration: int, lr: float, loss: float) -> None:
        super().__init__(f"the training loss became {loss} at iteration {iteration} (lr {lr:g})")
        self.iteration = iteration
        self.lr = lr
        self.loss = loss


# ---------------------------------------------------------------------------------------- schedule


def lr_at(iteration: int, cfg: dict[str, Any], warming: bool = False) -> float:
    """The learning rate of one iteration (counted from 0): step/cosine/constant, then warm-up (plateau: the
    base rate, which the Trainer scales at each plateau)."""
    base = float(cfg["lr"])
    if cfg["schedule"] == "step":
        lr = base * float(cfg["factor"]) ** sum(iteration >= m for m in cfg["milestones"])
    elif cfg["schedule"] == "cosine":
        lr = 0.5 * base * (1.0 + math.cos(math.pi * min(iteration, cfg["iterations"]) / cfg["iterations"]))
    else:
        lr = base
    if warming and cfg.get("warmup_lr") is not None:
        return float(cfg["warmup_lr"])  # the paper's ResNet-110: 0.01 until training error < 80%
    warm_its = int(cfg.get("warmup_iterations") or 0)
    if warm_its and iteration < warm_its:
        lr *= (iteration + 1) / warm_its
    return lr


# ---------------------------------------------------------------------------------------- batches


def normalizer(x_train: Tensor, mode: str) -> tuple[Tensor, Tensor]:
    """(mean, std) to apply to images scaled to [0, 1]: per-pixel mean, per-channel mean/std, or none."""
    shape = tuple(x_train.shape[1:])
    if mode == "none":
        return torch.zeros(shape), torch.ones(shape)
    total = torch.zeros(shape, dtype=torch.float64)
    total_sq = torch.zeros(shape, dtype=torch.float64)
    for chunk in x_train.split(4096):
        c = chunk.to(torch.float64) / 255.0
        total += c.sum(0)
        total_sq += (c * c).sum(0)
    n = x_train.shape[0]
    if mode == "per_pixel_mean":  # the paper: subtract the per-pixel mean, no scaling
        return (total / n).float(), torch.ones(shape)
    mean_c = total.sum((1, 2)) / (n * shape[1] * shape[2])
    var_c = total_sq.sum((1, 2)) / (n * shape[1] * shape[2]) - mean_c**2
    std_c = var_c.clamp_min(1e-12).sqrt()
    return mean_c[:, None, None].expand(shape).float(), std_c[:, None, None].expand(shape).float()


def augment_params(n: int, pad: int, crop: int, size: tuple[int, int], flip: bool, gen: torch.Generator) -> Tensor:
    """Per-image (dy, dx, flip) for a batch of n, drawn from a CPU generator: int64 n x 3."""
    h, w = size
    out = torch.zeros(n, 3, dtype=torch.int64)
    if crop or pad:
        ch, cw = (crop, crop) if crop else (h, w)
        out[:, 0] = torch.randint(0, h + 2 * pad - ch + 1, (n,), generator=gen)
        out[:, 1] = torch.randint(0, w + 2 * pad - cw + 1, (n,), generator=gen)
    if flip:
        out[:, 2] = torch.randint(0, 2, (n,), generator=gen)
    return out


def augment(x: Tensor, params: Tensor, pad: int, crop: int) -> Tensor:
    """Zero-pad by `pad`, crop crop x crop at (dy, dx) and flip where asked: one gather for the batch."""
    n, c, h, w = x.shape
    params = params.to(x.device)
    if pad:
        x = F.pad(x, (pad, pad, pad, pad))
    ch, cw = (crop, crop) if crop else (h, w)
    rows = params[:, 0:1] + torch.arange(ch, device=x.device)  # (N, ch)
    cols = params[:, 1:2] + torch.arange(cw, device=x.device)  # (N, cw)
    cols = torch.where(params[:, 2:3].bool(), cols.flip(1), cols)
    batch = torch.arange(n, device=x.device)[:, None, None, None]
    chan = torch.arange(c, device=x.device)[None, :, None, None]
    return x[batch, chan, rows[:, None, :, None], cols[:, None, None, :]]  # (N, C, ch, cw)


# ---------------------------------------------------------------------------------------- trainer


def _rng_state() -> dict[str, Any]:
    state = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


class Trainer:
    """SGD on device-resident uint8 data with the recipe's schedule, augmentation and warm-up.

    `model` is the plain module (its state_dict is saved); `net` what runs the forward pass (the
    same module, compiled or wrapped in DistributedDataParallel). Each of `world` ranks trains on
    its slice of every global batch of `cfg["batch"]` images; the data order and augmentation are
    drawn for the whole global batch from generators that every rank seeds alike.
    """

    def __init__(
        self,
        model: nn.Module,
        cfg: dict[str, Any],
        data: dict[str, Tensor],
        device: torch.device | str = "cpu",
        *,
        net: nn.Module | None = None,
        rank: int = 0,
        world: int = 1,
        amp: str = "off",
        channels_last: bool = True,
        all_reduce=None,
    ) -> None:
        self.cfg = cfg
        self.device = torch.device(device)
        self.model = model
        self.net = net if net is not None else model
        self.rank, self.world = rank, world
        self.batch = int(cfg["batch"])
        if self.batch % world:
            raise ValueError(f"the batch of {self.batch} does not split evenly over {world} processes")
        self.local_batch = self.batch // world
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.amp = amp
        self.all_reduce = all_reduce or (lambda t: t)
        mean, std = self._init_data(data)
        self.mean, self.inv_std = mean.to(self.device), (1.0 / std).to(self.device)
        self.optimizer = torch.optim.SGD(
            model.parameters(),
            lr=float(cfg["lr"]),
            momentum=float(cfg["momentum"]),
            weight_decay=float(cfg["weight_decay"]),
            nesterov=bool(cfg["nesterov"]) and float(cfg["momentum"]) > 0,
        )
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=amp == "fp16")
        seed = int(cfg["seed"])
        self.order_gen = torch.Generator().manual_seed(seed)
        self.aug_gen = torch.Generator().manual_seed(seed + 1)
        self.iteration = 0
        self.perm = torch.randperm(self.n_train, generator=self.order_gen)
        self.pos = 0
        self.epoch = 0
        self.warming = cfg.get("warmup_lr") is not None
        self.warm_sums = torch.zeros(2, dtype=torch.float64)  # wrong, seen in this warm-up window
        self._reset_window()
        self.train_time = 0.0  # seconds spent in training steps, over the whole run
        self.train_images = 0
        self.lr_scale = 1.0  # the plateau schedule's factor ** drops so far
        self.plateau = {"best": math.inf, "bad": 0}  # the lowest validation error, eval points since it

    def _init_data(self, data: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
        """The data on the device; returns the normaliser (mean, std)."""
        self.x_train = data["x_train"].to(self.device)
        self.y_train = data["y_train"].to(self.device)
        self.x_test = data["x_test"].to(self.device)
        self.y_test = data["y_test"].to(self.device)
        self.x_val = data["x_val"].to(self.device) if "x_val" in data else None
        self.y_val = data["y_val"].to(self.device) if "y_val" in data else None
        self.n_train = self.x_train.shape[0]
        if self.n_train < self.batch:
            raise ValueError(f"the batch of {self.batch} is larger than the {self.n_train} training images")
        return normalizer(data["x_train"], self.cfg["normalize"])

    # -- state

    def _reset_window(self) -> None:
        """Running sums of the training loss and errors since the last eval point."""
        self.sums = torch.zeros(3, dtype=torch.float64, device=self.device)  # loss * n, wrong, n
        self.window_time = 0.0
        self.window_images = 0

    def state_dict(self) -> dict[str, Any]:
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scaler": self.scaler.state_dict(),
            "iteration": self.iteration,
            "perm": self.perm.clone(),
            "pos": self.pos,
            "epoch": self.epoch,
            "order_gen": self.order_gen.get_state(),
            "aug_gen": self.aug_gen.get_state(),
            "rng": _rng_state(),
            "warming": self.warming,
            "warm_sums": self.warm_sums.clone(),
            "sums": self.sums.cpu(),
            "train_time": self.train_time,
            "train_images": self.train_images,
            "window_time": self.window_time,
            "window_images": self.window_images,
            "lr_scale": self.lr_scale,
            "plateau": dict(self.plateau),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        if state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        self.iteration = int(state["iteration"])
        self.perm = state["perm"].clone()
        self.pos = int(state["pos"])
        self.epoch = int(state["epoch"])
        self.order_gen.set_state(state["order_gen"])
        self.aug_gen.set_state(state["aug_gen"])
        _set_rng_state(state["rng"])
        self.warming = bool(state["warming"])
        self.warm_sums = state["warm_sums"].clone()
        self.sums = state["sums"].to(self.device)
        self.train_time = float(state["train_time"])
        self.train_images = int(state["train_images"])
        self.window_time = float(state["window_time"])
        self.window_images = int(state["window_images"])
        self.lr_scale = float(state.get("lr_scale", 1.0))  # absent in checkpoints older than the plateau schedule
        self.plateau = dict(state.get("plateau", {"best": math.inf, "bad": 0}))

    # -- steps

    def lr(self) -> float:
        return lr_at(self.iteration, self.cfg, self.warming) * self.lr_scale

    def observe(self, error: float) -> None:
        """An eval point's validation error: the plateau schedule multiplies the lr by `factor` once the error
        has not fallen below its best (by PLATEAU_MARGIN) for `patience` eval points in a row."""
        if self.cfg["schedule"] != "plateau" or math.isnan(error):
            return
        if error < self.plateau["best"] - PLATEAU_MARGIN:
            self.plateau = {"best": error, "bad": 0}
            return
        self.plateau["bad"] += 1
        if self.plateau["bad"] >= int(self.cfg.get("patience") or 5):
            self.lr_scale *= float(self.cfg["factor"])
            self.plateau["bad"] = 0

    def prepare(self, x: Tensor) -> Tensor:
        """uint8 images -> normalised float, in the memory format the model runs in."""
        x = (x.float() / 255.0 - self.mean) * self.inv_std
        return x.contiguous(memory_format=self.memory_format)

    def next_batch(self) -> tuple[Tensor, Tensor]:
        """This rank's slice of the next global batch, augmented."""
        n = self.x_train.shape[0]
        if self.pos + self.batch > n:  # a new epoch: a fresh seeded order (the last partial batch is dropped)
            self.perm = torch.randperm(n, generator=self.order_gen)
            self.pos = 0
            self.epoch += 1
        idx = self.perm[self.pos : self.pos + self.batch]
        self.pos += self.batch
        cfg = self.cfg
        size = tuple(self.x_train.shape[2:])
        params = augment_params(self.batch, cfg["pad"], cfg["crop"], size, cfg["flip"], self.aug_gen)
        lo, hi = self.rank * self.local_batch, (self.rank + 1) * self.local_batch
        idx, params = self._to_device(idx[lo:hi]), self._to_device(params[lo:hi])
        x = (self.x_train[idx].float() / 255.0 - self.mean) * self.inv_std
        if cfg["pad"] or cfg["crop"] or cfg["flip"]:
            x = augment(x, params, cfg["pad"], cfg["crop"])
        return x.contiguous(memory_format=self.memory_format), self.y_train[idx]

    def _to_device(self, t: Tensor) -> Tensor:
        """A small CPU tensor to the device without a stream sync (pinned, non-blocking copy on CUDA)."""
        if self.device.type != "cuda":
            return t
        return t.pin_memory().to(self.device, non_blocking=True)

    def _autocast(self):
        if self.amp == "off":
            return torch.autocast(self.device.type, enabled=False)
        dtype = torch.bfloat16 if self.amp == "bf16" else torch.float16
        return torch.autocast(self.device.type, dtype=dtype)

    def step(self) -> float:
        """One SGD iteration; returns its learning rate. Raises NonFiniteLoss before updating on NaN/inf."""
        start = time.perf_counter()
        lr = self.lr()
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self.net.train()
        x, y = self.next_batch()
        with self._autocast():
            logits = self.net(x)
            loss = F.cross_entropy(logits.float(), y)
        detached = loss.detach()
        if self.device.type == "cpu" or self.iteration % 10 == 0:
            value = float(detached)
            if not math.isfinite(value):
                raise NonFiniteLoss(self.iteration, lr, value)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        wrong = (logits.detach().argmax(1) != y).sum()
        n = y.shape[0]
        self.sums[0] += detached.double() * n
        self.sums[1] += wrong
        self.sums[2] += n
        if self.warming:
            self.warm_sums += torch.stack([wrong.double().cpu(), torch.tensor(float(n), dtype=torch.float64)])
        self.iteration += 1
        if self.warming and self.iteration % WARMUP_WINDOW == 0:
            sums = self.all_reduce(self.warm_sums.clone())
            until = self.cfg.get("warmup_until_error")
            if float(sums[0] / sums[1]) < (0.8 if until is None else float(until)):
                self.warming = False
            self.warm_sums.zero_()
        self._step_end = time.perf_counter()
        elapsed = self._step_end - start
        self.window_time += elapsed
        self.window_images += self.batch
        self.train_time += elapsed
        self.train_images += self.batch
        return lr

    def train_metrics(self) -> dict[str, float]:
        """Loss and error of the training batches since the last call (all ranks), and images/s."""
        if self.device.type == "cuda":  # the steps still queued on the GPU count as training time
            torch.cuda.synchronize(self.device)
            backlog = time.perf_counter() - getattr(self, "_step_end", time.perf_counter())
            self.window_time += backlog
            self.train_time += backlog
        sums = self.all_reduce(self.sums.clone()).cpu()
        out = {
            "train_loss": float(sums[0] / sums[2]) if sums[2] else float("nan"),
            "train_error": float(sums[1] / sums[2]) if sums[2] else float("nan"),
            "images_per_s": self.window_images / self.window_time if self.window_time else 0.0,
        }
        self._reset_window()
        return out

    def test_metrics(self) -> dict[str, float]:
        """Loss and error on the test set, and on the validation split when there is one."""
        out = dict(zip(("test_loss", "test_error"), self.evaluate(self.x_test, self.y_test)))
        if self.x_val is not None:
            out.update(zip(("val_loss", "val_error"), self.evaluate(self.x_val, self.y_val)))
        return out

    @torch.no_grad()
    def evaluate(self, x_all: Tensor, y_all: Tensor) -> tuple[float, float]:
        """(mean loss, error) over a held-out set, in eval mode (BN running statistics)."""
        self.model.eval()
        loss_sum, wrong = 0.0, 0
        for x, y in zip(x_all.split(EVAL_BATCH), y_all.split(EVAL_BATCH)):
            with self._autocast():
                logits = self.model(self.prepare(x)).float()
            loss_sum += float(F.cross_entropy(logits, y, reduction="sum"))
            wrong += int((logits.argmax(1) != y).sum())
        self.model.train()
        return loss_sum / y_all.shape[0], wrong / y_all.shape[0]
