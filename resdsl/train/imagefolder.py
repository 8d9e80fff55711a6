"""ImageNet as an ImageFolder (`train/<class>/*.JPEG`, `val/<class>/*.JPEG`): scanning, class checks,
JPEG decoding and the paper's augmentation on uint8 tensors (torch, the standard library, simplejpeg or
Pillow; of resdsl only `files`, `datafiles` and `imagefiles`).

Scanning reads every image's header (imagefiles.check_header: a regular file, JPEG or PNG, within the pixel
limit, whole), so a bad file is an error naming it before training starts. Decoding (imagefiles.decode):
simplejpeg (libjpeg-turbo, about 3x Pillow's `Image.open().convert()` on this CPU, see docs/training.md) when
installed, else Pillow; files simplejpeg cannot read (PNG, CMYK JPEG) go through Pillow. A file that fails in a
DataLoader worker comes back as a `BadImage`, never as the worker's traceback. Resizing is torch's antialiased
bilinear `interpolate` on uint8 channels-last images, the fastest of the ways measured.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor

from resdsl.files import shown
from resdsl.train.datafiles import DataError
from resdsl.train.imagefiles import BadImage, UnreadableImage, check_header, decode, decoder_name, failure, max_pixels

__all__ = ["BadImage", "UnreadableImage", "decode", "decoder_name"]  # read through this module too

SUFFIXES = (".jpeg", ".jpg", ".png")
LAYOUT = "an ImageNet folder holds train/<class>/*.JPEG and val/<class>/*.JPEG (torchvision's ImageFolder layout)"
# AlexNet's PCA colour augmentation (Krizhevsky et al. 2012) with the eigenvalues and eigenvectors of
# ImageNet's RGB covariance, for pixels in [0, 1] (as fb.resnet.torch, which the paper's runs used).
EIGVAL = (0.2175, 0.0188, 0.0045)
EIGVEC = (
    (-0.5675, 0.7192, 0.4009),
    (-0.5808, -0.0045, -0.8140),
    (-0.5836, -0.6948, 0.4203),
)
TORCHVISION_MEAN, TORCHVISION_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
MEAN_IMAGES = 1000  # training images (a seeded sample) that the per-pixel mean is estimated from


# ---------------------------------------------------------------------------------------- the folder


@dataclass
class Folder:
    """One split: its class names (sorted folder names, as ImageFolder), image paths, labels and file sizes."""

    root: Path
    classes: list[str]
    paths: list[str]
    labels: list[int]
    sizes: list[int] = field(default_factory=list)  # bytes of each file, read while scanning

    def __len__(self) -> int:
        return len(self.paths)


def _is_image(name: str) -> bool:
    return name.lower().endswith(SUFFIXES) and not name.startswith(".")


def scan(root: Path) -> Folder:
    """A split's class folders and images, every image's header checked (imagefiles.check_header); DataError
    when the split is missing, flat or has an empty class, UnreadableImage naming the first bad file."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{shown(root)} is missing: {LAYOUT}")
    entries = sorted(os.scandir(root), key=lambda e: e.name)
    classes = [e.name for e in entries if e.is_dir() and not e.name.startswith(".")]
    loose = [e.name for e in entries if e.is_file() and _is_image(e.name)]
    if not classes:
        what = f"{len(loose)} images but no class folders" if loose else "no class folders"
        raise DataError(
            f"{shown(root)} holds {what}: sort the images into {shown(root.name)}/<class>/ folders, one per class "
            f"(for ImageNet's val images, e.g. with ILSVRC2012's valprep.sh)"
        )
    paths: list[str] = []
    labels: list[int] = []
    sizes: list[int] = []
    bad: list[UnreadableImage] = []
    limit = max_pixels()
    for label, name in enumerate(classes):
        files = sorted(f for f in os.listdir(root / name) if _is_image(f))
        if not files:
            raise DataError(f"{shown(root / name)} holds no images ({', '.join(SUFFIXES)})")
        for f in files:
            path = str(root / name / f)
            try:
                sizes.append(check_header(path, limit))
            except UnreadableImage as err:
                bad.append(err)
                continue
            paths.append(path)
            labels.append(label)
    if bad:
        more = f" (and {len(bad) - 1} more bad files in {shown(root)})" if len(bad) > 1 else ""
        raise UnreadableImage(f"{bad[0]}{more}")
    return Folder(root, classes, paths, labels, sizes)


