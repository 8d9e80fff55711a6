"""The run directory: who may write it (a lock), when a directory may become or stay a run (ownership), how
its files are written (atomically) and how metrics.csv is read back (strictly).

Rules (docs/training.md, "The run directory"):

- A new run (`--out DIR`) takes a directory that does not exist or is empty. A directory holding a
  checkpoint is a run to `--resume`; one holding `recipe.json` but no checkpoint is a run stopped before
  its first checkpoint, which `--resume` starts again from iteration 0; anything else is refused.
- While a run writes, it holds `DIR/.resdsl.lock` (`filelock`, an flock that the kernel releases when the
  process dies, even by SIGKILL); a second `resdsl train` on the same directory fails at once.
- Every file is written to a temporary file in the same directory, fsynced, then renamed over the old one
  (`os.replace`), and the directory fsynced: a crash leaves the old file or the new one, never half of one.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from resdsl.diagnostics import InputError
from resdsl.files import write_atomic

LOCK = ".resdsl.lock"
CHECKPOINT = "checkpoint.pt"
RECIPE = "recipe.json"
METRICS = "metrics.csv"
SUMMARY = "summary.json"
MODEL = "model.py"
CURVES = "curves.png"
FILES = (RECIPE, MODEL, METRICS, CHECKPOINT, SUMMARY, CURVES, "tensorboard")
COLUMNS = [
    "iteration",
    "lr",
    "train_loss",
    "train_error",
    "test_loss",
    "test_error",
    "val_loss",
    "val_error",
    "images_per_s",
]


# ---------------------------------------------------------------------------------------- atomic writes


def _is_temp(name: str) -> bool:
    """A temporary file of atomic_write (`.metrics.csv.k2j4.tmp`), or of resdsl before it (`metrics.csv.tmp`)."""
    if not name.endswith(".tmp"):
        return False
    if name.startswith("."):
        return any(name.startswith(f".{f}.") for f in FILES)
    return name[: -len(".tmp")] in FILES


def atomic_write(path: Path, data: bytes | str | Callable[[IO[bytes]], None]) -> None:
    """Write `data` (bytes, text, or a function writing to a binary file) to `path` atomically (fsynced,
    renamed over the old file, the directory fsynced: resdsl/files.py, write_atomic); a failure (a full disk,
    a missing directory) is the InputError `cannot write PATH: REASON`, the old file left as it was."""
    write_atomic([(path, data)], InputError)


def sweep(out: Path) -> None:
    """Remove temporary files a killed run left behind (call with the lock held)."""
    for entry in out.iterdir():
        if _is_temp(entry.name) and entry.is_file():
            with contextlib.suppress(OSError):
                entry.unlink()


# ---------------------------------------------------------------------------------------- ownership


def contents(out: Path) -> list[str]:
    """What the directory holds, less the lock and leftover temporary files."""
    if not out.is_dir():
        return []
    return sorted(e.name for e in out.iterdir() if e.name != LOCK and not _is_temp(e.name))


def check_new(out: Path) -> None:
    """A new run may write to `out` only if it does not exist or is empty; InputError naming what is there."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out}: not a directory")
    names = contents(out)
    if not names:
        return
    if in_use(out):
        raise _in_use_error(out)
    if CHECKPOINT in names:
        raise InputError(
            f"{out} already holds a run ({out / CHECKPOINT}); resume it with --resume {out} or choose another --out"
        )
    if RECIPE in names:
        raise InputError(
            f"{out} holds a run that stopped before its first checkpoint ({out / RECIPE}, no {CHECKPOINT}); "
            f"start it again with --resume {out} or choose another --out"
        )
    shown = ", ".join(names[:4]) + (f" and {len(names) - 4} more" if len(names) > 4 else "")
    raise InputError(
        f"{out} is not empty ({shown}) and is not a run to resume: nothing there is replaced; choose another --out"
    )


def _in_use_error(out: Path) -> InputError:
    return InputError(
        f"{out} is in use: another resdsl train is writing it (it holds {Path(out) / LOCK}); "
        f"wait for it to finish or choose another --out"
    )


def in_use(out: Path) -> bool:
    """Whether another process holds the directory's lock (creates no file)."""
    if not (Path(out) / LOCK).is_file():
        return False
    try:
        Lock(out).release()
    except InputError:
        return True
    return False


class Lock:
    """`out/.resdsl.lock`, held while a run writes the directory; a second holder fails at once."""

    def __init__(self, out: Path) -> None:
        from filelock import FileLock, Timeout

        self.path = Path(out) / LOCK
        self._lock = FileLock(str(self.path))
        try:
            self._lock.acquire(blocking=False)
        except Timeout:
            raise _in_use_error(out) from None
        except OSError as err:
            raise InputError(f"cannot lock {self.path}: {err.strerror or err}") from None

    def release(self) -> None:
        if self._lock.is_locked:
            self._lock.release()


# ---------------------------------------------------------------------------------------- metrics.csv


def read_json(path: Path) -> dict[str, Any] | None:
    """A JSON object the run wrote (recipe.json, summary.json, eval.json); None if missing or unreadable."""
    try:
        value = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def read_metrics(path: Path) -> list[dict[str, float]]:
    """The rows of a metrics.csv, every value a float (NaN where empty); InputError `FILE:LINE: ...` for a
    file resdsl did not write (binary, no `iteration` column, ragged rows, words where numbers go)."""
    path = Path(path)
    if not path.exists():
        return []
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise InputError(f"cannot read {path}: {err.strerror or err}") from None
    try:
        if b"\0" in raw:
            raise UnicodeDecodeError("utf-8", raw, raw.index(b"\0"), raw.index(b"\0") + 1, "NUL byte")
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        line = raw.count(b"\n", 0, err.start) + 1
        raise InputError(f"{path}:{line}: binary data, not a metrics.csv written by resdsl") from None
    reader = csv.reader(io.StringIO(text, newline=""))
    rows: list[dict[str, float]] = []
    try:
        header = next(reader, None)
        if header is None:
            return []
        if "iteration" not in header:
            raise InputError(f"{path}:1: not a metrics.csv written by resdsl (no `iteration` column)")
        for row in reader:
            line = reader.line_num
            if not row:
                continue
            if len(row) != len(header):
                raise InputError(f"{path}:{line}: {len(row)} values, but the header names {len(header)} columns")
            values: dict[str, float] = {}
            for key, value in zip(header, row):
                if value.strip() == "":
                    values[key] = math.nan
                    continue
                try:
                    values[key] = float(value)
                except ValueError:
                    shown = value if len(value) <= 30 else value[:30] + "..."
                    raise InputError(f"{path}:{line}: `{shown}` in column {key} is not a number") from None
            it = values["iteration"]
            if not (math.isfinite(it) and it >= 0 and it.is_integer()):
                raise InputError(f"{path}:{line}: the iteration `{row[header.index('iteration')]}` is no count")
            rows.append(values)
    except csv.Error as err:
        raise InputError(f"{path}:{reader.line_num}: not a CSV file ({err})") from None
    return rows


def write_metrics(path: Path, rows: list[dict[str, float]]) -> None:
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer)
    writer.writerow(COLUMNS)
    for row in rows:
        writer.writerow([_fmt(c, row.get(c, math.nan)) for c in COLUMNS])
    atomic_write(path, buffer.getvalue())


def _fmt(column: str, v: float) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return ""
    if column == "iteration":
        return str(int(v))
    return f"{v:.6g}"
