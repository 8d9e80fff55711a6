"""Data sets for `resdsl train`: CIFAR-10/100, MNIST and SVHN (local or downloaded), npz, scikit-learn digits,
synthetic, and ImageNet as an image folder.

Every loader but ImageNet's returns uint8 images N x C x H x W and int64 labels as torch tensors
(x_train, y_train, x_test, y_test), checked against the network's input shape and class count;
`imagenet` returns the scanned folders ({"train": Folder, "val": Folder}, see `imagefolder`), whose
images are decoded while training.
"""

from __future__ import annotations

import hashlib
import os
import tarfile
from pathlib import Path

import torch

from resdsl.diagnostics import InputError
from resdsl.train import datafiles, digitfiles, imagefolder

CACHE = Path(os.environ.get("RESDSL_DATA", Path.home() / ".cache" / "resdsl" / "data"))
ARCHIVES = {
    "cifar10": (
        "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
        "c58f30108f718f92721af3b95e74349a",
        "cifar-10-batches-py",
    ),
    "cifar100": (
        "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",
        "eb9058c3a382ffc7106e4002c42a8d85",
        "cifar-100-python",
    ),
}
MNIST_URL = "https://ossci-datasets.s3.amazonaws.com/mnist/"  # torchvision's mirror of yann.lecun.com's files
SVHN_URL = "http://ufldl.stanford.edu/housenumbers/"
FILES = {  # data sets of separate files: (url, md5) of each, downloaded into CACHE/<name>
    "mnist": {
        "train-images-idx3-ubyte.gz": (MNIST_URL, "f68b3c2dcbeaaa9fbdd348bbdeb94873"),
        "train-labels-idx1-ubyte.gz": (MNIST_URL, "d53e105ee54ea40749a09fcbcd1e9432"),
        "t10k-images-idx3-ubyte.gz": (MNIST_URL, "9fb629c4189551a2d022fa330f9573f3"),
        "t10k-labels-idx1-ubyte.gz": (MNIST_URL, "ec29112dd5afa0611ce80d1b7f02629c"),
    },
    "svhn": {
        "train_32x32.mat": (SVHN_URL, "e26dedcc434d2e4c54c9b2d4a06d8373"),
        "test_32x32.mat": (SVHN_URL, "eb5a983be6a315427106f1b164d9cef3"),
    },
}
READERS = {"mnist": digitfiles.read_mnist, "svhn": digitfiles.read_svhn}
IMAGE_SHAPES = {"mnist": (1, 28, 28), "svhn": (3, 32, 32)}
DOWNLOAD_TIMEOUT = 5.0  # seconds to connect: without network the run fails at once
DIGITS_TEST = 360  # of scikit-learn's 1797 digits, held out for testing (a fixed seeded split)
SYNTHETIC_TRAIN, SYNTHETIC_TEST = 5000, 1000


def npz_arrays(path: Path | None, max_bytes: int | None = None) -> dict:
    """An npz file's arrays (shape, dtype, bytes) from its headers, refused if they would unpack to more than
    `max_bytes` (default: half this machine's memory); nothing is unpacked."""
    if path is None:
        raise InputError("--dataset npz needs --data FILE.npz (x_train, y_train, x_test, y_test)")
    try:
        arrays = datafiles.npz_arrays(path)
        datafiles.check_npz_size(path, arrays, max_bytes)
    except datafiles.DataError as err:
        raise InputError(f"{err}; {_where_hint('npz', path)}") from None
    return arrays


def load(
    name: str,
    path: Path | None,
    input_shape: tuple[int, int, int],
    classes: int,
    quiet: bool = False,
    max_bytes: int | None = None,
) -> dict[str, torch.Tensor]:
    """The named data set, checked against the network (InputError on any problem)."""
    try:
        if name == "imagenet":
            return imagenet(path, classes)
        if name in ARCHIVES:
            precheck(name, path, input_shape)
            data = datafiles.read_cifar(cifar_dir(name, path, quiet))
        elif name in FILES:
            precheck(name, path, input_shape)
            data = READERS[name](files_dir(name, path, quiet))
        elif name == "npz":
            if path is None:
                raise InputError("--dataset npz needs --data FILE.npz (x_train, y_train, x_test, y_test)")
            data = datafiles.read_npz(path, max_bytes)
        elif name == "digits":
            data = digits(input_shape)
        elif name == "synthetic":
            data = synthetic(input_shape, classes)
        else:
            raise InputError(
                f"unknown data set `{name}` (cifar10 | cifar100 | mnist | svhn | imagenet | npz | digits | synthetic)"
            )
        datafiles.check_data(data, input_shape, classes)
    except datafiles.DataError as err:
        raise InputError(f"{err}; {getattr(err, 'hint', None) or _where_hint(name, path)}") from None
    return data


