"""The sweep's Optuna study: storage, which grid point each trial holds, who runs a point, and its state.

A trial holds one grid point (its params). A point's result is its first COMPLETE trial, or its latest FAIL
trial with an `error` (a user error: the run cannot succeed as configured). A FAIL trial without `error` was
stopped (SIGTERM, Ctrl-C, a killed worker): the point is still to do and resumes from its checkpoint. A
PRUNED trial with `duplicate_of` was a second trial handed the same point; it never ran.

Who runs a point, across processes and machines: of the trials holding it that are RUNNING (alive) or have a
result, the one with the lowest trial id. A trial decides after it exists in the storage, so a later trial
always sees an earlier one (SQLite serialises writers: ids follow commit order; on a server database a trial
waits `settle` seconds first, longer than any transaction that inserts a trial).
"""

from __future__ import annotations

import contextlib
import datetime
import logging
import os
import socket
import threading
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from resdsl.diagnostics import InputError, UsageError
from resdsl.experiments import storage
from resdsl.experiments.grid import Point

GRACE_S = 60  # a running trial silent this long is failed by any worker (RESDSL_SWEEP_GRACE overrides it)
GRACE_ENV = "RESDSL_SWEEP_GRACE"


def grace_s() -> int:
    """Seconds without a heartbeat after which a running trial's worker counts as lost."""
    text = os.environ.get(GRACE_ENV, "").strip()
    if not text:
        return GRACE_S
    if not text.isdigit() or not 3 <= int(text) <= 86400:
        raise UsageError(f"{GRACE_ENV}={text}: give whole seconds from 3 to 86400")
    return int(text)


