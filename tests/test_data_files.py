"""Data files that would hang or blow up (issue 19): a FIFO as `--data x.npz`, as a CIFAR batch, an idx file,
a checkpoint or `--weights` is refused without blocking; a gzipped idx file is inflated only as far as its
header says and never past the limit (RESDSL_MAX_IDX_BYTES), so a small file claiming or holding gigabytes is
refused after its first bytes."""

from __future__ import annotations

import gzip
import os
import struct
import tracemalloc
from pathlib import Path

import pytest
from click.testing import CliRunner

from resdsl.cli.main import main
from resdsl.train import digitfiles
from resdsl.train.datafiles import DataError

ROOT = Path(__file__).resolve().parent.parent
CIFAR20 = str(ROOT / "specs" / "cifar20.rd")
pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def run(*args) -> object:
    return CliRunner().invoke(main, [*map(str, args)])


def header(*shape: int) -> bytes:
    return struct.pack(">BBBB", 0, 0, 0x08, len(shape)) + struct.pack(f">{len(shape)}I", *shape)


def test_fifos_are_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "x.npz"
    os.mkfifo(fifo)
    result = run("train", CIFAR20, "--dataset", "npz", "--data", fifo, "--iterations", "1", "--out", tmp_path / "r")
    assert (result.exit_code, result.output) == (
        1,
        f"error: {fifo} is not a regular file: it is a named pipe (FIFO); write uint8 x_train/x_test "
        "(N x C x H x W) and integer y_train/y_test with numpy.savez\n",
    )
    cifar = tmp_path / "cifar"
    cifar.mkdir()
    os.mkfifo(cifar / "data_batch_1")
    result = run(
        "train", CIFAR20, "--dataset", "cifar10", "--data", cifar, "--iterations", "1", "--out", tmp_path / "r"
    )
    assert result.exit_code == 1
    assert result.output.startswith(f"error: {cifar}/data_batch_1 is not a regular file: it is a named pipe (FIFO); ")
    os.mkfifo(tmp_path / "checkpoint.pt")
    result = run("train", CIFAR20, "--dataset", "synthetic", "--resume", tmp_path / "checkpoint.pt")
    assert (result.exit_code, result.output) == (
        1,
        f"error: {tmp_path}/checkpoint.pt is not a regular file: it is a named pipe (FIFO)\n",
    )
    os.mkfifo(tmp_path / "images")
    with pytest.raises(DataError) as err:
        digitfiles.read_idx(tmp_path / "images", 3)
    assert str(err.value) == f"{tmp_path}/images is not a regular file: it is a named pipe (FIFO)"
    pytest.importorskip("scipy")
    os.mkfifo(tmp_path / "train_32x32.mat")
    with pytest.raises(DataError) as err:
        digitfiles.read_svhn_mat(tmp_path / "train_32x32.mat")
    assert str(err.value) == f"{tmp_path}/train_32x32.mat is not a regular file: it is a named pipe (FIFO)"


def test_a_gzip_claiming_gigabytes_is_refused_after_its_header(tmp_path: Path) -> None:
    """2.8 MB that would inflate to 3 GB: the header says so, and nothing past it is inflated."""
    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(header(3_826_531, 28, 28) + bytes(1 << 20)))
    tracemalloc.start()
    with pytest.raises(DataError) as err:
        digitfiles.read_idx(path, 3)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert str(err.value) == (
        f"{path}'s header says 3826531 x 28 x 28 = 3,000,000,304 bytes, more than the limit of 1,073,741,824 bytes "
        "for an idx file; nothing more was read (RESDSL_MAX_IDX_BYTES=N raises it)"
    )
    assert peak < 1 << 20


def test_a_gzip_holding_more_than_its_header_says_is_refused_early(tmp_path: Path) -> None:
    path = tmp_path / "t10k-images-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(header(10, 28, 28) + bytes(64 << 20)))  # 64 MB of zeros: 64 kB gzipped
    tracemalloc.start()
    with pytest.raises(DataError) as err:
        digitfiles.read_idx(path, 3)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert str(err.value) == f"{path} holds more than the 7840 bytes of data its header (10 x 28 x 28) says"
    assert peak < 4 << 20  # megabytes, never the 64 MB


def test_the_idx_limit_is_overridable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "images.gz"
    path.write_bytes(gzip.compress(header(10, 28, 28) + bytes(7840)))
    assert digitfiles.read_idx(path, 3).shape == (10, 28, 28)
    monkeypatch.setenv("RESDSL_MAX_IDX_BYTES", "4000")
    with pytest.raises(DataError) as err:
        digitfiles.read_idx(path, 3)
    assert str(err.value) == (
        f"{path}'s header says 10 x 28 x 28 = 7,840 bytes, more than the limit of 4,000 bytes for an idx file; "
        "nothing more was read (RESDSL_MAX_IDX_BYTES=N raises it)"
    )
    monkeypatch.setenv("RESDSL_MAX_IDX_BYTES", "lots")
    with pytest.raises(DataError, match="^RESDSL_MAX_IDX_BYTES=lots is not a number of bytes"):
        digitfiles.read_idx(path, 3)