def scan_imagenet(root: Path, classes: int) -> tuple[Folder, Folder]:
    """train/ and val/ of an ImageFolder, checked against the network's class count and each other."""
    root = Path(root)
    train, val = scan(root / "train"), scan(root / "val")
    if len(train.classes) != classes:
        raise DataError(
            f"{train.root} has {len(train.classes)} class folders but the network has {classes} classes "
            f"(set `classes {len(train.classes)}` in the spec or --set classes={len(train.classes)})"
        )
    if val.classes != train.classes:
        missing = [c for c in train.classes if c not in val.classes]
        extra = [c for c in val.classes if c not in train.classes]
        parts = [f"missing {_few(missing)}" if missing else "", f"extra {_few(extra)}" if extra else ""]
        raise DataError(
            f"the class folders of {val.root} differ from {train.root}'s: {'; '.join(p for p in parts if p)}"
        )
    return train, val


def _few(names: list[str], n: int = 3) -> str:
    return ", ".join(names[:n]) + (f" and {len(names) - n} more" if len(names) > n else "")


# ---------------------------------------------------------------------------------------- geometry


def shorter_side_size(h: int, w: int, size: int) -> tuple[int, int]:
    """(h, w) with the shorter side `size` and the aspect ratio kept (the longer side truncated, as torchvision)."""
    if h <= w:
        return size, max(1, int(size * w / h))
    return max(1, int(size * h / w)), size


def resize_shorter(image: Tensor, size: int) -> Tensor:
    """Antialiased bilinear resize of a uint8 C x H x W image to a shorter side of `size`; ValueError when that
    would pass the pixel limit (a 1 x 100,000 strip resized to a shorter side of 256)."""
    h, w = shorter_side_size(*image.shape[1:], size)
    if h * w > max_pixels():
        raise ValueError(
            f"its shape {image.shape[2]}x{image.shape[1]} resized to a shorter side of {size} is {w}x{h} pixels, "
            f"more than the limit of {max_pixels():,}"
        )
    return resize(image, (h, w))


def center_crop(image: Tensor, size: int) -> Tensor:
    h, w = image.shape[1:]
    top, left = (h - size) // 2, (w - size) // 2
    return image[:, top : top + size, left : left + size]


def ten_crop(image: Tensor, size: int) -> Tensor:
    """The four corner crops and the centre crop, then the same five flipped: 10 x C x size x size
    (torchvision's TenCrop order)."""
    h, w = image.shape[1:]
    corners = [image[:, :size, :size], image[:, :size, w - size :], image[:, h - size :, :size]]
    crops = [*corners, image[:, h - size :, w - size :], center_crop(image, size)]
    five = torch.stack(crops)
    return torch.cat([five, five.flip(-1)])


def test_size(crop: int) -> int:
    """The shorter side a test image is resized to before the centre crop: 256 for 224 (ratio 8/7)."""
    return round(crop * 256 / 224)


# ---------------------------------------------------------------------------------------- augmentation


PARAMS = 8  # columns of draw_params


def draw_params(n: int, cfg: dict, crop: int, gen: torch.Generator) -> Tensor:
    """Per-image augmentation of a batch of n, float64 n x 8: shorter side, crop position in [0, 1) (y, x),
    flip, the three PCA noise coefficients (alpha ~ N(0, lighting)) and, for RandomResizedCrop (`area`),
    the seed of the image's box (drawn once its size is known: resized_crop_box)."""
    lo = int(cfg.get("scale_min") or 0) or test_size(crop)
    hi = int(cfg.get("scale_max") or 0) or lo
    out = torch.zeros(n, PARAMS, dtype=torch.float64)
    out[:, 0] = torch.randint(lo, hi + 1, (n,), generator=gen).double()
    out[:, 1:3] = torch.rand(n, 2, generator=gen, dtype=torch.float64)
    if cfg.get("flip"):
        out[:, 3] = torch.randint(0, 2, (n,), generator=gen).double()
    out[:, 4:7] = torch.randn(n, 3, generator=gen, dtype=torch.float64) * float(cfg.get("lighting") or 0.0)
    if cfg.get("area_min"):  # drawn last: the other columns are those of a recipe without it
        out[:, 7] = torch.randint(0, 2**52, (n,), generator=gen, dtype=torch.int64).double()
    return out


