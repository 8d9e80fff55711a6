"""Training core shared by `resdsl train` and the standalone train.py: torch and the standard library only.

Whole-batch augmentation on the device, the learning-rate schedule as a function of the iteration,
CIFAR/npz readers and a `Trainer` whose complete state (weights, optimizer, data order, RNGs,
warm-up) round-trips through `state_dict()` so that a resumed run continues exactly.
"""

from __future__ import annotations

import math
import os
import pickle
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

WARMUP_WINDOW = 20  # iterations per training-error check while warming up (the paper: error < 80%)
EVAL_BATCH = 500
PLATEAU_MARGIN = 1e-3  # a validation error lower by less than 0.1% is no improvement


class DataError(ValueError):
    """Missing, truncated or malformed data files."""


class NonFiniteLoss(FloatingPointError):
    """The training loss became NaN or infinite."""

    def __init__(self, iteration: int, lr: float, loss: float) -> None:
        super().__init__(f"the training loss became {loss} at iteration {iteration} (lr {lr:g})")
        self.iteration = iteration
        self.lr = lr
        self.loss = loss


# ---------------------------------------------------------------------------------------- data files


def _unpickle(path: Path) -> dict:
    try:
        with open(path, "rb") as f:
            return pickle.load(f, encoding="bytes")
    except FileNotFoundError:
        raise DataError(f"{path} is missing") from None
    except Exception as err:  # noqa: BLE001 - truncated or not a pickle at all
        raise DataError(f"{path} is corrupt or truncated ({type(err).__name__}: {err})") from None


def _cifar_arrays(path: Path, labels_key: bytes) -> tuple[Tensor, Tensor]:
    batch = _unpickle(path)
    if not isinstance(batch, dict) or b"data" not in batch or labels_key not in batch:
        raise DataError(f"{path} is not a CIFAR python batch (no b'data' / {labels_key!r})")
    data = torch.as_tensor(batch[b"data"])
    if data.dtype != torch.uint8 or data.dim() != 2 or data.shape[1] != 3072:
        raise DataError(f"{path}: b'data' must be uint8 N x 3072, got {data.dtype} {tuple(data.shape)}")
    labels = torch.as_tensor(list(batch[labels_key]), dtype=torch.int64)
    if labels.shape[0] != data.shape[0]:
        raise DataError(f"{path}: {data.shape[0]} images but {labels.shape[0]} labels")
    return data.reshape(-1, 3, 32, 32).contiguous(), labels


def read_cifar(root: str | Path) -> dict[str, Tensor]:
    """A CIFAR-10 (data_batch_1..5, test_batch) or CIFAR-100 (train, test) python directory."""
    root = Path(root)
    if (root / "train").exists() or (root / "test").exists():  # cifar-100-python
        files, key = [root / "train"], b"fine_labels"
        test = root / "test"
    else:
        files, key = [root / f"data_batch_{i}" for i in range(1, 6)], b"labels"
        test = root / "test_batch"
    xs, ys = zip(*(_cifar_arrays(f, key) for f in files))
    x_test, y_test = _cifar_arrays(test, key)
    return {"x_train": torch.cat(xs), "y_train": torch.cat(ys), "x_test": x_test, "y_test": y_test}


NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")


def memory_bytes() -> int | None:
    """This machine's memory in bytes (psutil, else sysconf, else /proc/meminfo), capped by a cgroup's limit;
    None when none of them answers."""
    total = None
    try:
        import psutil  # optional

        total = int(psutil.virtual_memory().total)
    except Exception:  # noqa: BLE001 - not installed, or no answer on this system
        try:
            total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        except (AttributeError, ValueError, OSError):
            try:
                with open("/proc/meminfo") as f:
                    for line in f:
                        if line.startswith("MemTotal:"):
                            total = int(line.split()[1]) * 1024
            except (OSError, ValueError, IndexError):
                total = None
    for limit_file in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            text = Path(limit_file).read_text().strip()
        except OSError:
            continue
        if text.isdigit() and int(text) < (total or 1 << 62):  # "max" or a huge number: no limit
            total = int(text)
        break
    return total if total and total > 0 else None


def fmt_bytes(n: float) -> str:
    """1234567 -> '1.2 MB' (decimal units)."""
    for unit in ("B", "kB", "MB", "GB", "TB", "PB"):
        if abs(n) < 1000 or unit == "PB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} PB"  # pragma: no cover


def _describe_dtype(dtype) -> str:
    if dtype.kind in "US":
        return f"strings ({dtype.str})"
    if dtype.kind == "O":
        return "Python objects"
    return str(dtype)