def precheck(name: str, path: Path | None, input_shape: tuple[int, ...]) -> None:
    """What fails at once, before the memory estimate: no ImageNet folder, or CIFAR for a network that does not
    take 32x32 images (never a download of images it cannot use)."""
    if name == "imagenet":
        imagenet_dir(path)
    elif name in ARCHIVES and tuple(input_shape[1:]) != (32, 32):
        raise InputError(
            f"--dataset {name} has 32x32 images but the network takes {'x'.join(map(str, input_shape))}; "
            f"train it on ImageNet with --dataset imagenet --data DIR, or --set input=3x32x32"
        )
    elif name in IMAGE_SHAPES and tuple(input_shape) != IMAGE_SHAPES[name]:
        native = "x".join(map(str, IMAGE_SHAPES[name]))
        raise InputError(
            f"--dataset {name} has {native} images but the network takes {'x'.join(map(str, input_shape))}; "
            f"use a spec made for them, or --set input={native}"
        )


def _where_hint(name: str, path: Path | None) -> str:
    if name in ARCHIVES:
        return f"use --data DIR with the python-pickle files of {name}, or remove them so they are downloaded again"
    if name == "imagenet":
        return imagefolder.LAYOUT
    if name in FILES:
        return f"use --data DIR holding {_file_list(name)}, or delete them from {CACHE / name} to download them again"
    if name == "npz":
        return "write uint8 x_train/x_test (N x C x H x W) and integer y_train/y_test with numpy.savez"
    return "use a data set whose images have the network's input shape and classes"


split_val = datafiles.split_val


def sizes(data: dict) -> tuple[int, int]:
    """(training images, test images) of a loaded data set, in memory or an image folder."""
    if "train" in data:
        return len(data["train"]), len(data["val"])
    return int(data["x_train"].shape[0]), int(data["x_test"].shape[0])


# ---------------------------------------------------------------------------------------- ImageNet

IMAGENET_WHERE = (
    "ImageNet cannot be downloaded automatically: pass --data DIR, the folder holding train/<class>/*.JPEG and "
    "val/<class>/*.JPEG (torchvision's ImageFolder layout), or put that folder at {cache}"
)


def imagenet_dir(path: Path | None) -> Path:
    """--data, else the cache's `imagenet` folder; InputError saying where ImageNet goes."""
    if path is None:
        cached = CACHE / "imagenet"
        if cached.is_dir():
            return cached
        raise InputError(IMAGENET_WHERE.format(cache=cached))
    path = Path(path)
    if not path.is_dir():
        raise InputError(f"--data {path}: no such directory; {imagefolder.LAYOUT}")
    return path


def imagenet(path: Path | None, classes: int) -> dict:
    """The train/ and val/ folders, scanned and checked against the network's classes."""
    train, val = imagefolder.scan_imagenet(imagenet_dir(path), classes)
    return {"train": train, "val": val}


def imagenet_normalizer(data: dict, cfg: dict, crop: int) -> None:
    """The mean and std of an image folder's training images (imagefolder.normalizer), computed into
    data["normalizer"] before the run directory is touched: an image that fails to decode is an InputError
    naming it, with nothing written."""
    try:
        data["normalizer"] = imagefolder.normalizer(data["train"], cfg["normalize"], crop, seed=int(cfg["seed"]))
    except datafiles.DataError as err:
        raise InputError(f"{err}; {getattr(err, 'hint', None) or imagefolder.LAYOUT}") from None


# ---------------------------------------------------------------------------------------- CIFAR


def cifar_dir(name: str, path: Path | None, quiet: bool = False) -> Path:
    """A directory holding the python-pickle batches: --data, the cache, or a fresh download."""
    url, md5, folder = ARCHIVES[name]
    if path is not None:
        path = Path(path)
        if (path / folder).is_dir():
            return path / folder
        if not path.exists():
            raise InputError(f"--data {path}: no such directory")
        return path
    cached = CACHE / folder
    if cached.is_dir():
        return cached
    archive = CACHE / url.rsplit("/", 1)[1]
    if not archive.exists() or _md5(archive) != md5:
        download(url, archive, md5, quiet)
    try:
        with tarfile.open(archive) as tar:
            tar.extractall(CACHE, filter="data")
    except (tarfile.TarError, OSError, EOFError) as err:
        raise InputError(f"{archive} is corrupt ({err}); delete it and run again") from None
    return cached