def resized_crop_box(
    h: int, w: int, area: tuple[float, float], ratio: tuple[float, float], gen: torch.Generator
) -> tuple[int, int, int, int]:
    """(top, left, height, width) of torchvision's RandomResizedCrop on an h x w image, its sampling rule
    with `gen` for the global generator: up to 10 tries of an area fraction uniform in `area` and an aspect
    ratio w/h log-uniform in `ratio` that fit the image, else the centre crop of the ratio clamped to `ratio`."""
    log_ratio = torch.log(torch.tensor(ratio))
    for _ in range(10):
        target_area = h * w * torch.empty(1).uniform_(area[0], area[1], generator=gen).item()
        aspect = math.exp(torch.empty(1).uniform_(float(log_ratio[0]), float(log_ratio[1]), generator=gen).item())
        cw = int(round(math.sqrt(target_area * aspect)))
        ch = int(round(math.sqrt(target_area / aspect)))
        if 0 < cw <= w and 0 < ch <= h:
            top = int(torch.randint(0, h - ch + 1, (1,), generator=gen).item())
            left = int(torch.randint(0, w - cw + 1, (1,), generator=gen).item())
            return top, left, ch, cw
    in_ratio = w / h
    if in_ratio < min(ratio):
        cw, ch = w, int(round(w / min(ratio)))
    elif in_ratio > max(ratio):
        ch, cw = h, int(round(h * max(ratio)))
    else:
        ch, cw = h, w
    return (h - ch) // 2, (w - cw) // 2, ch, cw


def resize(image: Tensor, size: tuple[int, int]) -> Tensor:
    """Antialiased bilinear resize of a uint8 C x H x W image (channels-last: the fastest of those measured)."""
    if tuple(image.shape[1:]) == size:
        return image
    x = image[None].contiguous(memory_format=torch.channels_last)
    return F.interpolate(x, size=size, mode="bilinear", antialias=True, align_corners=False)[0]


def augment_image(image: Tensor, params: Tensor, crop: int, cfg: dict | None = None) -> Tensor:
    """One uint8 image augmented by one row of draw_params: the paper's scale augmentation and a random
    crop x crop, or (cfg with `area_min`) RandomResizedCrop's box resized to crop x crop; then the flip."""
    if cfg and cfg.get("area_min"):
        area, ratio = (cfg["area_min"], cfg["area_max"]), (cfg["ratio_min"], cfg["ratio_max"])
        gen = torch.Generator().manual_seed(int(params[7]))
        top, left, ch, cw = resized_crop_box(*image.shape[1:], area, ratio, gen)
        out = resize(image[:, top : top + ch, left : left + cw], (crop, crop))
    else:
        image = resize_shorter(image, int(params[0]))
        h, w = image.shape[1:]
        top = min(int(float(params[1]) * (h - crop + 1)), h - crop)
        left = min(int(float(params[2]) * (w - crop + 1)), w - crop)
        out = image[:, top : top + crop, left : left + crop]
    return out.flip(-1) if params[3] else out


def lighting_rgb(alpha: Tensor) -> Tensor:
    """AlexNet's PCA noise: the RGB offset (in [0, 1] units) for coefficients alpha (N x 3) -> N x 3."""
    eigvec = torch.tensor(EIGVEC, dtype=alpha.dtype, device=alpha.device)
    eigval = torch.tensor(EIGVAL, dtype=alpha.dtype, device=alpha.device)
    return (alpha * eigval) @ eigvec.T


def epoch_order(n: int, seed: int, epoch: int) -> Tensor:
    """The seeded order of the n training images in one epoch (a pure function: no state to resume)."""
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed * 1_000_003 + epoch))


