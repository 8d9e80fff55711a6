"""MNIST (idx files) and SVHN (.mat files) in their official formats: tiny files written here byte by byte
(idx headers with struct, .mat with scipy.io.savemat), the readers checked against the written arrays, every
malformed file a one-line error, the offline download error, and `resdsl train` on each (MNIST learns:
scikit-learn's digits written as MNIST idx files)."""

from __future__ import annotations

import gzip
import json
import struct
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from resdsl.cli.main import main

ROOT = Path(__file__).resolve().parent.parent
CIFAR20 = str(ROOT / "specs" / "cifar20.rd")
MNIST_NET = ["--set", "n=1", "--set", "input=1x28x28", "--set", "pad=0", "--set", "crop=28", "--set", "flip=false"]
SVHN_NET = ["--set", "n=1", "--set", "flip=false"]  # SVHN's digits are not mirror-symmetric

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def savemat(*args, **kwargs) -> None:
    """scipy.io.savemat, imported by the tests that write .mat files (skipped without scipy)."""
    pytest.importorskip("scipy.io").savemat(*args, **kwargs)


def idx_bytes(a: np.ndarray) -> bytes:
    """An idx file as LeCun's MNIST page defines it: 0, 0, type 0x08 (ubyte), ndim, big-endian sizes, data."""
    return struct.pack(">BBBB", 0, 0, 0x08, a.ndim) + struct.pack(f">{a.ndim}I", *a.shape) + a.tobytes()


def write_mnist(root: Path, x_train, y_train, x_test, y_test, gz: bool = True) -> Path:
    from resdsl.train import digitfiles

    root.mkdir(parents=True, exist_ok=True)
    arrays = dict(zip(digitfiles.MNIST_FILES, (x_train, y_train, x_test, y_test)))
    for name, a in arrays.items():
        blob = idx_bytes(np.asarray(a, dtype=np.uint8))
        (root / (name + ".gz" if gz else name)).write_bytes(gzip.compress(blob) if gz else blob)
    return root


def random_mnist(root: Path, n_train: int = 30, n_test: int = 12, gz: bool = True, seed: int = 0):
    rng = np.random.default_rng(seed)
    arrays = (
        rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        rng.integers(0, 10, n_train, dtype=np.uint8),
        rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        rng.integers(0, 10, n_test, dtype=np.uint8),
    )
    return write_mnist(root, *arrays, gz=gz), arrays


