"""Data files for training, shared by `resdsl train` and the standalone train.py: torch and the standard library
only (numpy for .npz files), and resdsl/files.py, which the standalone train.py embeds too. Only regular files
are opened: a FIFO given as data is refused, not waited on.

CIFAR-10/100 python batches and .npz arrays read and checked (sizes from the .npz headers first, so that a file
too large for this machine's memory is refused before it is unpacked), the data checked against the network,
and the fixed validation split.
"""

from __future__ import annotations

import math
import os
import pickle
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from resdsl.files import open_regular  # embedded ahead of this module in the standalone train.py


class DataError(ValueError):
    """Missing, truncated or malformed data files."""


def _unpickle(path: Path) -> dict:
    try:
        with open_regular(path, DataError) as f:
            return pickle.load(f, encoding="bytes")
    except DataError:
        raise
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
        with open_regular(path, DataError) as raw, zipfile.ZipFile(raw) as zf:
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
        with open_regular(path, DataError) as raw, np.load(raw, allow_pickle=False) as f:
            loaded = {k: f[k] for k in NPZ_KEYS}
    except DataError:
        raise
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