class TrainBatches(torch.utils.data.Dataset):
    """Item i is this rank's slice of global batch i: uint8 images N x C x crop x crop, labels and the PCA
    coefficients, decoded and augmented in the DataLoader's worker. Which images and which augmentation
    follow from (seed, i) alone, so any worker can make any batch and a resumed run sees the same ones."""

    def __init__(self, folder: Folder, cfg: dict, crop: int, rank: int = 0, world: int = 1) -> None:
        self.folder = folder
        self.cfg = cfg
        self.crop = crop
        self.batch = int(cfg["batch"])
        self.local = self.batch // world
        self.rank = rank
        self.per_epoch = len(folder) // self.batch  # the last partial batch is dropped
        self.seed = int(cfg["seed"])
        self._order: tuple[int, Tensor] | None = None

    def __len__(self) -> int:
        return int(self.cfg["iterations"])

    def indices(self, iteration: int) -> Tensor:
        epoch, step = divmod(iteration, self.per_epoch)
        if self._order is None or self._order[0] != epoch:
            self._order = (epoch, epoch_order(len(self.folder), self.seed, epoch))
        return self._order[1][step * self.batch : (step + 1) * self.batch]

    def params(self, iteration: int) -> Tensor:
        gen = torch.Generator().manual_seed(self.seed * 1_000_003 + 500_009 + iteration)
        return draw_params(self.batch, self.cfg, self.crop, gen)

    def __getitem__(self, iteration: int) -> tuple[Tensor, Tensor, Tensor] | BadImage:
        lo, hi = self.rank * self.local, (self.rank + 1) * self.local
        idx, params = self.indices(iteration)[lo:hi], self.params(iteration)[lo:hi]
        images = []
        for i, p in zip(idx.tolist(), params):
            path = self.folder.paths[i]
            try:
                images.append(augment_image(decode(path), p, self.crop, self.cfg))
            except Exception as err:  # noqa: BLE001 - handed back, never a worker's traceback
                return failure(path, err)
        labels = torch.tensor([self.folder.labels[i] for i in idx.tolist()], dtype=torch.int64)
        return torch.stack(images), labels, params[:, 4:7].float()


class TestImages(torch.utils.data.Dataset):
    """Item i is test image i (of this rank's shard) as the evaluation mode wants it: `center` one crop
    (C x S x S), `ten` ten crops (10 x C x S x S), `scales` the whole image at each shorter side (a list)."""

    def __init__(
        self, folder: Folder, mode: str, crop: int, scales: tuple[int, ...] = (), rank: int = 0, world: int = 1
    ) -> None:
        self.folder = folder
        self.mode = mode
        self.crop = crop
        self.scales = scales
        self.items = list(range(rank, len(folder), world))

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int):
        path = self.folder.paths[self.items[i]]
        try:
            return self._item(path, self.folder.labels[self.items[i]])
        except Exception as err:  # noqa: BLE001 - handed back, never a worker's traceback
            return failure(path, err)

    def _item(self, path: str, label: int):
        image = decode(path)
        if self.mode == "scales":
            return [resize_shorter(image, s).contiguous() for s in self.scales], label
        image = resize_shorter(image, test_size(self.crop))
        if self.mode == "ten":
            return ten_crop(image, self.crop), label
        return center_crop(image, self.crop).contiguous(), label


def _single(items):
    return items[0]


def _collate(items):
    """default_collate, unless an item is a BadImage: then that, for the main process to report."""
    bad = next((item for item in items if isinstance(item, BadImage)), None)
    return bad if bad is not None else torch.utils.data.default_collate(items)


def next_item(batches, what: str):
    """The next item of a DataLoader's iterator; a worker that died (killed for memory, a crash in a
    decoder) is a DataError of one line, not the loader's traceback."""
    try:
        return next(batches)
    except StopIteration:
        raise
    except Exception as err:  # noqa: BLE001 - whatever the loader re-raises from a worker
        first = (str(err).strip().splitlines() or [type(err).__name__])[0][:200]
        raise DataError(f"reading the {what} images failed ({type(err).__name__}: {first})") from None


