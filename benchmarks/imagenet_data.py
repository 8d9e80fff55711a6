"""How fast does resdsl's ImageNet pipeline feed a training loop? Decoded + augmented images/s of
`resdsl train --dataset imagenet`'s DataLoader (imagefolder.TrainBatches: simplejpeg decoding, augmentation
on uint8 tensors, whole batches made in the workers) against the torchvision reference pipeline
(torchvision.datasets.ImageFolder + PIL + transforms.RandomResizedCrop / RandomHorizontalFlip / ToTensor /
Normalize + a DataLoader), same JPEG folder, same workers, same batch, in one run, interleaved.

The folder: `--images` ImageNet-sized photographs (random crops, scales and flips of scikit-learn's two
sample photos, about 500x375, JPEG quality 90) over 10 classes, made once in a temporary folder and reused.

    .venv/bin/python benchmarks/imagenet_data.py                                     # print the figures
    .venv/bin/python benchmarks/imagenet_data.py --reference-python /tmp/tv/bin/python --write

torchvision: imported here if it is installed; else `--reference-python PY` runs the reference in an
interpreter that has it (this file in its `--reference-only` mode imports no resdsl), for example a separate
venv, `python3 -m venv /tmp/tv && /tmp/tv/bin/pip install torchvision pillow` (torchvision's PyPI wheels need
a CUDA torch, not the CPU torch of the project's venv); else resdsl's pipeline is timed alone and the table
says why.

Rates count images delivered to the training loop, ready to copy to the device: resdsl's batches are uint8
(it normalises on the device), torchvision's float32 normalised by the workers, as the reference recipe does.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CLASSES = 10
MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
HEADING = "## ImageNet data pipeline (benchmarks/imagenet_data.py)"


# ---------------------------------------------------------------------------------------- the folder


def make_folder(root: Path, images: int, seed: int = 0) -> Path:
    """root/train/<class>/*.JPEG: `images` crops of scikit-learn's sample photos, each resized to about
    500x375 (landscape or portrait), maybe flipped, JPEG quality 90; reused when complete."""
    done = root / f".complete-{images}"
    if done.exists():
        return root
    import numpy as np
    from PIL import Image
    from sklearn.datasets import load_sample_images

    photos = [Image.fromarray(p) for p in load_sample_images().images]
    rng = np.random.default_rng(seed)
    for i in range(images):
        photo = photos[i % len(photos)]
        w, h = photo.size
        cw, ch = int(w * rng.uniform(0.5, 1.0)), int(h * rng.uniform(0.5, 1.0))
        left, top = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
        size = (500, 375) if rng.random() < 0.75 else (375, 500)
        size = tuple(int(s * rng.uniform(0.9, 1.1)) for s in size)
        image = photo.crop((left, top, left + cw, top + ch)).resize(size, Image.Resampling.BICUBIC)
        if rng.random() < 0.5:
            image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        folder = root / "train" / f"n{i % CLASSES:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        image.save(folder / f"img_{i:05d}.JPEG", quality=90)
    done.touch()
    return root


# ---------------------------------------------------------------------------------------- timing


def time_loader(loader, batches: int, warmup: int) -> float:
    """Images/s over `batches` batches after `warmup` (the workers' start is not timed)."""
    it = iter(loader)
    for _ in range(warmup):
        next(it)
    start, n = time.perf_counter(), 0
    for _ in range(batches):
        x = next(it)[0]
        n += x.shape[0]
    return n / (time.perf_counter() - start)


def torchvision_rate(root: Path, workers: int, batch: int, batches: int, warmup: int) -> dict:
    """The reference: ImageFolder + PIL + RandomResizedCrop(224), flip, ToTensor, Normalize, DataLoader."""
    import torch
    import torchvision
    from torchvision import datasets, transforms

    torch.set_num_threads(1)
    transform = transforms.Compose(
        [
            transforms.RandomResizedCrop(224),
            transforms.RandomHorizontalFlip(),
            transforms.ToTensor(),
            transforms.Normalize(MEAN, STD),
        ]
    )
    dataset = datasets.ImageFolder(str(root / "train"), transform=transform)
    loader = torch.utils.data.DataLoader(
        dataset,
        batch_size=batch,
        shuffle=True,
        drop_last=True,
        num_workers=workers,
        persistent_workers=workers > 0,
        prefetch_factor=4 if workers else None,
    )
    rate = time_loader(loader, batches, warmup)
    return {"rate": rate, "torch": torch.__version__, "torchvision": torchvision.__version__}


def resdsl_rate(root: Path, recipe: str, workers: int, batch: int, batches: int, warmup: int) -> float:
    """resdsl's training pipeline: TrainBatches in DataLoader workers, as FolderTrainer runs it."""
    import torch

    from resdsl.train import imagefolder

    torch.set_num_threads(1)
    folder = imagefolder.scan(root / "train")
    cfg = {"batch": batch, "seed": 0, "iterations": (batches + warmup) * 4, "flip": True}
    if recipe == "torchvision":
        cfg.update(area_min=0.08, area_max=1.0, ratio_min=3 / 4, ratio_max=4 / 3)
    else:
        cfg.update(scale_min=256, scale_max=480, lighting=0.1)  # the lighting is added on the device
    dataset = imagefolder.TrainBatches(folder, cfg, 224)
    loader = imagefolder.loader(dataset, None, workers, pin=False, sampler=range(cfg["iterations"]))
    return time_loader(loader, batches, warmup)


def reference(args, root: Path) -> dict | None:
    """The torchvision rate: here, in --reference-python, or None (with why)."""
    common = ["--workers", str(args.workers), "--batch", str(args.batch), "--batches", str(args.batches)]
    common += ["--warmup", str(args.warmup)]
    if args.reference_python:
        cmd = [args.reference_python, __file__, "--reference-only", "--folder", str(root), *common]
        out = subprocess.run(cmd, check=True, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": ""})
        return json.loads(out.stdout.strip().splitlines()[-1])
    try:
        import torchvision  # noqa: F401
    except ImportError:
        return None
    return torchvision_rate(root, args.workers, args.batch, args.batches, args.warmup)


# ---------------------------------------------------------------------------------------- report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--folder", type=Path, help="the JPEG folder (default: made in the temporary folder)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--batches", type=int, default=12, help="timed batches per measurement")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--reference-python", help="an interpreter with torchvision for the reference pipeline")
    parser.add_argument("--reference-only", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--write", action="store_true", help="record the figures in docs/benchmarks.md")
    args = parser.parse_args()
    root = args.folder or Path(tempfile.gettempdir()) / f"resdsl-imagenet-bench-{args.images}"
    if args.reference_only:
        print(json.dumps(torchvision_rate(root, args.workers, args.batch, args.batches, args.warmup)))
        return
    root = make_folder(root, args.images)

    rates: dict[str, list[float]] = {"resdsl, torchvision recipe": [], "torchvision": [], "resdsl, paper's recipe": []}
    versions, why_not = None, ""
    for _ in range(args.rounds):
        rates["resdsl, torchvision recipe"].append(
            resdsl_rate(root, "torchvision", args.workers, args.batch, args.batches, args.warmup)
        )
        ref = reference(args, root)
        if ref is None:
            why_not = "torchvision is not importable here and no --reference-python was given"
        else:
            rates["torchvision"].append(ref["rate"])
            versions = f"torch {ref['torch']}, torchvision {ref['torchvision']}"
        rates["resdsl, paper's recipe"].append(
            resdsl_rate(root, "paper", args.workers, args.batch, args.batches, args.warmup)
        )
    print_report(args, root, rates, versions, why_not)


def print_report(args, root: Path, rates: dict, versions: str | None, why_not: str) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import torch
    from _bench import machine, replace_section, report

    from resdsl.train import imagefolder

    median = {name: statistics.median(r) for name, r in rates.items() if r}
    ref = median.get("torchvision")
    lines = [
        HEADING,
        "",
        f"{machine()}; torch {torch.__version__}, decoder {imagefolder.decoder_name()}; reference: "
        f"{versions or 'none (' + why_not + ')'}. {args.images} JPEGs (about 500x375, quality 90, scikit-learn's "
        f"sample photos) in {CLASSES} classes; {args.workers} DataLoader workers, batch {args.batch}, 224x224 "
        f"crops with flips; median of {args.rounds} rounds of {args.batches} batches after {args.warmup}, "
        "the pipelines interleaved.",
        "",
        "| pipeline | augmentation | images/s | / torchvision | paired |",
        "|---|---|---:|---:|---:|",
    ]
    what = {
        "resdsl, torchvision recipe": "RandomResizedCrop (area [0.08, 1]), flip; uint8 out",
        "torchvision": "RandomResizedCrop, flip, ToTensor, Normalize; float32 out",
        "resdsl, paper's recipe": "shorter side in [256, 480], 224 crop, flip; uint8 out",
    }
    for name, rate in median.items():
        ratio = f"**{rate / ref:.2f}**" if ref else "-"
        paired = f"{statistics.median(a / b for a, b in zip(rates[name], rates['torchvision'])):.2f}" if ref else "-"
        lines.append(f"| {name} | {what[name]} | {rate:.0f} | {ratio} | {paired} |")
    spread = max((max(r) - min(r)) / statistics.median(r) for r in rates.values() if r)
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    lines += [
        "",
        "/ torchvision is the ratio of the medians; paired the median of the ratios within a round. Largest spread "
        f"(max - min) / median of one pipeline's rounds: {spread:.0%}; load average (1, 5, 15 min) at the end: {load}.",
    ]
    report("\n".join(lines), args.write, lambda text: replace_section(HEADING, text))


if __name__ == "__main__":
    main()
