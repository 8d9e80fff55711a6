"""MNIST and SVHN in their official file formats, read into uint8 N x C x H x W images and int64 labels.

- MNIST (LeCun et al.): four idx files, `train-images-idx3-ubyte`, `train-labels-idx1-ubyte`,
  `t10k-images-idx3-ubyte`, `t10k-labels-idx1-ubyte`, each gzipped (`.gz`, as distributed) or not.
  An idx file is a big-endian header (two zero bytes, the element type 0x08 = unsigned byte, the
  number of dimensions, then each dimension as a 32-bit integer) followed by the elements.
  Fashion-MNIST and KMNIST ship the same four files.
- SVHN (Netzer et al., format 2, cropped digits): `train_32x32.mat` and `test_32x32.mat`, MATLAB v5
  files with `X` (32 x 32 x 3 x N uint8) and `y` (N x 1, labels 1..10 where 10 is the digit 0),
  read with scipy.io.loadmat.

Every problem is a DataError of one line naming the file.
"""

from __future__ import annotations

import faulthandler
import gzip
import math
import os
import struct
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from resdsl.files import open_regular
from resdsl.train.datafiles import DataError

MNIST_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)
SVHN_FILES = ("train_32x32.mat", "test_32x32.mat")
IDX_UBYTE = 0x08
IDX_LIMIT_ENV = "RESDSL_MAX_IDX_BYTES"
MAX_IDX_BYTES = 1 << 30  # 1 GiB: twice EMNIST's largest file (697,932 x 28 x 28)


def idx_path(root: Path, name: str) -> Path | None:
    """root/name.gz or root/name, whichever exists (the gzipped one first, as distributed; one that is not a
    regular file is returned too, for read_idx to refuse by name)."""
    for candidate in (root / f"{name}.gz", root / name):
        if candidate.exists():
            return candidate
    return None


def idx_limit() -> int:
    """The most bytes an idx file's data may hold: RESDSL_MAX_IDX_BYTES, else MAX_IDX_BYTES."""
    text = os.environ.get(IDX_LIMIT_ENV, "").strip().replace("_", "")
    if not text:
        return MAX_IDX_BYTES
    if not text.isdigit() or int(text) < 1:
        raise DataError(f"{IDX_LIMIT_ENV}={os.environ[IDX_LIMIT_ENV]} is not a number of bytes (a positive integer)")
    return int(text)


def read_idx(path: Path, dims: int) -> np.ndarray:
    """An idx file of unsigned bytes with `dims` dimensions, gzipped or not, as a uint8 array. Only a regular
    file is opened; a gzipped one is inflated as it is read, never past what its header says (or the limit):
    a small file that would inflate to gigabytes is refused after its first bytes."""
    try:
        with open_regular(path, DataError) as f:
            gzipped = f.read(2) == b"\x1f\x8b"
            f.seek(0)
            stream = gzip.GzipFile(fileobj=f) if gzipped else f
            data, shape = _idx_header(path, stream, dims)
            expected = math.prod(shape)
            if expected > idx_limit():
                raise DataError(
                    f"{path}'s header says {' x '.join(map(str, shape))} = {expected:,} bytes, more than the limit "
                    f"of {idx_limit():,} bytes for an idx file; nothing more was read ({IDX_LIMIT_ENV}=N raises it)"
                )
            body = stream.read(expected + 1)  # one byte more: data past what the header says
    except (gzip.BadGzipFile, EOFError, zlib.error) as err:
        raise DataError(f"{path} is a corrupt or truncated gzip file ({err})") from None
    except OSError as err:
        raise DataError(f"cannot read {path} ({err.strerror or err})") from None
    got = len(body)
    if got > expected:
        raise DataError(
            f"{path} holds more than the {expected} bytes of data its header ({' x '.join(map(str, shape))}) says"
        )
    if got != expected:
        raise DataError(
            f"{path} holds {got} bytes of data but its header ({' x '.join(map(str, shape))}) says {expected}"
            " (truncated)"
        )
    return np.frombuffer(body, dtype=np.uint8).reshape(shape)


def _idx_header(path: Path, stream, dims: int) -> tuple[bytes, tuple[int, ...]]:
    data = stream.read(4)
    if len(data) < 4 or data[:2] != b"\0\0" or data[2] != IDX_UBYTE:
        raise DataError(
            f"{path} is not an idx file of unsigned bytes: it starts {data[:4].hex() or 'empty'}, not 000008"
        )
    if data[3] != dims:
        raise DataError(f"{path} holds {data[3]}-dimensional data where MNIST has {dims}")
    data += stream.read(4 * dims)
    if len(data) < 4 + 4 * dims:
        raise DataError(f"{path} is truncated: {len(data)} bytes, shorter than its header")
    return data, struct.unpack(f">{dims}I", data[4:])


def read_mnist(root: str | Path) -> dict[str, Tensor]:
    """MNIST's four idx files in `root`: images 1 x 28 x 28, labels 0..9."""
    root = Path(root)
    arrays = []
    for name in MNIST_FILES:
        path = idx_path(root, name)
        if path is None:
            raise DataError(f"{root} has no {name}.gz (or {name})")
        arrays.append(read_idx(path, 3 if "images" in name else 1))
    x_train, y_train, x_test, y_test = arrays
    return {
        "x_train": torch.from_numpy(x_train.copy())[:, None],
        "y_train": torch.from_numpy(y_train.astype(np.int64)),
        "x_test": torch.from_numpy(x_test.copy())[:, None],
        "y_test": torch.from_numpy(y_test.astype(np.int64)),
    }