def items(loader, what: str):
    """A loader's items, each through next_item."""
    batches = iter(loader)
    while True:
        try:
            yield next_item(batches, what)
        except StopIteration:
            return


def checked(item):
    """A batch from a loader over TrainBatches or TestImages, or the UnreadableImage a worker handed back."""
    if isinstance(item, BadImage):
        raise item.error()
    return item


def loader(dataset, batch: int | None, workers: int, pin: bool, sampler=None) -> torch.utils.data.DataLoader:
    """A DataLoader over `dataset` with persistent, prefetching workers (none: in this process)."""
    kwargs = {"persistent_workers": True, "prefetch_factor": 4} if workers else {}
    if batch is None:  # the dataset yields whole batches
        return torch.utils.data.DataLoader(
            dataset, batch_size=None, sampler=sampler, num_workers=workers, pin_memory=pin, **kwargs
        )
    collate = _single if batch == 1 and isinstance(dataset, TestImages) and dataset.mode == "scales" else _collate
    return torch.utils.data.DataLoader(
        dataset, batch_size=batch, num_workers=workers, pin_memory=pin, collate_fn=collate, **kwargs
    )


# ---------------------------------------------------------------------------------------- normalisation


def normalizer(folder: Folder, mode: str, crop: int, n: int = MEAN_IMAGES, seed: int = 0) -> tuple[Tensor, Tensor]:
    """(mean, std), each 3 x crop x crop, for images scaled to [0, 1]: the per-pixel mean (or per-channel mean
    and std) of a seeded sample of up to n training images seen as at test time (shorter side resized, centre
    crop), torchvision's ImageNet constants, or none."""
    shape = (3, crop, crop)
    if mode == "none":
        return torch.zeros(shape), torch.ones(shape)
    if mode == "torchvision":
        mean = torch.tensor(TORCHVISION_MEAN)[:, None, None].expand(shape).clone()
        return mean, torch.tensor(TORCHVISION_STD)[:, None, None].expand(shape).clone()
    pick = torch.randperm(len(folder), generator=torch.Generator().manual_seed(seed))[:n].sort().values
    total = torch.zeros(shape, dtype=torch.float64)
    total_sq = torch.zeros(shape, dtype=torch.float64)
    for i in pick.tolist():
        x = center_crop(resize_shorter(decode(folder.paths[i]), test_size(crop)), crop).double() / 255.0
        total += x
        total_sq += x * x
    count = len(pick)
    if mode == "per_pixel_mean":
        return (total / count).float(), torch.ones(shape)
    pixels = count * crop * crop
    mean_c = total.sum((1, 2)) / pixels
    std_c = (total_sq.sum((1, 2)) / pixels - mean_c**2).clamp_min(1e-12).sqrt()
    return mean_c[:, None, None].expand(shape).float().clone(), std_c[:, None, None].expand(shape).float().clone()


def at_size(stat: Tensor, h: int, w: int) -> Tensor:
    """A C x S x S mean or std for images of another size: itself, or its per-channel average (multi-scale)."""
    if tuple(stat.shape[1:]) == (h, w):
        return stat
    return stat.mean((1, 2), keepdim=True)


def files_digest(train: Folder, val: Folder, sizes: bool = True) -> tuple[str, int]:
    """A blake2b of the class names, relative paths and sizes of every image (not the pixels: ImageNet is
    140 GB; without `sizes`, of the names only), and the number of files."""
    import hashlib

    h = hashlib.blake2b(digest_size=16)
    for folder in (train, val):
        h.update(b"\0".join(os.fsencode(c) for c in folder.classes))  # names need not be UTF-8
        lengths = (folder.sizes or [os.path.getsize(p) for p in folder.paths]) if sizes else [None] * len(folder)
        for path, size in zip(folder.paths, lengths):
            tail = f"\0{size}\n" if sizes else "\n"
            h.update(os.fsencode(os.path.relpath(path, folder.root.parent)) + tail.encode())
    return h.hexdigest(), len(train) + len(val)


def crop_of(cfg: dict, input_shape: tuple[int, ...]) -> int:
    """The training crop: the recipe's, or the input's size."""
    return int(cfg.get("crop") or 0) or int(input_shape[1])