def _md5(path: Path) -> str:
    h = hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def download(url: str, target: Path, md5: str, quiet: bool = False, where: str | None = None) -> None:
    """Fetch an archive with a progress bar, verify its md5, then move it into place; `where` says what to do
    instead (default: CIFAR's)."""
    import urllib.error
    import urllib.request

    folder = target.parent
    where = where or (
        f"download {url} yourself and put the extracted folder in {folder} "
        f"(or pass --data DIR holding data_batch_1..5 and test_batch; RESDSL_DATA moves the cache)"
    )
    folder.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(target.suffix + ".part")
    try:
        with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT) as response, open(partial, "wb") as out:
            total = int(response.headers.get("Content-Length") or 0)
            from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn

            with Progress(
                "[progress.description]{task.description}",
                BarColumn(),
                DownloadColumn(),
                TransferSpeedColumn(),
                disable=quiet,
            ) as progress:
                task = progress.add_task(f"downloading {target.name}", total=total or None)
                for chunk in iter(lambda: response.read(1 << 20), b""):
                    out.write(chunk)
                    progress.update(task, advance=len(chunk))
    except (urllib.error.URLError, OSError, TimeoutError) as err:
        partial.unlink(missing_ok=True)
        reason = getattr(err, "reason", err)
        raise InputError(f"cannot download {url} ({reason}); {where}") from None
    if _md5(partial) != md5:
        partial.unlink(missing_ok=True)
        raise InputError(f"the download of {url} failed its md5 check (truncated?); run again or {where}")
    os.replace(partial, target)


# ---------------------------------------------------------------------------------------- MNIST, SVHN


def _file_list(name: str) -> str:
    return ", ".join(FILES[name])


def files_dir(name: str, path: Path | None, quiet: bool = False) -> Path:
    """The folder holding a data set's files: --data, else the cache, where missing files are downloaded
    (each md5-checked; an idx file already there without .gz counts)."""
    if path is not None:
        path = Path(path)
        if not path.is_dir():
            raise InputError(f"--data {path}: no such directory; {_where_hint(name, path)}")
        return path
    folder = CACHE / name
    for file, (url, md5) in FILES[name].items():
        if (folder / file).is_file() or (folder / file.removesuffix(".gz")).is_file():
            continue
        where = (
            f"download {url}{file} yourself and put it in {folder} (or pass --data DIR holding "
            f"{_file_list(name)}; RESDSL_DATA moves the cache)"
        )
        download(url + file, folder / file, md5, quiet, where)
    return folder


# ---------------------------------------------------------------------------------------- small sets


def digits(input_shape: tuple[int, int, int]) -> dict[str, torch.Tensor]:
    """scikit-learn's 1797 handwritten 8x8 digits, resized (bilinear) and replicated to C x H x W."""
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise InputError("--dataset digits needs scikit-learn: pip install 'resdsl[digits]'") from None
    import torch.nn.functional as F

    bunch = load_digits()
    x = torch.as_tensor(bunch.images, dtype=torch.float32)[:, None] / 16.0  # (N, 1, 8, 8) in [0, 1]
    c, h, w = input_shape
    x = F.interpolate(x, size=(h, w), mode="bilinear", align_corners=False).expand(-1, c, -1, -1)
    x = (x.clamp(0, 1) * 255).round().to(torch.uint8).contiguous()
    y = torch.as_tensor(bunch.target, dtype=torch.int64)
    perm = torch.randperm(x.shape[0], generator=torch.Generator().manual_seed(0))
    test, train = perm[:DIGITS_TEST].sort().values, perm[DIGITS_TEST:].sort().values
    return {"x_train": x[train], "y_train": y[train], "x_test": x[test], "y_test": y[test]}


def synthetic(input_shape: tuple[int, int, int], classes: int) -> dict[str, torch.Tensor]:
    """Random images and labels of the network's shape: for throughput, not for learning."""
    g = torch.Generator().manual_seed(0)
    n = SYNTHETIC_TRAIN + SYNTHETIC_TEST
    x = torch.randint(0, 256, (n, *input_shape), generator=g, dtype=torch.uint8)
    y = torch.randint(0, classes, (n,), generator=g)
    return {
        "x_train": x[:SYNTHETIC_TRAIN],
        "y_train": y[:SYNTHETIC_TRAIN],
        "x_test": x[SYNTHETIC_TRAIN:],
        "y_test": y[SYNTHETIC_TRAIN:],
    }
