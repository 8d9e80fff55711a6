"""A training run at the terminal: its progress lines and bar, and how Ctrl-C and SIGTERM stop it."""

from __future__ import annotations

import contextlib
import math
import signal
import sys
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import Any


class Interrupted(Exception):
    """Ctrl-C or SIGTERM: a checkpoint was saved; the CLI exits 128 + the signal's number (130, 143)."""

    def __init__(self, message: str, code: int = 130, report: bool = True) -> None:
        super().__init__(message)
        self.code = code
        self.report = report  # False on the ranks > 0 of a distributed run: rank 0 says it


class StopNow(KeyboardInterrupt):
    """The same signal twice: stop at once, without a checkpoint."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.code = 128 + int(signum)


class StopFlag:
    """Ctrl-C (SIGINT) or SIGTERM asks the loop to stop after the current iteration and save a checkpoint; the
    same signal a second time stops at once. (Under `--nproc`, torchrun answers a Ctrl-C by sending SIGTERM to
    its processes: a signal of the other kind does not cut the checkpoint short.)"""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.signum = 0
        self._old: dict[int, Any] = {}

    def __enter__(self) -> StopFlag:
        for sig in self.SIGNALS:
            try:
                self._old[sig] = signal.signal(sig, self._handle)
            except ValueError:  # not the main thread
                pass
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        if self.signum == signum:
            raise StopNow(signum)
        self.signum = self.signum or signum

    def __exit__(self, *exc: object) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)


class Printer:
    """A rich progress bar on a terminal; otherwise plain lines at eval points only. Silent when not enabled
    (-q, and the ranks > 0 of a distributed run)."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.tty = enabled and sys.stderr.isatty()
        self._progress = None

    def line(self, text: str) -> None:
        if not self.enabled:
            return
        if self._progress is not None:
            self._progress.console.print(text, markup=False, highlight=False)
        else:
            print(text, file=sys.stderr, flush=True)

    def eval_line(self, row: dict[str, float], total: int) -> None:
        val = "" if math.isnan(row.get("val_error", math.nan)) else f"  val error {100 * row['val_error']:.2f}%"
        self.line(
            f"iteration {int(row['iteration'])}/{total}  lr {row['lr']:.4g}  "
            f"train loss {row['train_loss']:.4f} error {100 * row['train_error']:.2f}%  "
            f"test loss {row['test_loss']:.4f} error {100 * row['test_error']:.2f}%{val}  "
            f"{row['images_per_s']:.0f} images/s"
        )

    def progress(self, total: int, done: int) -> AbstractContextManager[Callable[[int], None]]:
        """A context giving `advance(iteration)`: the bar on a terminal, a no-op otherwise."""
        if not self.tty:
            return contextlib.nullcontext(lambda it: None)
        return self._rich(total, done)

    @contextlib.contextmanager
    def _rich(self, total: int, done: int) -> Iterator[Callable[[int], None]]:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn, TimeRemainingColumn

        progress = Progress(
            "[progress.description]{task.description}",
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=Console(stderr=True),
        )
        task = progress.add_task("training", total=total, completed=done)
        with progress:
            self._progress = progress
            try:
                yield lambda it: progress.update(task, completed=it)
            finally:
                self._progress = None