def read_svhn_mat(path: Path) -> tuple[Tensor, Tensor]:
    """One SVHN .mat file: images N x 3 x 32 x 32 and labels 0..9 (SVHN's 10 is the digit 0)."""
    try:
        from scipy.io import loadmat
    except ImportError:
        raise DataError("--dataset svhn reads MATLAB files with scipy: pip install 'resdsl[svhn]'") from None
    try:
        f = open_regular(path, DataError)
    except FileNotFoundError:
        raise DataError(f"{path.parent} has no {path.name}") from None
    except OSError as err:
        raise DataError(f"cannot read {path} ({err.strerror or err})") from None
    unreadable = f"{path} is not a readable MATLAB v5 file (truncated, or not SVHN's)"
    with f:
        x, y = _load_xy(f, loadmat, unreadable)
    if not isinstance(x, np.ndarray) or not isinstance(y, np.ndarray):
        raise DataError(f"{path} has no `X` and `y` arrays (SVHN's X is 32 x 32 x 3 x N, y is N x 1)")
    if x.ndim != 4 or x.dtype != np.uint8:
        raise DataError(f"{path}'s X is {x.dtype} {' x '.join(map(str, x.shape))}, not SVHN's uint8 32 x 32 x 3 x N")
    labels = y.reshape(-1).astype(np.int64)
    if labels.size != x.shape[3]:
        raise DataError(f"{path} has {x.shape[3]} images and {labels.size} labels")
    if labels.size and (labels.min() < 1 or labels.max() > 10):
        raise DataError(f"{path}'s labels run {labels.min()}..{labels.max()}, not SVHN's 1..10")
    images = torch.from_numpy(np.ascontiguousarray(x.transpose(3, 2, 0, 1)))
    return images, torch.from_numpy(labels % 10)


def _load_xy(f, loadmat, unreadable: str) -> tuple[Any, Any]:
    """`X` and `y` of an open MATLAB file, read in a forked child where the system can fork: scipy's reader
    segfaults on some damaged files (fuzz/regressions/data/mat-segfault.bin), which must be an error, not the
    end of the process. The child sends the arrays back through a pipe in .npy format."""
    if not hasattr(os, "fork"):
        return _loadmat_xy(f, loadmat, unreadable)
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: read, send X and y, exit without running the parent's clean-up
        code = 1
        try:
            os.close(read_end)
            faulthandler.disable()  # a crash is reported by the parent, in one line
            os.dup2(os.open(os.devnull, os.O_WRONLY), 2)  # so are scipy's warnings about a damaged file
            x, y = _loadmat_xy(f, loadmat, unreadable)
            with os.fdopen(write_end, "wb") as out:
                for array in (x, y):  # a flag byte, then the array; a cell or struct (objects) counts as absent
                    numeric = isinstance(array, np.ndarray) and not array.dtype.hasobject
                    out.write(b"\x01" if numeric else b"\x00")
                    if numeric:
                        np.save(_Stream(out), array, allow_pickle=False)
            code = 0
        except BaseException:  # noqa: BLE001 - any failure is the exit status; the parent words the error
            code = 1
        finally:
            os._exit(code)
    os.close(write_end)
    arrays: list[Any] = []
    try:
        with os.fdopen(read_end, "rb") as stream:
            reader = _Stream(stream)
            for _ in range(2):
                flag = stream.read(1)
                if flag not in (b"\x00", b"\x01"):
                    raise EOFError
                arrays.append(np.lib.format.read_array(reader, allow_pickle=False) if flag == b"\x01" else None)
    except (OSError, ValueError, EOFError):  # the child failed or died half-way
        arrays = []
    finally:
        status = _wait(pid)
    if status != 0 or len(arrays) != 2:
        raise DataError(unreadable if status >= 0 else f"{unreadable}: scipy crashed reading it") from None
    return arrays[0], arrays[1]


class _Stream:
    """A pipe seen only through read() and write(): numpy copies in chunks instead of trying to seek it."""

    def __init__(self, f) -> None:
        self.read, self.write = f.read, f.write


def _wait(pid: int) -> int:
    """The child's exit status, or minus the signal that ended it; the child is killed if we are interrupted."""
    try:
        _, status = os.waitpid(pid, 0)
    except BaseException:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
        raise
    return os.waitstatus_to_exitcode(status)


def _loadmat_xy(f, loadmat, unreadable: str) -> tuple[Any, Any]:
    try:
        mat = loadmat(f, variable_names=["X", "y"])
    except Exception:  # noqa: BLE001 - scipy raises many kinds (ValueError, TypeError, OSError, ...) on a bad file
        raise DataError(unreadable) from None
    return mat.get("X"), mat.get("y")


def read_svhn(root: str | Path) -> dict[str, Tensor]:
    """SVHN's train_32x32.mat and test_32x32.mat in `root` (the `extra` set is not used)."""
    root = Path(root)
    x_train, y_train = read_svhn_mat(root / SVHN_FILES[0])
    x_test, y_test = read_svhn_mat(root / SVHN_FILES[1])
    return {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}
