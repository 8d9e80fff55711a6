"""Bad images never cost training (issue 19): every image's header is read when a folder is indexed, so a
garbage or truncated JPEG, a 0-byte file, a symlink to a text file, a directory or a FIFO named x.JPEG and a
decompression bomb are one-line errors naming the file before anything is written; an image that fails later,
in a DataLoader worker, comes back as a clean error after a checkpoint (train) or naming it (eval), never as
the worker's traceback; names that are not UTF-8 are indexed, digested and printed."""

from __future__ import annotations

import io
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from resdsl.cli.main import main
from resdsl.train import imagefolder
from resdsl.train.imagefiles import UnreadableImage, check_header

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py

TINY = """\
import "std.rd"

network tiny_resnet {
    input 3x48x48
    classes 4
    shortcut B
    stem { conv 3x3, 8, stride: 2; bn; relu }
    stage conv2 = basic(8) * 1
    head { avgpool global; fc classes }
}

train {
    dataset imagenet
    batch 16
    optimizer sgd(lr: 0.05, momentum: 0.9, weight_decay: 1e-4)
    augment scale: [48, 56], crop: 48, flip: true
    normalize per_pixel_mean
    eval_every 2
    checkpoint_every 100
}
"""
HINT = "replace or remove the file; resdsl reads the header of every image when it indexes a folder"


def run_cli(*args) -> object:
    return CliRunner().invoke(main, [*map(str, args)])


