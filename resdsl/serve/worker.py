"""Each request of the page is analysed in a process of its own, forked from a forkserver that has
imported (and warmed up) the pipeline once: a spec that takes too long is stopped at the time limit,
with the `dot` it started, and the server carries on. At most `slots` run at once."""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

from resdsl.diagnostics import ResdslError

MEMORY_LIMIT = 4 << 30  # bytes of address space for one analysis: a runaway spec fails, not the machine


class TimeLimit(ResdslError):
    """The analysis ran past the per-request time limit and was stopped."""

    def render(self) -> str:
        return f"error: {self}"


class Busy(ResdslError):
    """Every worker slot stayed taken for as long as a request may take."""

    def render(self) -> str:
        return f"error: {self}"


class WorkerFailed(ResdslError):
    """The worker process ended without an answer (killed, out of memory) or hit a resdsl bug."""

    def render(self) -> str:
        return f"error: {self}"


class Runner:
    """Runs `fn(*args)` (a module-level function returning JSON data) in a fresh worker process."""

    def __init__(self, seconds: float, slots: int = 2) -> None:
        self.seconds = seconds
        self._slots = threading.BoundedSemaphore(slots)
        if "forkserver" in multiprocessing.get_all_start_methods():
            self._ctx = multiprocessing.get_context("forkserver")
            self._ctx.set_forkserver_preload(["__main__", "resdsl.serve.warm"])  # __main__: not re-run per worker
        else:  # Windows: each worker imports the pipeline itself
            self._ctx = multiprocessing.get_context("spawn")

    def start(self) -> None:
        """Start the forkserver now (it imports and warms up the pipeline), not at the first request."""
        self.call(_noop)

    def call(self, fn: Callable[..., dict[str, Any]], *args: Any) -> dict[str, Any]:
        if not self._slots.acquire(timeout=self.seconds):
            raise Busy(f"the server is busy: no analysis finished within {self.seconds:g} s; try again")
        try:
            return self._run(fn, args)
        finally:
            self._slots.release()

    def _run(self, fn: Callable[..., dict[str, Any]], args: tuple[Any, ...]) -> dict[str, Any]:
        receive, send = self._ctx.Pipe(duplex=False)
        proc = self._ctx.Process(target=_child, args=(send, fn, args), daemon=True)
        started = time.monotonic()
        proc.start()
        send.close()
        answered = False
        try:
            if not receive.poll(self.seconds):
                raise TimeLimit(
                    f"the analysis took longer than the limit of {self.seconds:g} s per request and was stopped; "
                    "a network this large is better checked with `resdsl check` (or serve it with a larger --timeout)"
                )
            try:
                kind, value = receive.recv()
            except (EOFError, OSError):
                proc.join(1)
                raise WorkerFailed(
                    f"the analysis stopped without an answer (exit code {proc.exitcode}) after "
                    f"{time.monotonic() - started:.1f} s; it may have run out of memory"
                ) from None
            answered = True
        finally:
            receive.close()
            if not answered:
                _kill(proc)
            proc.join(5)
        if kind == "bug":
            raise WorkerFailed(f"resdsl bug: {value}; please report it with the spec")
        if kind == "failed":
            raise WorkerFailed(value)
        return value


def _noop() -> dict[str, Any]:
    return {}


def _child(send: Connection, fn: Callable[..., dict[str, Any]], args: tuple[Any, ...]) -> None:
    if hasattr(os, "setpgid"):
        os.setpgid(0, 0)  # its own process group: a stop takes Graphviz's `dot` with it
    try:
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))
    except (ImportError, ValueError, OSError):
        pass
    try:
        answer: tuple[str, Any] = ("ok", fn(*args))
    except MemoryError:
        answer = ("failed", f"the analysis ran out of memory (the limit is {MEMORY_LIMIT >> 30} GiB per request)")
    except Exception as err:  # a bug: reported to the page in one line, not a traceback
        answer = ("bug", f"{type(err).__name__}: {err}")
    send.send(answer)
    send.close()


def _kill(proc: multiprocessing.process.BaseProcess) -> None:
    """Stop a worker that gave no answer, and its process group (it may have started `dot`)."""
    if proc.pid is not None and proc.is_alive():
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (AttributeError, ProcessLookupError, PermissionError):  # no process groups (Windows)
            proc.kill()
