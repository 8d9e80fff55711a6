"""The miss path of the result cache (resdsl/entry.py): run the CLI, tee and keep its output, store it."""

from __future__ import annotations

import io
import marshal
import os
import sys
from typing import TYPE_CHECKING

from . import entry

if TYPE_CHECKING:
    from .entry import _Cache


def record(cache: _Cache) -> int | str | None:
    """Run the CLI, teeing its output, and store the result when it may be replayed."""
    import signal

    from . import resolve

    chunks: list[tuple[int, str]] = []
    failed: list[BaseException] = []
    interrupted: list[int] = []
    trace: list[tuple] = []

    def on_sigint(signum, frame):  # click turns Ctrl-C into "Aborted!" and exit 1: do not store that
        interrupted.append(signum)
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGINT, on_sigint)
    except ValueError:  # not the main thread
        previous = None
    real = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = _Tee(real[0], 1, chunks, failed), _Tee(real[1], 2, chunks, failed)
    resolve.TRACE = trace
    code: int | str | None = 0
    try:
        from .cli import main as cli_main

        cli_main(cache.args)
    except SystemExit as exc:
        code = exc.code
    finally:
        sys.stdout, sys.stderr = real
        resolve.TRACE = None
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
    status = 0 if code is None else code
    if status not in (0, 1) or interrupted or failed or not trace:
        entry._debug(
            f"not stored (exit {status!r}{', interrupted' if interrupted else ''}{', output failed' if failed else ''})"
        )
        return code
    try:
        if cache._key() != cache.key:
            entry._debug("not stored (resdsl changed during the run)")
            return code
        _store(cache, trace, chunks, status)
        entry._debug("stored")
    except Exception as err:  # noqa: BLE001 - a cache that cannot be written is no cache
        entry._debug(f"not stored ({type(err).__name__}: {err})")
    return code


def _store(cache: _Cache, trace: list[tuple], chunks: list[tuple[int, str]], code: int) -> None:
    deps: dict[tuple, None] = {}
    for kind, path, value in trace:
        deps[(kind, path, entry._hash(value) if kind == "read" else value)] = None
    merged: list[list] = []
    for tag, text in chunks:
        if merged and merged[-1][0] == tag:
            merged[-1][1] += text
        else:
            merged.append([tag, text])
    payload = marshal.dumps((tuple(deps), tuple((t, s) for t, s in merged), code))
    os.makedirs(cache.folder, mode=0o700, exist_ok=True)
    tmp = os.path.join(cache.folder, f".tmp-{os.getpid()}-{cache.key}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with open(fd, "wb", closefd=False) as f:
            f.write(entry._hash(payload) + payload)
    finally:
        os.close(fd)
    os.replace(tmp, cache.path)
    _prune(cache.folder)


def _prune(folder: str) -> None:
    """Keep the newest entry.MAX_ENTRIES entries (by mtime; a hit refreshes it)."""
    with os.scandir(folder) as it:
        entries = list(it)
    if len(entries) <= entry.MAX_ENTRIES:
        return
    aged = []
    for item in entries:
        try:
            aged.append((item.stat().st_mtime_ns, item.path))
        except OSError:
            continue
    aged.sort()
    for _, path in aged[: len(aged) - entry.MAX_ENTRIES]:
        try:
            os.remove(path)
        except OSError:
            pass


class _Tee(io.TextIOBase):
    """Writes through to the real stream and keeps a copy, tagged 1 (stdout) or 2 (stderr), in order."""

    def __init__(self, stream, tag: int, chunks: list, failed: list) -> None:
        super().__init__()
        self._stream, self._tag, self._chunks, self._failed = stream, tag, chunks, failed

    @property
    def encoding(self):  # type: ignore[override]
        return self._stream.encoding

    @property
    def errors(self):  # type: ignore[override]
        return self._stream.errors

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return False  # the output is plain text either way; replays must match

    def write(self, text: str) -> int:
        if not isinstance(text, str):
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        self._chunks.append((self._tag, text))
        try:
            return self._stream.write(text)
        except BaseException as err:
            self._failed.append(err)
            raise

    def flush(self) -> None:
        try:
            self._stream.flush()
        except BaseException as err:
            self._failed.append(err)
            raise
