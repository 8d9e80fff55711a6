"""One image file, read safely (torch, the standard library, simplejpeg or Pillow; no resdsl import above
`datafiles` and `files`): only regular files are opened, the header is checked (JPEG or PNG, its size within
the pixel limit) before anything is decoded, and every failure is an `UnreadableImage` naming the file.

`check_header` is what scanning a folder runs on every image (the header and the last bytes read, so that a
0-byte file, a symlink to a text file, a directory or a FIFO named x.JPEG, garbage, a truncated file and
decompression bombs are refused before training starts; a file without its end marker is decoded to tell a
truncated one from one with trailing bytes); `decode` is what DataLoader workers run. `BadImage` is what a worker hands
back instead of raising: the main process turns it into a clean error (after a checkpoint, when training).
"""

from __future__ import annotations

import io
import os
import re
from dataclasses import dataclass
from typing import IO

import torch
from torch import Tensor

from resdsl.files import FileRefused, open_regular, shown
from resdsl.train.datafiles import DataError

PIXELS_ENV = "RESDSL_MAX_IMAGE_PIXELS"
MAX_PIXELS = 89_478_485  # Pillow's default Image.MAX_IMAGE_PIXELS (about 0.25 GB decoded as RGB)
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PNG_END = b"\x00\x00\x00\x00IEND\xaeB`\x82"  # the IEND chunk: length 0, type, CRC
# JPEG start-of-frame markers (baseline, progressive, lossless, arithmetic), which hold the image's size
SOF_MARKERS = frozenset((0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF))
MAX_MARKERS = 1000  # segments looked through for the frame header


class UnreadableImage(DataError):
    """An image file that cannot be used: the message names the file; `hint` says what to do."""

    hint = "replace or remove the file; resdsl reads the header of every image when it indexes a folder"


@dataclass(frozen=True)
class BadImage:
    """What a DataLoader worker returns instead of raising (a traceback from inside a worker is never shown)."""

    message: str

    def error(self) -> UnreadableImage:
        return UnreadableImage(self.message)


def max_pixels() -> int:
    """The pixel limit: RESDSL_MAX_IMAGE_PIXELS (a positive integer), else Pillow's default."""
    text = os.environ.get(PIXELS_ENV, "").strip().replace("_", "").replace(",", "")
    if not text:
        return MAX_PIXELS
    if not text.isdigit() or int(text) < 1:
        raise DataError(f"{PIXELS_ENV}={os.environ[PIXELS_ENV]} is not a number of pixels (a positive integer)")
    return int(text)


def check_pixels(path: str, w: int, h: int, limit: int | None = None) -> None:
    limit = max_pixels() if limit is None else limit
    if w * h > limit:
        raise UnreadableImage(
            f"{shown(path)} is {w}x{h} = {w * h:,} pixels, more than the limit of {limit:,} "
            f"(a decompression bomb?); {PIXELS_ENV}=N raises the limit"
        )
    if w < 1 or h < 1:
        raise UnreadableImage(f"{shown(path)} is a damaged image: its header says {w}x{h} pixels")


def image_size(f: IO[bytes]) -> tuple[str, int, int] | str:
    """(format, width, height) from a JPEG's frame header or a PNG's IHDR, reading only the header; else a
    reason why the bytes are no such image."""
    head = f.read(24)
    if not head:
        return "is empty (0 bytes)"
    if head.startswith(PNG_SIGNATURE):
        if len(head) < 24 or head[12:16] != b"IHDR":
            return "is a truncated or damaged PNG (no IHDR header)"
        return "png", int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")
    if not head.startswith(b"\xff\xd8"):
        return f"is not a JPEG or PNG image (it starts {head[:8].hex()})"
    f.seek(2)
    for _ in range(MAX_MARKERS):
        byte = f.read(1)
        while byte and byte != b"\xff":  # stray bytes between segments: decoders skip them too
            byte = f.read(1)
        while byte == b"\xff":  # fill bytes
            byte = f.read(1)
        if not byte:
            break
        marker = byte[0]
        if marker == 0x01 or 0xD0 <= marker <= 0xD8:  # segments without a length
            continue
        if marker in (0xD9, 0xDA):  # the end, or the scan, before any frame header
            break
        length = f.read(2)
        if len(length) < 2:
            break
        if marker in SOF_MARKERS:
            frame = f.read(5)
            if len(frame) < 5:
                break
            return "jpeg", int.from_bytes(frame[3:5], "big"), int.from_bytes(frame[1:3], "big")
        f.seek(int.from_bytes(length, "big") - 2, 1)
    return "is a truncated or damaged JPEG (no frame header before its image data)"