def jpeg(w: int = 64, h: int = 56, seed: int = 0) -> bytes:
    pixels = (np.random.default_rng(seed).random((h, w, 3)) * 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def bomb() -> bytes:
    """A real JPEG whose frame header says 20000x20000: what a decoder would allocate 1.2 GB for."""
    data = bytearray(jpeg())
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = (20000).to_bytes(2, "big") * 2
    return bytes(data)


@pytest.fixture
def folder(image_folder: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(image_folder, tmp_path / "data"))


@pytest.fixture
def spec(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.rd"
    path.write_text(TINY)
    return path


def weights(spec: Path, path: Path) -> Path:
    import torch

    from resdsl.backends.pytorch.codegen import render_model
    from resdsl.backends.pytorch.verify import load_module
    from resdsl.ir.pipeline import load_network

    torch.save(load_module(render_model(load_network(spec, {}), spec)).build_model().state_dict(), path)
    return path


def plant(folder: Path, name: str, kind: str) -> Path:
    path = folder / "val" / "n01_sky" / name
    if kind == "garbage":
        path.write_bytes(os.urandom(64) + b"\xff\xd9")
    elif kind == "truncated":
        path.write_bytes(jpeg()[:1500])
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "symlink":
        (folder / "notes.txt").write_text("not an image\n")
        path.symlink_to(folder / "notes.txt")
    elif kind == "directory":
        path.mkdir()
    elif kind == "fifo":
        os.mkfifo(path)
    elif kind == "bomb":
        path.write_bytes(bomb())
    return path


def test_bad_files_are_refused_when_the_folder_is_indexed(folder: Path, spec: Path, tmp_path: Path) -> None:
    cases = {
        "garbage": "is not a JPEG or PNG image (it starts {start})",
        "truncated": "is not a readable image (OSError: image file is truncated (188 bytes not processed))",
        "empty": "is empty (0 bytes)",
        "symlink": "is not a JPEG or PNG image (it starts 6e6f7420616e2069)",
        "directory": "is not a regular file: it is a directory",
        "fifo": "is not a regular file: it is a named pipe (FIFO)",
        "bomb": "is 20000x20000 = 400,000,000 pixels, more than the limit of 89,478,485 (a decompression bomb?); "
        "RESDSL_MAX_IMAGE_PIXELS=N raises the limit",
    }
    out, w = tmp_path / "run", weights(spec, tmp_path / "w.pt")
    for kind, reason in cases.items():
        path = plant(folder, "bad.JPEG", kind)
        reason = reason.format(start=path.read_bytes()[:8].hex() if kind == "garbage" else "")
        result = run_cli("train", spec, "--data", folder, "--iterations", "2", "--workers", "0", "--out", out)
        assert (result.exit_code, result.output) == (1, f"error: {path} {reason}; {HINT}\n"), kind
        assert not out.exists()  # nothing written
        result = run_cli("eval", spec, "--weights", w, "--data", folder, "--workers", "0")
        assert result.output.startswith(f"error: {path} {reason}"), kind
        path.rmdir() if kind == "directory" else path.unlink()


def test_the_pixel_limit_is_overridable_and_several_bad_files_are_counted(folder: Path, monkeypatch) -> None:
    big = folder / "train" / "n00_temple" / "big.JPEG"
    big.write_bytes(jpeg(300, 200))
    assert check_header(str(big)) == big.stat().st_size
    monkeypatch.setenv("RESDSL_MAX_IMAGE_PIXELS", "50000")
    with pytest.raises(UnreadableImage) as err:
        imagefolder.scan(folder / "train")
    assert str(err.value) == (
        f"{big} is 300x200 = 60,000 pixels, more than the limit of 50,000 (a decompression bomb?); "
        "RESDSL_MAX_IMAGE_PIXELS=N raises the limit"
    )
    (folder / "train" / "n02_petals" / "zero.jpg").write_bytes(b"")
    with pytest.raises(UnreadableImage) as err:
        imagefolder.scan(folder / "train")
    assert str(err.value).endswith(f"(and 1 more bad files in {folder / 'train'})")
    monkeypatch.setenv("RESDSL_MAX_IMAGE_PIXELS", "many")
    with pytest.raises(ValueError, match="^RESDSL_MAX_IMAGE_PIXELS=many is not a number of pixels"):
        imagefolder.scan(folder / "train")


def test_an_image_failing_in_a_worker_stops_training_with_a_checkpoint(
    folder: Path, spec: Path, tmp_path: Path, monkeypatch
) -> None:
    """A 1 x 3000 strip passes the index (3,000 pixels) but resizing it to a shorter side of 55 for evaluation
    makes 165,000 x 55: past the limit, in a DataLoader worker, at the first evaluation after training."""
    monkeypatch.setenv("RESDSL_MAX_IMAGE_PIXELS", "1000000")
    strip = folder / "val" / "n01_sky" / "strip.JPEG"
    strip.write_bytes(jpeg(3000, 1))
    out = tmp_path / "run"
    result = run_cli("train", spec, "--data", folder, "--iterations", "4", "--workers", "1", "--out", out)
    assert result.exit_code == 1
    assert result.output.splitlines()[-2:] == [
        f"error: {strip} could not be decoded and augmented (ValueError: its shape 3000x1 resized to a shorter "
        f"side of 55 is 165000x55 pixels, more than the limit of 1,000,000); stopped at iteration 2 of 4 with a "
        f"checkpoint ({out / 'checkpoint.pt'}): nothing trained is lost",
        f"  hint: replace the file with a readable image, then continue with resdsl train {spec} --resume {out} "
        f"--data {folder} --iterations 4 --workers 1",
    ]
    assert "Traceback" not in result.output
    assert (out / "checkpoint.pt").is_file()
    result = run_cli("eval", out, "--workers", "1")  # the same image, in eval's worker
    assert (result.exit_code, result.output.splitlines()[-1]) == (
        1,
        f"error: {strip} could not be decoded and augmented (ValueError: its shape 3000x1 resized to a shorter "
        f"side of 55 is 165000x55 pixels, more than the limit of 1,000,000); {HINT}",
    )
    assert "Traceback" not in result.output
    strip.write_bytes(jpeg(64, 56))
    result = run_cli("train", spec, "--resume", out, "--data", folder, "--iterations", "4", "--workers", "1")
    assert result.exit_code == 0, result.output
    assert "resuming" in result.output


def test_names_that_are_not_utf8_are_indexed_and_printed(folder: Path, spec: Path, tmp_path: Path) -> None:
    for split in ("train", "val"):
        old = folder / split / "n03_leaves"
        new = os.fsencode(folder / split) + b"/n03_\xff"
        os.rename(old, new)
        os.rename(os.path.join(new, sorted(os.listdir(new))[0]), new + b"/\xfe.JPEG")
    out = tmp_path / "run"
    result = run_cli("train", spec, "--data", folder, "--iterations", "2", "--workers", "0", "--out", out)
    assert result.exit_code == 0, result.output
    (Path(os.fsdecode(os.fsencode(folder / "val") + b"/n03_\xff")) / "\udcfd.JPEG").write_bytes(b"")
    result = run_cli("train", spec, "--data", folder, "--iterations", "2", "--workers", "0", "--out", tmp_path / "r2")
    assert (result.exit_code, result.output) == (
        1,
        f"error: {folder}/val/n03_\\xff/\\xfd.JPEG is empty (0 bytes); {HINT}\n",
    )
