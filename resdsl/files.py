"""Files in and out, the one place every command reads and writes through (the standard library only: the
standalone train.py embeds this module, see train/script.py).

Reading: only regular files are opened (`open_regular`: a FIFO, a device or a directory is refused without
blocking, also through a symlink). Writing: an output that is one of the command's inputs is refused
(`refuse_overwrite`, by inode and by resolved path, so symlinks and hard links count), and files are written
atomically (`write_atomic`: a temporary file in the same directory, fsynced, renamed over the target), so that
a failure leaves what was there.

No well-kept library does these: `atomicwrites` is archived by its author (2022), and the rest are
os.open/os.fstat/os.replace/os.path.samefile around which any wrapper is as long as this module.
"""

from __future__ import annotations

import contextlib
import fcntl
import io
import os
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO

Data = bytes | str | Callable[[IO[bytes]], None]
ErrorFactory = Callable[[str], Exception]


class FileRefused(ValueError):
    """A file that is not read or written: not a regular file, or past a limit (the default error)."""


def shown(path: str | os.PathLike) -> str:
    """A path for a message: bytes that are not UTF-8 (kept by Python as surrogates) written as `\\xff`."""
    text = os.fspath(path)
    if isinstance(text, bytes):
        return text.decode("utf-8", "backslashreplace")
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def kind(mode: int) -> str:
    """What a file that is not a regular one is, in words."""
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def not_regular(path: str | os.PathLike, mode: int) -> str:
    return f"{shown(path)} is not a regular file: it is {kind(mode)}"


def open_regular(path: str | os.PathLike, error: ErrorFactory = FileRefused) -> IO[bytes]:
    """`path` opened for binary reading if it is a regular file (after symlinks); `error(message)` is raised
    for anything else, decided from the open descriptor, so a FIFO is never waited on (O_NONBLOCK) and a file
    swapped after a check cannot slip through. OSError (no such file, no permission) propagates."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise error(not_regular(path, mode))
        fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) & ~os.O_NONBLOCK)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


# ---------------------------------------------------------------------------------------- outputs


def same_file(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """Whether two paths name one file: the same inode (symlinks, hard links, `./x`), or, for a file not
    written yet, the same resolved path."""
    try:
        return os.path.samefile(a, b)
    except (OSError, ValueError):
        return os.path.realpath(a) == os.path.realpath(b)


def refuse_overwrite(
    outputs: list[tuple[str, str | os.PathLike]],
    inputs: list[tuple[str, str | os.PathLike]],
    error: ErrorFactory = FileRefused,
    advice: str = "choose another file",
) -> None:
    """`error` when an output is one of the command's inputs or another of its outputs. `outputs` are (how
    the command line names it, path), `inputs` (what it is, path)."""
    for i, (label, out) in enumerate(outputs):
        for what, src in inputs:
            if same_file(out, src):
                raise error(f"{label} {shown(out)} would overwrite {what} {shown(src)}; {advice}")
        for other_label, other in outputs[:i]:
            if same_file(out, other):
                raise error(
                    f"{label} {shown(out)} and {other_label} {shown(other)} are the same file; choose two names"
                )


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def write_atomic(
    outputs: list[tuple[str | os.PathLike, Data]], error: ErrorFactory | None = None, make_dirs: bool = False
) -> None:
    """Write files whole or not at all: each into a temporary file beside it (fsynced), then all renamed over
    their targets, so that a failure (a full disk, a missing directory, an interrupt, a second file that
    cannot be written) leaves what was there before. A symlink is followed (its target replaced, the link
    kept, the mode too); a target that exists and is not a regular file (/dev/stdout, /dev/full, a FIFO) is
    written directly. `data`: bytes, text or a function writing to a binary file. With `error`, an OSError
    becomes `error("cannot write PATH: REASON")`; without, it propagates. `make_dirs`: create a missing
    parent directory (else a missing one is the error)."""
    staged: list[tuple[str, Path]] = []
    current: str | os.PathLike = ""
    try:
        for path, data in outputs:
            current = path
            target = Path(os.path.realpath(path))
            try:
                st: os.stat_result | None = os.stat(target)
            except FileNotFoundError:
                st = None
            if st is not None and not stat.S_ISREG(st.st_mode):
                buffer = io.BytesIO()  # rendered first: the device sees one write, a failure is an OSError
                _put(buffer, data)
                with open(target, "wb") as f:
                    f.write(buffer.getvalue())
                continue
            if make_dirs:
                target.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
            staged.append((tmp, target))
            os.fchmod(fd, stat.S_IMODE(st.st_mode) if st is not None else 0o666 & ~_umask())
            with os.fdopen(fd, "wb") as f:
                _put(f, data)
                f.flush()
                os.fsync(f.fileno())
        for tmp, target in staged:
            current = target
            os.replace(tmp, target)
        for parent in {target.parent for _, target in staged}:
            _fsync_dir(parent)
    except OSError as err:
        if error is None:
            raise
        raise error(f"cannot write {shown(current)}: {err.strerror or err}") from None
    finally:
        for tmp, _ in staged:
            with contextlib.suppress(OSError):
                os.unlink(tmp)


def _put(f: IO[bytes], data: Data) -> None:
    if callable(data):
        data(f)
    else:
        f.write(data.encode("utf-8") if isinstance(data, str) else data)