def check_header(path: str, limit: int | None = None) -> int:
    """Check one image file the way scanning does; its size in bytes. UnreadableImage naming the file."""
    try:
        with open_regular(path) as f:
            found = image_size(f)
            size = os.fstat(f.fileno()).st_size
            ends = not isinstance(found, str) and _ends_whole(f, found[0], size)
    except FileRefused as err:
        raise UnreadableImage(str(err)) from None
    except FileNotFoundError:
        what = "is a broken symlink" if os.path.islink(path) else "has vanished"
        raise UnreadableImage(f"{shown(path)} {what}") from None
    except OSError as err:
        raise UnreadableImage(f"cannot read {shown(path)} ({err.strerror or err})") from None
    if isinstance(found, str):
        raise UnreadableImage(f"{shown(path)} {found}")
    check_pixels(path, found[1], found[2], limit)
    if not ends:  # no end marker: truncated, or trailing bytes after a whole image; a decode tells which
        decode(path)
    return size


def _ends_whole(f: IO[bytes], fmt: str, size: int) -> bool:
    """Whether the file ends as a whole image does: a JPEG's EOI marker, a PNG's IEND chunk."""
    tail = PNG_END if fmt == "png" else b"\xff\xd9"
    if size < len(tail):
        return False
    f.seek(size - len(tail))
    return f.read(len(tail)) == tail


# ---------------------------------------------------------------------------------------- decoding


def _decoder():
    try:
        import simplejpeg

        return simplejpeg
    except ImportError:
        return None


_SIMPLEJPEG = _decoder()


def decoder_name() -> str:
    return "simplejpeg" if _SIMPLEJPEG is not None else "pillow"


def decode(path: str) -> Tensor:
    """An image file as uint8 C x H x W (RGB), in channels-last memory (what the resizing is fastest on). Its
    header is checked against the pixel limit before it is decoded."""
    try:
        with open_regular(path) as f:
            data = f.read()
    except FileRefused as err:
        raise UnreadableImage(str(err)) from None
    except OSError as err:
        raise UnreadableImage(f"cannot read {shown(path)} ({err.strerror or err})") from None
    found = image_size(io.BytesIO(data))
    if isinstance(found, str):
        raise UnreadableImage(f"{shown(path)} {found}")
    limit = max_pixels()
    check_pixels(path, found[1], found[2], limit)
    array = None
    if _SIMPLEJPEG is not None and found[0] == "jpeg":
        try:
            array = _SIMPLEJPEG.decode_jpeg(data, colorspace="RGB")
        except (ValueError, RuntimeError):  # CMYK or another JPEG libjpeg-turbo will not convert: Pillow's turn
            array = None
    if array is None:
        array = _pil_decode(path, data, limit)
    return torch.from_numpy(array).permute(2, 0, 1)


def _pil_decode(path: str, data: bytes, limit: int):
    try:
        import warnings

        import numpy as np
        from PIL import Image
    except ImportError:
        raise DataError("decoding images needs Pillow or simplejpeg: pip install 'resdsl[imagenet]'") from None
    Image.MAX_IMAGE_PIXELS = limit  # Pillow's own bomb check agrees with ours
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                return np.array(image.convert("RGB"))  # a writable copy for torch
    except Exception as err:  # noqa: BLE001 - Pillow raises many kinds on a bad file
        said = re.sub(r"<[\w.]+ object at 0x[0-9a-f]+>", "its data", str(err))  # no address: it differs each run
        raise UnreadableImage(f"{shown(path)} is not a readable image ({type(err).__name__}: {said})") from None


def failure(path: str, err: BaseException) -> BadImage:
    """A worker's failure on one image, as what it hands back."""
    if isinstance(err, DataError):
        return BadImage(str(err))
    first = (str(err).strip().splitlines() or [""])[0][:200]
    return BadImage(f"{shown(path)} could not be decoded and augmented ({type(err).__name__}: {first})")
