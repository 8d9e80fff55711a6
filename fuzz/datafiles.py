"""The fuzzing property for data and weights files, checked on one input: `check_one(data)`.

An input is one byte naming the kind of file (`KINDS[data[0] % len(KINDS)]`) and the file's bytes. The file
is written into a fresh folder and read the way resdsl reads that kind:

    jpeg, png   an image folder (val/c/f.JPEG) indexed (imagefolder.scan: every header checked), the decoder,
                and a test item as a DataLoader worker makes it (imagefolder.TestImages: decode, resize, crop)
    idx, idx.gz MNIST's reader (digitfiles.read_idx), gzipped or not
    npz         the header check and the reader (datafiles.npz_arrays, read_npz)
    weights     `resdsl weights check`'s reader (weights.read_state_dict), loaded into a tiny generated module
    mat         SVHN's reader of a MATLAB v5 file through scipy.io (digitfiles.read_svhn_mat)
    sweep       a sweep directory's `sweep.json` read back (sweepfile.read_sweep), then its grid and study name

The property: each ends in a result of the right shape or a clear error: a DataError that names the file in
one line, or a ResdslError that renders as `error: ...` (fuzz.harness.check_rendered); a worker's item is a
tensor or a BadImage, never an exception. Anything else is a Finding. The limits are lowered while fuzzing
(RESDSL_MAX_IMAGE_PIXELS, RESDSL_MAX_IDX_BYTES, the npz size), so a mutated header cannot make the fuzzer
allocate gigabytes: what is checked is that a limit refuses it, not the machine's memory.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import random
import re
import struct
import tempfile
from collections.abc import Callable
from functools import cache
from pathlib import Path

import numpy as np

from fuzz.harness import Finding, Outcome, _deadline, _stage, check_rendered
from resdsl.backends.pytorch.weights import load_weights, read_state_dict
from resdsl.diagnostics import ResdslError
from resdsl.experiments import sweepfile
from resdsl.files import shown
from resdsl.train import datafiles, digitfiles, imagefiles, imagefolder

KINDS = ("jpeg", "png", "idx", "idx.gz", "npz", "weights", "mat", "sweep")  # new kinds go last: old inputs keep theirs
SUFFIX = {
    "jpeg": ".JPEG",
    "png": ".png",
    "idx": "",
    "idx.gz": ".gz",
    "npz": ".npz",
    "weights": ".pt",
    "mat": ".mat",
    "sweep": ".json",
}
LIMITS = {"RESDSL_MAX_IMAGE_PIXELS": str(1 << 21), "RESDSL_MAX_IDX_BYTES": str(1 << 22)}
NPZ_LIMIT = 1 << 24
TIMEOUT_S = 20.0
MAX_INPUT_BYTES = 256 * 1024
TINY = "network t {\n    input 3x8x8\n    classes 3\n    stem { conv 3x3, 4; bn; relu }\n    head { avgpool global; fc classes }\n}\n"


def encode(kind: str, body: bytes) -> bytes:
    return bytes([KINDS.index(kind)]) + body


def decode_input(data: bytes) -> tuple[str, bytes]:
    return (KINDS[data[0] % len(KINDS)], data[1:]) if data else ("jpeg", b"")


def check_one(data: bytes, *, timeout: float | None = TIMEOUT_S, **_: object) -> Outcome:
    """Read one file of the kind the first byte names; return how it ended, or raise Finding."""
    if len(data) > MAX_INPUT_BYTES:
        return Outcome.SKIPPED
    kind, body = decode_input(bytes(data))
    saved = {k: os.environ.get(k) for k in LIMITS}
    os.environ.update(LIMITS)
    try:
        with tempfile.TemporaryDirectory(prefix="resdsl-fuzz-data-") as tmp:
            folder = Path(tmp) / "val" / "c" if kind in ("jpeg", "png") else Path(tmp)  # an image folder's class
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / (sweepfile.SWEEP_FILE if kind == "sweep" else f"f{SUFFIX[kind]}")
            path.write_bytes(body)
            with _deadline(timeout), _stage(kind):
                return READERS[kind](path)
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _clear(err: Exception, path: Path, stage: str) -> None:
    """A DataError naming the file in one line (or a rendered ResdslError)."""
    if isinstance(err, ResdslError):
        check_rendered(err, stage)
        return
    text = str(err)
    if not text or "\n" in text or "Traceback" in text:
        raise Finding("bad-error", stage, repr(text[:200]), type(err).__name__)
    if re.search(r" at 0x[0-9a-f]{6,}", text):  # an object's address: differs from run to run, says nothing
        raise Finding("unstable-error", stage, text[:200], type(err).__name__)
    if shown(path) not in text and not text.startswith("RESDSL_"):
        raise Finding("unnamed-file", stage, text[:200], type(err).__name__)


def _image(path: Path) -> Outcome:
    try:
        indexed = imagefolder.scan(path.parent.parent).paths == [str(path)]  # the folder index checks headers
    except datafiles.DataError as err:
        _clear(err, path, "index")
        indexed = False
    try:
        image = imagefiles.decode(str(path))
    except datafiles.DataError as err:
        _clear(err, path, "decode")
        if indexed and not isinstance(err, imagefiles.UnreadableImage):
            raise Finding("decode-error", "decode", str(err)[:200], type(err).__name__) from None
    else:
        if image.dim() != 3 or image.shape[0] != 3 or image.dtype.is_floating_point:
            raise Finding("bad-image", "decode", f"{image.dtype} {list(image.shape)}", "shape")
    folder = imagefolder.Folder(path.parent, ["c"], [str(path)], [0])
    item = imagefolder.TestImages(folder, "center", 16)[0]  # what a DataLoader worker hands back
    if isinstance(item, imagefolder.BadImage):
        _clear(item.error(), path, "worker")
        return Outcome.ERROR
    if tuple(item[0].shape) != (3, 16, 16):
        raise Finding("bad-item", "worker", str(list(item[0].shape)), "shape")
    return Outcome.COMPILED


def _idx(path: Path) -> Outcome:
    try:
        array = digitfiles.read_idx(path, 3)
    except datafiles.DataError as err:
        _clear(err, path, "idx")
        return Outcome.ERROR
    if array.ndim != 3 or array.dtype != np.uint8:
        raise Finding("bad-array", "idx", f"{array.dtype} {array.shape}", "shape")
    return Outcome.COMPILED


def _npz(path: Path) -> Outcome:
    try:
        datafiles.npz_arrays(path)
        data = datafiles.read_npz(path, NPZ_LIMIT)
    except datafiles.DataError as err:
        _clear(err, path, "npz")
        return Outcome.ERROR
    if data["x_train"].dim() != 4 or data["y_train"].dim() != 1:
        raise Finding("bad-array", "npz", str({k: list(v.shape) for k, v in data.items()}), "shape")
    return Outcome.COMPILED


def _weights(path: Path) -> Outcome:
    try:
        state = read_state_dict(path)
        load_weights(_tiny_model(), state, str(path), "the tiny module")
    except ResdslError as err:
        _clear(err, path, "weights")
        return Outcome.ERROR
    return Outcome.COMPILED


def _tiny_model():
    from resdsl.backends.pytorch.verify import load_module

    return load_module(_tiny_source()).build_model()


@cache
def _tiny_source() -> str:
    from resdsl.backends.pytorch.codegen import render_model
    from resdsl.ir.pipeline import load_network

    with tempfile.TemporaryDirectory() as tmp:
        spec = Path(tmp) / "t.rd"
        spec.write_text(TINY)
        return render_model(load_network(spec, {}), "t.rd")


def _mat(path: Path) -> Outcome:
    try:
        images, labels = digitfiles.read_svhn_mat(path)
    except datafiles.DataError as err:
        _clear(err, path, "mat")
        return Outcome.ERROR
    if images.dim() != 4 or images.dtype.is_floating_point or labels.dim() != 1 or len(labels) != len(images):
        raise Finding("bad-array", "mat", f"{images.dtype} {list(images.shape)}, {list(labels.shape)}", "shape")
    if len(labels) and not (0 <= int(labels.min()) and int(labels.max()) <= 9):
        raise Finding("bad-labels", "mat", f"{int(labels.min())}..{int(labels.max())}", "labels")
    return Outcome.COMPILED


def _sweep(path: Path) -> Outcome:
    try:
        record = sweepfile.read_sweep(path.parent)
    except ResdslError as err:
        _clear(err, path, "sweep")
        text = str(err)
        if shown(path) not in text:
            raise Finding("unnamed-file", "sweep", text[:200], type(err).__name__) from None
        if re.search(r"[\x00-\x1f\x7f\u202a-\u202e]", text) or len(text) > len(shown(path)) + 300:
            raise Finding("raw-field", "sweep", repr(text[:200]), "a field printed raw or whole") from None
        return Outcome.ERROR
    with _stage("sweep-use"):  # what `sweep --status` and a worker do next with a record that was accepted
        if not record.config.points() or not record.config.study_name.startswith("resdsl-"):
            raise Finding("bad-record", "sweep-use", str(record)[:200], "record")
    return Outcome.COMPILED


READERS: dict[str, Callable[[Path], Outcome]] = {
    "jpeg": _image,
    "png": _image,
    "idx": _idx,
    "idx.gz": _idx,
    "npz": _npz,
    "weights": _weights,
    "mat": _mat,
    "sweep": _sweep,
}


# ---------------------------------------------------------------------------------------- seeds, mutation


@cache
def seeds() -> dict[str, bytes]:
    """Real files of each kind, small: JPEGs (baseline, progressive, grey), PNGs (RGB, RGBA, palette), idx
    files, an npz and a state_dict, each as an input (kind byte first)."""
    import torch
    from PIL import Image

    rng = np.random.default_rng(0)
    pixels = (rng.random((12, 16, 3)) * 255).astype(np.uint8)
    out: dict[str, bytes] = {}
    for name, mode, kw in (
        ("jpeg", "RGB", {}),
        ("jpeg-progressive", "RGB", {"progressive": True}),
        ("jpeg-grey", "L", {}),
    ):
        buffer = io.BytesIO()
        Image.fromarray(pixels).convert(mode).save(buffer, "JPEG", quality=80, **kw)
        out[name] = encode("jpeg", buffer.getvalue())
    for name, mode in (("png", "RGB"), ("png-rgba", "RGBA"), ("png-palette", "P")):
        buffer = io.BytesIO()
        Image.fromarray(pixels).convert(mode).save(buffer, "PNG")
        out[name] = encode("png", buffer.getvalue())
    idx = struct.pack(">BBBB3I", 0, 0, 8, 3, 3, 4, 4) + bytes(range(48))
    out["idx"] = encode("idx", idx)
    out["idx-gz"] = encode("idx.gz", gzip.compress(idx))
    buffer = io.BytesIO()
    np.savez(
        buffer,
        x_train=rng.integers(0, 255, (4, 3, 8, 8), dtype=np.uint8),
        y_train=np.arange(4),
        x_test=rng.integers(0, 255, (2, 3, 8, 8), dtype=np.uint8),
        y_test=np.arange(2),
    )
    out["npz"] = encode("npz", buffer.getvalue())
    buffer = io.BytesIO()
    torch.save(_tiny_model().state_dict(), buffer)
    out["weights"] = encode("weights", buffer.getvalue())
    out.update(_mat_seeds(rng))
    for name, record in SWEEPS.items():
        out[name] = encode("sweep", json.dumps(record, indent=2).encode())
    return out


def _mat_seeds(rng: np.random.Generator) -> dict[str, bytes]:
    """SVHN-like MATLAB v5 files (X 32 x 32 x 3 x N uint8, y N x 1 in 1..10), plain and compressed."""
    from scipy.io import savemat

    x = rng.integers(0, 255, (32, 32, 3, 3), dtype=np.uint8)
    y = np.array([[1], [10], [5]], dtype=np.uint8)
    out = {}
    for name, compress in (("mat", False), ("mat-compressed", True)):
        buffer = io.BytesIO()
        savemat(buffer, {"X": x, "y": y}, do_compression=compress)
        out[name] = encode("mat", buffer.getvalue())
    return out


_CONFIG = {
    "spec": "cifar20.rd",
    "spec_sha256": "0" * 64,
    "axes": {"depth": ["3", "5"], "seed": ["0", "1"]},
    "sets": ["width=16"],
    "dataset": "cifar10",
    "data": None,
    "train": {"iterations": 100, "batch": 8, "lr": 0.1, "eval_every": 50, "checkpoint_every": 50},
    "amp": "auto",
}
SWEEPS = {  # sweep.json as `resdsl sweep` writes it: SQLite beside it (storage null) and on a server
    "sweep": {"format": sweepfile.FORMAT, "config": _CONFIG, "study": "resdsl-cifar20-0123456789ab", "storage": None},
    "sweep-postgres": {
        "format": sweepfile.FORMAT,
        "config": {**_CONFIG, "axes": {"lr": ["0.1", "0.01"]}, "dataset": None, "train": {}},
        "study": "resdsl-cifar20-ba9876543210",
        "storage": "postgresql://resdsl:***@127.0.0.1:5432/resdsl",
    },
}
HOSTILE = (  # JSON values set into a field of a sweep.json
    None,
    True,
    False,
    0,
    -1,
    1,
    2**63,
    1e308,
    float("nan"),
    float("inf"),
    -0.0,
    0.5,
    "",
    " ",
    "x",
    "..",
    "/",
    "../../etc",
    "a\x00b",
    "\u202e",
    "0" * 64,
    "x" * 5000,
    [],
    [""],
    ["1", "1"],
    ["a b"],
    [None],
    [[]],
    {},
    {"": []},
    {"seed": ["x"]},
    {"a": ["1"] * 100_000},
    "sqlite://",
    "sqlite:///x.db",
    "postgresql://u:p@ho st/db",
    "mysql://h/d",
)

KEYS = ("extra", "seed", "depth", "lr", "iterations", "format", "n.x", "", "__class__", "x" * 300, "a\nb", "\x1b[31m")


def _mutate_json(body: bytes, rng: random.Random) -> bytes | None:
    """A sweep.json with one field (at any depth) set to a hostile value, deleted, or a field added; None if the
    body is no JSON object."""
    try:
        data = json.loads(body)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    holders: list[dict | list] = []
    stack: list[object] = [data]
    while stack:
        node = stack.pop()
        if isinstance(node, dict | list):
            holders.append(node)
            stack.extend(node.values() if isinstance(node, dict) else node)
    node = rng.choice(holders)
    keys = list(node) if isinstance(node, dict) else list(range(len(node)))
    value = rng.choice(HOSTILE)
    if isinstance(value, dict) and len(value.get("a", [])) > 10:  # a grid past the limit, in a few bytes of JSON
        value = {f"a{i}": [str(j) for j in range(20)] for i in range(8)}
    op = rng.randrange(4)
    if not keys or op == 0:
        key = rng.choice(KEYS)
        if isinstance(node, dict):
            node[key] = value
        else:
            node.append(value)
    elif op == 1:
        del node[rng.choice(keys)]
    elif op == 2 and isinstance(node, dict):
        key = rng.choice(keys)
        node[rng.choice((*KEYS, key + key))] = node.pop(key)
    else:
        node[rng.choice(keys)] = value
    return json.dumps(data, allow_nan=True).encode()


EDGES = (0, 1, 2, 255, 0x7FFF, 0xFFFF, 0x10000, 0x7FFFFFFF, 0xFFFFFFFF)


def mutate(data: bytes, max_size: int, rng: random.Random) -> bytes:
    """1 to 3 edits of a file, its kind byte kept: a truncation, a field set to an edge value (big-endian 2
    or 4 bytes: sizes, lengths), bit flips, a chunk duplicated or deleted, a JPEG marker inserted, a chunk
    of another seed spliced in."""
    if len(data) < 2 or rng.random() < 0.05:
        data = rng.choice(list(seeds().values()))
    kind, body = data[:1], bytearray(data[1:])
    if decode_input(bytes(data))[0] == "sweep" and rng.random() < 0.7:  # field values, not bytes: JSON stays JSON
        for _ in range(rng.randint(1, 3)):
            body = bytearray(_mutate_json(bytes(body), rng) or body)
        return (kind + bytes(body))[:max_size]
    for _ in range(rng.randint(1, 3)):
        op = rng.randrange(7)
        n = len(body)
        if n == 0:
            body += rng.randbytes(rng.randint(1, 16))
        elif op == 0:
            del body[rng.randrange(n) :]
        elif op == 1:
            width = rng.choice((2, 4))
            at = rng.randrange(max(1, n - width))
            body[at : at + width] = (rng.choice(EDGES) % (1 << (8 * width))).to_bytes(width, "big")
        elif op == 2:
            for _ in range(rng.randint(1, 8)):
                i = rng.randrange(n)
                body[i] ^= 1 << rng.randrange(8)
        elif op == 3:
            a = rng.randrange(n)
            b = min(n, a + rng.randint(1, 256))
            body[a:a] = body[a:b] * rng.randint(1, 4)
        elif op == 4:
            a = rng.randrange(n)
            del body[a : a + rng.randint(1, 64)]
        elif op == 5:
            at = rng.randrange(n + 1)
            body[at:at] = b"\xff" + bytes([rng.choice((0xC0, 0xC2, 0xC4, 0xD8, 0xD9, 0xDA, 0xDB, 0xE1, 0xFF))])
        else:
            other = rng.choice(list(seeds().values()))[1:]
            a = rng.randrange(len(other))
            at = rng.randrange(n + 1)
            body[at:at] = other[a : a + rng.randint(1, 128)]
    if rng.random() < 0.03:
        kind = bytes([rng.randrange(len(KINDS))])  # a file of one kind named as another
    return (kind + bytes(body))[:max_size]