def heartbeat_s() -> int:
    """A running trial records a heartbeat this often: six in a grace period (10 s by default)."""
    return max(1, grace_s() // 6)


# A trial's user attributes
ERROR, STOPPED, DUPLICATE, HOST, PID, RUN = "error", "stopped", "duplicate_of", "host", "pid", "run"

check_url = storage.check_url


def redact(url: str) -> str:
    """The URL without its password, for files and messages."""
    return storage.hide_password(url)


def sqlite_path(url: str) -> str | None:
    return storage.sqlite_file(url)


def open_study(url: str, name: str, config: dict[str, Any]):
    """The study `name` in the storage at `url`, created if missing (its `config` as a user attribute)."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    # Heartbeats are experimental in Optuna and meant for study.optimize; the sweep records them itself.
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed to be used with Study.optimize")
    logging.getLogger("alembic").setLevel(logging.ERROR)
    engine_url = storage.engine_url(url)  # checked, its driver found, before Optuna sees it
    storage.check_sqlite_file(url)
    seconds = storage.timeout_s()
    path = sqlite_path(url)
    # Tables are created by the first process only; others wait (SQLite: several workers start at once).
    guard = _file_lock(path + ".lock", seconds) if path else contextlib.nullcontext()
    try:
        with guard:
            study = _create(engine_url, name, config, seconds)
    except TimeoutError:
        raise InputError(
            f"cannot open the sweep's database {redact(url)}: its lock {path}.lock is held by another process "
            f"and was not released in {seconds:g} s\nhint: wait for it, or set {storage.TIMEOUT_ENV}=SECONDS"
        ) from None
    except Exception as err:  # sqlalchemy's OperationalError and friends: a server that cannot be reached
        if type(err).__module__.startswith(("sqlalchemy", "optuna")):
            raise InputError(f"cannot open the sweep's database {redact(url)}: {_reason(err, seconds)}") from None
        raise
    return study


def _create(engine_url: str, name: str, config: dict[str, Any], seconds: float):
    """Optuna's storage and the study, created if missing. Two workers that create a server database's tables
    at the same moment collide (PostgreSQL: `duplicate key value violates unique constraint`): the one that
    lost tries again, finding the tables made."""
    import optuna

    deadline = time.monotonic() + seconds
    while True:
        try:
            rdb = optuna.storages.RDBStorage(
                engine_url,
                engine_kwargs=storage.engine_kwargs(engine_url),
                heartbeat_interval=heartbeat_s(),
                grace_period=grace_s(),
            )
            study = optuna.create_study(storage=rdb, study_name=name, load_if_exists=True, direction="minimize")
            if "config" not in study.user_attrs:
                study.set_user_attr("config", config)
            return study
        except Exception as err:
            text = str(err).lower()
            racing = type(err).__module__.startswith("sqlalchemy") and ("duplicate" in text or "already exists" in text)
            if not racing or time.monotonic() > deadline:
                raise
            time.sleep(0.5)


@contextlib.contextmanager
def database_errors(url: str) -> Iterator[None]:
    """A database that fails while the sweep runs (a server gone, a disk full) ends the worker with one line."""
    try:
        yield
    except Exception as err:
        if not _from_database(err):
            raise
        raise InputError(f"the sweep's database {redact(url)} failed: {_reason(err, storage.timeout_s())}") from None


def _from_database(err: BaseException) -> bool:
    """An error of the database layer (SQLAlchemy, a driver, Optuna's storage), not of resdsl or the run."""
    from optuna.exceptions import StorageInternalError

    modules = ("sqlalchemy", "optuna.storages", "psycopg", "sqlite3", "pymysql", "MySQLdb")
    return isinstance(err, StorageInternalError) or type(err).__module__.startswith(modules)


def _reason(err: BaseException, seconds: float) -> str:
    """The first line of the error at the root of a database error, said plainly where it is a timeout."""
    while err.__cause__ is not None:  # Optuna's StorageInternalError wraps SQLAlchemy's, which wraps the driver's
        err = err.__cause__
    text = str(getattr(err, "orig", None) or err).strip()
    first = text.splitlines()[0] if text else type(err).__name__
    if "lock timeout" in first.lower():
        return f"another session held a lock for {seconds:g} s ({first[:200]})\nhint: set {storage.TIMEOUT_ENV}=SECONDS"
    if "timeout" in first.lower() or "timed out" in first.lower():
        return f"the server did not answer in {seconds:g} s ({first[:200]})\nhint: set {storage.TIMEOUT_ENV}=SECONDS"
    if "database is locked" in first:
        return f"it stayed locked by another process for {seconds:g} s\nhint: set {storage.TIMEOUT_ENV}=SECONDS"
    return first[:300]


@contextlib.contextmanager
def _file_lock(path: str, seconds: float) -> Iterator[None]:
    """filelock's lock, given up after `seconds` (TimeoutError)."""
    from filelock import FileLock, Timeout

    try:
        lock = FileLock(path, timeout=seconds)
        lock.acquire()
    except Timeout:
        raise TimeoutError(path) from None
    try:
        yield
    finally:
        lock.release()


def point_of(trial, axes: dict[str, list[str]]) -> Point | None:
    """The grid point a (frozen) trial holds, or None when its params are not this grid's."""
    if set(trial.params) != set(axes):
        return None
    return Point(tuple((k, str(trial.params[k])) for k in axes))


# ---------------------------------------------------------------------------------------- states


@dataclass
class PointState:
    state: str  # done | failed | running | stopped | pending
    value: float | None = None  # the final test error (done)
    detail: str = ""  # the error (failed), why it stopped (stopped), the host (running)
    trial_id: int | None = None


def _is_duplicate(trial) -> bool:
    return DUPLICATE in trial.user_attrs


def point_states(study, axes: dict[str, list[str]], points: list[Point]) -> dict[str, PointState]:
    """Each point's state, by run name, from every trial in the storage."""
    from optuna.trial import TrialState

    states = {p.name: PointState("pending") for p in points}
    for trial in sorted(study.get_trials(deepcopy=False), key=lambda t: t._trial_id):
        point = point_of(trial, axes)
        if point is None or point.name not in states or _is_duplicate(trial):
            continue
        current = states[point.name]
        if current.state == "done":
            continue
        if trial.state == TrialState.COMPLETE:
            states[point.name] = PointState("done", trial.value, "", trial._trial_id)
        elif trial.state == TrialState.FAIL and ERROR in trial.user_attrs:
            states[point.name] = PointState("failed", None, trial.user_attrs[ERROR], trial._trial_id)
        elif trial.state == TrialState.FAIL:
            why = trial.user_attrs.get(STOPPED, "its worker stopped without a word (killed, or its heartbeat stopped)")
            states[point.name] = PointState("stopped", None, why, trial._trial_id)
        elif trial.state == TrialState.RUNNING and current.state != "running":
            where = f"{trial.user_attrs.get(HOST, '?')} pid {trial.user_attrs.get(PID, '?')}"
            states[point.name] = PointState("running", None, where, trial._trial_id)
        elif trial.state == TrialState.WAITING and current.state == "pending":
            states[point.name] = PointState("pending", None, "queued again", trial._trial_id)
    return states


# ---------------------------------------------------------------------------------------- dead workers


def reap(study) -> None:
    """Fail the RUNNING trials whose worker is gone: silent past the grace period (any machine; Optuna's
    heartbeat check), or run by a process of this machine that no longer exists. They stay to do."""
    import optuna
    from optuna.trial import TrialState

    optuna.storages.fail_stale_trials(study)
    storage, host = study._storage, socket.gethostname()
    now = datetime.datetime.now()
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        attrs = trial.user_attrs
        gone = attrs.get(HOST) == host and PID in attrs and not _pid_alive(int(attrs[PID]))
        unclaimed = (
            HOST not in attrs and trial.datetime_start and (now - trial.datetime_start).total_seconds() > grace_s()
        )
        if gone or unclaimed:
            with contextlib.suppress(Exception):  # another worker failed it first
                storage.set_trial_user_attr(trial._trial_id, STOPPED, "its worker process died")
                storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


# ---------------------------------------------------------------------------------------- claiming


def requeue(study, axes: dict[str, list[str]], point: Point) -> None:
    """Put a stopped point back in the queue (a WAITING trial with its params), unless one is waiting."""
    from optuna.trial import TrialState

    for trial in study.get_trials(deepcopy=False, states=(TrialState.WAITING,)):
        p = point_of(trial, axes)
        if p is not None and p.name == point.name:
            return
    study.enqueue_trial({k: v for k, v in point.values})


def owner(study, axes: dict[str, list[str]], trial_id: int, point: Point) -> int | None:
    """The trial id that runs `point`: the lowest among the trials holding it that are RUNNING or have a
    result; None if only `trial_id` holds it (then it is this trial's)."""
    from optuna.trial import TrialState

    holders = []
    for trial in study.get_trials(deepcopy=False):
        if trial._trial_id == trial_id or _is_duplicate(trial):
            continue
        p = point_of(trial, axes)
        if p is None or p.name != point.name:
            continue
        result = trial.state == TrialState.COMPLETE or (trial.state == TrialState.FAIL and ERROR in trial.user_attrs)
        if result or (trial.state == TrialState.RUNNING and trial._trial_id < trial_id):
            holders.append(trial._trial_id)
    return min(holders) if holders else None


def claim_attrs(name: str) -> dict[str, Any]:
    return {HOST: socket.gethostname(), PID: os.getpid(), RUN: name}


class Heartbeat:
    """Records a trial's heartbeat every heartbeat_s() seconds in a thread while the run trains."""

    def __init__(self, study, trial_id: int) -> None:
        self._storage, self._id = study._storage, trial_id
        self._stop = threading.Event()
        self._every = heartbeat_s()
        self._thread = threading.Thread(target=self._beat, daemon=True, name=f"heartbeat-{trial_id}")

    def _beat(self) -> None:
        while True:
            with contextlib.suppress(Exception):  # a database hiccup: the next beat tries again
                self._storage.record_heartbeat(self._id)
            if self._stop.wait(self._every):
                return

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