def write_svhn(root: Path, n_train: int = 30, n_test: int = 12, seed: int = 0) -> dict:
    """train_32x32.mat and test_32x32.mat as SVHN ships them: X 32x32x3xN uint8, y Nx1 labels 1..10."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    mats = {}
    for name, n in (("train_32x32.mat", n_train), ("test_32x32.mat", n_test)):
        mat = {
            "X": rng.integers(0, 256, (32, 32, 3, n), dtype=np.uint8),
            "y": rng.integers(1, 11, (n, 1)).astype(np.uint8),
        }
        mat["y"][0, 0] = 10  # the digit 0, as SVHN writes it
        savemat(root / name, mat)
        mats[name] = mat
    return mats


def train(*args) -> object:
    result = CliRunner().invoke(main, ["train", *map(str, args)])
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def error_of(r) -> str:
    assert r.exit_code == 1, r.output
    assert "Traceback" not in r.output
    lines = [line for line in r.output.splitlines() if not line.startswith("downloading ")]  # progress bars
    assert len(lines) == 1, r.output
    return lines[0]


# ---------------------------------------------------------------------------------------- readers


@pytest.mark.parametrize("gz", [True, False])
def test_mnist_reader_returns_the_written_arrays(tmp_path: Path, gz: bool) -> None:
    import torch

    from resdsl.train import digitfiles

    root, (x_train, y_train, x_test, y_test) = random_mnist(tmp_path / "m", gz=gz)
    got = digitfiles.read_mnist(root)
    assert got["x_train"].shape == (30, 1, 28, 28) and got["x_train"].dtype == torch.uint8
    assert np.array_equal(got["x_train"][:, 0].numpy(), x_train)
    assert np.array_equal(got["x_test"][:, 0].numpy(), x_test)
    assert got["y_train"].dtype == torch.int64 and got["y_train"].tolist() == y_train.tolist()
    assert got["y_test"].tolist() == y_test.tolist()


def test_svhn_reader_transposes_and_maps_ten_to_zero(tmp_path: Path) -> None:
    import torch

    from resdsl.train import digitfiles

    mats = write_svhn(tmp_path / "s")
    got = digitfiles.read_svhn(tmp_path / "s")
    x, y = mats["train_32x32.mat"]["X"], mats["train_32x32.mat"]["y"][:, 0]
    assert got["x_train"].shape == (30, 3, 32, 32) and got["x_train"].dtype == torch.uint8
    for i, c, h, w in [(0, 0, 0, 0), (3, 2, 5, 31), (29, 1, 17, 4)]:  # N x C x H x W from H x W x C x N
        assert int(got["x_train"][i, c, h, w]) == int(x[h, w, c, i])
    expected = [0 if v == 10 else int(v) for v in y]
    assert got["y_train"].tolist() == expected and got["y_train"][0] == 0
    assert got["x_test"].shape == (12, 3, 32, 32)


def test_malformed_idx_files_are_one_line_errors(tmp_path: Path) -> None:
    from resdsl.train import digitfiles
    from resdsl.train.datafiles import DataError

    good = idx_bytes(np.zeros((3, 28, 28), dtype=np.uint8))
    cases = {
        b"\x00\x00\x0d\x03" + good[4:]: "is not an idx file of unsigned bytes: it starts 00000d03, not 000008",
        b"": "is not an idx file of unsigned bytes: it starts empty, not 000008",
        good[:-5]: "holds 2347 bytes of data but its header (3 x 28 x 28) says 2352 (truncated)",
        good[:9]: "is truncated: 9 bytes, shorter than its header",
        idx_bytes(np.zeros((3, 784), dtype=np.uint8)): "holds 2-dimensional data where MNIST has 3",
    }
    for i, (blob, message) in enumerate(cases.items()):
        path = tmp_path / f"f{i}"
        path.write_bytes(blob)
        with pytest.raises(DataError) as err:
            digitfiles.read_idx(path, 3)
        assert str(err.value) == f"{path} {message}"
    path = tmp_path / "cut.gz"
    path.write_bytes(gzip.compress(good)[:40])
    with pytest.raises(DataError, match=r"cut.gz is a corrupt or truncated gzip file \("):
        digitfiles.read_idx(path, 3)


def test_malformed_svhn_files_are_one_line_errors(tmp_path: Path) -> None:
    from resdsl.train import digitfiles
    from resdsl.train.datafiles import DataError

    path = tmp_path / "x.mat"
    savemat(path, {"X": np.zeros((32, 32, 3, 4), np.uint8), "y": np.array([[1], [2], [0], [3]], np.uint8)})
    with pytest.raises(DataError) as err:
        digitfiles.read_svhn_mat(path)
    assert str(err.value) == f"{path}'s labels run 0..3, not SVHN's 1..10"
    savemat(path, {"images": np.zeros((2, 2), np.uint8)})
    with pytest.raises(DataError) as err:
        digitfiles.read_svhn_mat(path)
    assert str(err.value) == f"{path} has no `X` and `y` arrays (SVHN's X is 32 x 32 x 3 x N, y is N x 1)"
    savemat(path, {"X": np.zeros((32, 32, 3, 4), np.float32), "y": np.ones((4, 1), np.uint8)})
    with pytest.raises(DataError) as err:
        digitfiles.read_svhn_mat(path)
    assert str(err.value) == f"{path}'s X is float32 32 x 32 x 3 x 4, not SVHN's uint8 32 x 32 x 3 x N"
    savemat(path, {"X": np.zeros((32, 32, 3, 4), np.uint8), "y": np.ones((3, 1), np.uint8)})
    with pytest.raises(DataError) as err:
        digitfiles.read_svhn_mat(path)
    assert str(err.value) == f"{path} has 4 images and 3 labels"


# ---------------------------------------------------------------------------------------- resdsl train


@pytest.mark.slow
def test_mnist_format_trains_and_learns(tmp_path: Path) -> None:
    """scikit-learn's 1797 digits, upscaled to 28x28 and written as MNIST's four gzipped idx files:
    cifar20 (n=1) with a 1x28x28 input reaches >= 85% test accuracy on the 360 held out."""
    from resdsl.train import data as datasets

    digits = datasets.digits((1, 28, 28))
    arrays = [digits[k][:, 0].numpy() if k[0] == "x" else digits[k].numpy() for k in datasets.datafiles.NPZ_KEYS]
    root = write_mnist(tmp_path / "mnist", *arrays)
    out = tmp_path / "run"
    args = ["--batch", 64, "--iterations", 150, "--eval-every", 150, "--set", "milestones=120"]
    r = train(CIFAR20, "--dataset", "mnist", "--data", root, *MNIST_NET, *args, "--out", out)
    assert r.exit_code == 0, r.output
    assert "on mnist (1437 train / 360 test images)" in r.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["final_test_accuracy"] >= 0.85, summary


def test_svhn_format_trains_from_the_spec_setting(tmp_path: Path) -> None:
    write_svhn(tmp_path / "svhn", n_train=40, n_test=10)
    spec = tmp_path / "svhn.rd"
    spec.write_text(
        "network tiny {\n    input 3x32x32\n    classes 10\n    stem { conv 3x3, 8; bn; relu }\n"
        "    head { avgpool global; fc classes }\n}\n\ntrain {\n    dataset svhn\n    batch 10\n    iterations 3\n}\n"
    )
    out = tmp_path / "run"
    r = train(spec, "--data", tmp_path / "svhn", "--out", out)
    assert r.exit_code == 0, r.output
    assert "on svhn (40 train / 10 test images)" in r.output
    assert json.loads((out / "summary.json").read_text())["iterations"] == 3


def test_bad_files_and_shapes_through_train(tmp_path: Path) -> None:
    from resdsl.train import data as datasets

    root, _ = random_mnist(tmp_path / "m")
    out = tmp_path / "run"
    (root / "t10k-labels-idx1-ubyte.gz").unlink()
    text = error_of(train(CIFAR20, "--dataset", "mnist", "--data", root, *MNIST_NET, "--out", out))
    assert text == (
        f"error: {root} has no t10k-labels-idx1-ubyte.gz (or t10k-labels-idx1-ubyte); use --data DIR holding "
        f"{', '.join(datasets.FILES['mnist'])}, or delete them from {datasets.CACHE / 'mnist'} to download them again"
    )
    text = error_of(train(CIFAR20, "--dataset", "mnist", "--data", root, "--set", "n=1", "--out", out))
    assert text == (
        "error: --dataset mnist has 1x28x28 images but the network takes 3x32x32; use a spec made for them, "
        "or --set input=1x28x28"
    )
    write_svhn(tmp_path / "s")
    blob = (tmp_path / "s" / "test_32x32.mat").read_bytes()
    (tmp_path / "s" / "test_32x32.mat").write_bytes(blob[: len(blob) // 2])
    text = error_of(train(CIFAR20, "--dataset", "svhn", "--data", tmp_path / "s", *SVHN_NET, "--out", out))
    assert text.startswith(
        f"error: {tmp_path / 's' / 'test_32x32.mat'} is not a readable MATLAB v5 file (truncated, or not SVHN's); "
    )
    assert not out.exists()


def test_offline_download_says_where_the_files_go(tmp_path: Path, monkeypatch) -> None:
    from resdsl.train import data as datasets

    monkeypatch.setattr(datasets, "CACHE", tmp_path / "cache")
    files = {name: ("http://127.0.0.1:9/", md5) for name, (_, md5) in datasets.FILES["svhn"].items()}
    monkeypatch.setitem(datasets.FILES, "svhn", files)
    text = error_of(train(CIFAR20, "--dataset", "svhn", *SVHN_NET, "--out", tmp_path / "run"))
    assert text.startswith("error: cannot download http://127.0.0.1:9/train_32x32.mat (")
    assert text.endswith(
        f"download http://127.0.0.1:9/train_32x32.mat yourself and put it in {tmp_path / 'cache' / 'svhn'} "
        "(or pass --data DIR holding train_32x32.mat, test_32x32.mat; RESDSL_DATA moves the cache)"
    )
    assert not list((tmp_path / "cache").rglob("*.part"))


def test_cached_download_is_md5_checked_then_used(tmp_path: Path, monkeypatch) -> None:
    """A `file://` source stands in for the network: a wrong file fails the md5 check and is not kept; the
    right ones (their md5 set here) are downloaded into the cache and read."""
    from resdsl.train import data as datasets

    source, _ = random_mnist(tmp_path / "source")
    monkeypatch.setattr(datasets, "CACHE", tmp_path / "cache")
    base = source.as_uri() + "/"
    files = {name: (base, datasets._md5(source / name)) for name in datasets.FILES["mnist"]}
    first = next(iter(files))
    monkeypatch.setitem(datasets.FILES, "mnist", {**files, first: (base, "0" * 32)})
    text = error_of(train(CIFAR20, "--dataset", "mnist", *MNIST_NET, "--out", tmp_path / "run"))
    assert text.startswith(f"error: the download of {base}{first} failed its md5 check (truncated?)")
    assert not (tmp_path / "cache" / "mnist" / first).exists()
    monkeypatch.setitem(datasets.FILES, "mnist", files)
    r = train(CIFAR20, "--dataset", "mnist", *MNIST_NET, "--batch", 10, "--iterations", 1, "--out", tmp_path / "ok")
    assert r.exit_code == 0, r.output
    assert sorted(p.name for p in (tmp_path / "cache" / "mnist").iterdir()) == sorted(files)
