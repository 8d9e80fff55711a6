"""What several test modules share: one intra-op thread for in-process trainings, and the probe
that runs the CLI in a fresh interpreter with heavy modules made unimportable."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

HEAVY = ("torch", "numpy", "jinja2", "graphviz")  # what check and info must never load

# Runs the CLI in-process with the BLOCKED modules unimportable, then asserts none got loaded; the
# CLI's own exit code is printed last on stderr (`exit N`), the probe's is 0 unless one was loaded.
_PROBE = textwrap.dedent(
    """
    import sys

    BLOCKED = {blocked!r}

    class Blocker:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                raise ImportError("resdsl imported " + name)
            return None

    sys.meta_path.insert(0, Blocker())
    {preload}
    from resdsl.cli.main import main

    try:
        main(sys.argv[1:], prog_name="resdsl")
    except SystemExit as exit:
        code = exit.code or 0
    else:
        code = 0
    assert not [m for m in BLOCKED if m in sys.modules], "a blocked module was imported"
    print("exit", code, file=sys.stderr)
    """
)


def run_without(*args: str, blocked: tuple[str, ...] = HEAVY, preload: str = "") -> subprocess.CompletedProcess:
    """`resdsl ARGS` in a fresh interpreter where `blocked` cannot be imported; `preload` is imported
    before the CLI (to show the probe catches it)."""
    code = _PROBE.format(blocked=blocked, preload=f"import {preload}" if preload else "")
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120, cwd=ROOT)


@pytest.fixture
def one_thread(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """One intra-op thread for in-process trainings: on a 2-core machine that other jobs share, two
    OpenMP threads waiting for each other made the digits run 4x slower (docs/training.md). The runner
    chooses its threads itself (resdsl/train/threads.py) and honours OMP_NUM_THREADS: set, the choice
    does not follow the load, and a bitwise comparison of two runs compares the same thread count."""
    import torch

    monkeypatch.setenv("OMP_NUM_THREADS", "1")

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# Classes of the small ImageFolder: (sample photo, region as fractions top, left, bottom, right). Each
# image is a random part of its region, scaled, maybe flipped, JPEG-encoded: real photographs, and
# classes a small network can tell apart.
IMAGEFOLDER_CLASSES = {
    "n00_temple": ("china.jpg", (0.35, 0.0, 1.0, 0.5)),
    "n01_sky": ("china.jpg", (0.0, 0.3, 0.3, 1.0)),
    "n02_petals": ("flower.jpg", (0.2, 0.3, 0.8, 0.7)),
    "n03_leaves": ("flower.jpg", (0.0, 0.0, 0.5, 0.25)),
}


def write_imagefolder(root: Path, train: int = 12, val: int = 4, seed: int = 0) -> Path:
    """root/train/<class>/*.JPEG and root/val/<class>/*.JPEG from scikit-learn's two sample photographs:
    per class `train` and `val` images, shorter sides 56 to 96 pixels."""
    import numpy as np
    from PIL import Image
    from sklearn.datasets import load_sample_image

    rng = np.random.default_rng(seed)
    photos: dict[str, Image.Image] = {}
    for split, count in (("train", train), ("val", val)):
        for name, (photo, (top, left, bottom, right)) in IMAGEFOLDER_CLASSES.items():
            if photo not in photos:
                photos[photo] = Image.fromarray(load_sample_image(photo))
            image = photos[photo]
            w, h = image.size
            folder = root / split / name
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(count):
                rh, rw = (bottom - top) * h, (right - left) * w
                ch, cw = rh * rng.uniform(0.5, 0.8), rw * rng.uniform(0.5, 0.8)
                y0 = top * h + rng.uniform(0, rh - ch)
                x0 = left * w + rng.uniform(0, rw - cw)
                part = image.crop((int(x0), int(y0), int(x0 + cw), int(y0 + ch)))
                short = int(rng.integers(56, 97))
                scale = short / min(part.size)
                part = part.resize((max(short, round(part.size[0] * scale)), max(short, round(part.size[1] * scale))))
                if rng.integers(2):
                    part = part.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
                part.save(folder / f"{name}_{split}_{i:03d}.JPEG", quality=90)
    return root


@pytest.fixture(scope="session")
def image_folder(tmp_path_factory) -> Path:
    """A small ImageNet-layout folder of real photographs (see write_imagefolder): 4 classes, 48 + 16 images."""
    return write_imagefolder(tmp_path_factory.mktemp("imagenet") / "imagenet")