def npz_arrays(path: str | Path) -> dict[str, tuple[tuple[int, ...], Any, int]]:
    """(shape, dtype, bytes) of x_train, y_train, x_test, y_test, read from the zip directory and the .npy
    headers without unpacking any array; DataError for a file that is no npz or whose arrays are unusable."""
    import zipfile

    import numpy as np  # only for this format

    path = Path(path)
    arrays: dict[str, tuple[tuple[int, ...], Any, int]] = {}
    try:
        with zipfile.ZipFile(path) as zf:
            for member in zf.infolist():
                name = member.filename.removesuffix(".npy")
                if name not in NPZ_KEYS:
                    continue
                with zf.open(member) as f:
                    version = np.lib.format.read_magic(f)
                    if version == (1, 0):
                        shape, _, dtype = np.lib.format.read_array_header_1_0(f)
                    else:
                        shape, _, dtype = np.lib.format.read_array_header_2_0(f)
                nbytes = math.prod(shape) * dtype.itemsize
                if nbytes > member.file_size:
                    raise DataError(
                        f"{path}: {name} claims {'x'.join(map(str, shape))} {dtype} ({nbytes:,} bytes) but its "
                        f"zip entry holds {member.file_size:,} bytes: the file is corrupt"
                    )
                arrays[name] = (tuple(shape), dtype, nbytes)
    except FileNotFoundError:
        raise DataError(f"{path} is missing") from None
    except DataError:
        raise
    except Exception as err:  # noqa: BLE001 - zipfile and numpy raise many kinds on a bad file
        raise DataError(f"{path} is corrupt or not an npz file ({type(err).__name__}: {err})") from None
    missing = [k for k in NPZ_KEYS if k not in arrays]
    if missing:
        raise DataError(f"{path} lacks {', '.join(missing)} (needs x_train, y_train, x_test, y_test)")
    for k in ("x_train", "x_test"):
        shape, dtype, _ = arrays[k]
        if dtype != np.uint8 or len(shape) != 4:
            got = f"{_describe_dtype(dtype)} {'x'.join(map(str, shape)) or 'scalar'}"
            raise DataError(f"{path}: {k} must be uint8 N x C x H x W, got {got}")
    for k in ("y_train", "y_test"):
        shape, dtype, _ = arrays[k]
        if dtype.kind not in "iu":
            hint = " (convert with y.astype('int64'))" if dtype.kind in "fb" else ""
            raise DataError(f"{path}: {k} must be integer class indices, got {_describe_dtype(dtype)}{hint}")
        if len(shape) != 1 and not (len(shape) == 2 and shape[1] == 1):
            hint = " (one-hot labels? store y.argmax(1))" if len(shape) == 2 else ""
            got = "a scalar" if not shape else f"{len(shape)}-D {'x'.join(map(str, shape))}"
            raise DataError(f"{path}: {k} must hold one label per image (N), got {got}{hint}")
    return arrays


def npz_bytes(arrays: dict[str, tuple[tuple[int, ...], Any, int]]) -> int:
    """What npz_arrays' arrays take in memory once loaded: as stored, and the labels again as int64."""
    return sum(nbytes for _, _, nbytes in arrays.values()) + sum(
        8 * math.prod(arrays[k][0]) for k in ("y_train", "y_test")
    )


def check_npz_size(path: str | Path, arrays: dict, max_bytes: int | None = None) -> None:
    """DataError when the arrays would unpack to more than `max_bytes` (default: half this machine's memory)."""
    total = npz_bytes(arrays)
    basis = ""
    if max_bytes is None:
        memory = memory_bytes()
        max_bytes = memory // 2 if memory else None
        basis = " (half this machine's memory)"
    if max_bytes is not None and total > max_bytes:
        biggest = max(arrays, key=lambda k: arrays[k][2])
        shape, dtype, nbytes = arrays[biggest]
        raise DataError(
            f"{path} unpacks to {fmt_bytes(total)} ({biggest} alone is {'x'.join(map(str, shape))} {dtype}, "
            f"{fmt_bytes(nbytes)}), more than the {fmt_bytes(max_bytes)} allowed for data here{basis}; "
            f"nothing was unpacked"
        )


def read_npz(path: str | Path, max_bytes: int | None = None) -> dict[str, Tensor]:
    """x_train, y_train, x_test, y_test: uint8 images N x C x H x W and integer labels (N). The sizes are read
    from the zip directory and the .npy headers first: a file that would unpack to more than `max_bytes`
    (default: half this machine's memory) is refused before anything is unpacked."""
    import numpy as np  # only for this format

    check_npz_size(path, npz_arrays(path), max_bytes)
    try:
        with np.load(path, allow_pickle=False) as f:
            loaded = {k: f[k] for k in NPZ_KEYS}
    except Exception as err:  # noqa: BLE001 - anything numpy raises on a bad file
        raise DataError(f"{path} is corrupt or not an npz file ({type(err).__name__}: {err})") from None
    out = {}
    for k in ("x_train", "x_test"):
        out[k] = torch.as_tensor(loaded[k]).contiguous()
    for k in ("y_train", "y_test"):
        out[k] = torch.as_tensor(loaded[k].astype(np.int64)).reshape(-1)
    return out


def check_data(data: dict[str, Tensor], input_shape: tuple[int, ...], classes: int) -> None:
    """Shapes and label range against the network; raises DataError naming both."""
    for split in ("train", "test"):
        x, y = data[f"x_{split}"], data[f"y_{split}"]
        if tuple(x.shape[1:]) != tuple(input_shape):
            got = "x".join(map(str, x.shape[1:]))
            want = "x".join(map(str, input_shape))
            raise DataError(f"the data's {split} images are {got} but the network takes {want}")
        if x.shape[0] != y.shape[0] or x.shape[0] == 0:
            raise DataError(f"the data has {x.shape[0]} {split} images and {y.shape[0]} labels")
        lo, hi = int(y.min()), int(y.max())
        if lo < 0 or hi >= classes:
            raise DataError(f"the data's {split} labels run {lo}..{hi} but the network has {classes} classes")


def split_val(data: dict[str, Tensor], val: int, seed: int = 0) -> dict[str, Tensor]:
    """Hold out `val` training images (a fixed seeded choice), like the paper's 45k/5k split."""
    n = data["x_train"].shape[0]
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    keep, held = perm[: n - val].sort().values, perm[n - val :].sort().values
    out = dict(data)
    out["x_train"], out["y_train"] = data["x_train"][keep], data["y_train"][keep]
    out["x_val"], out["y_val"] = data["x_train"][held], data["y_train"][held]
    return out


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
