"""`resdsl sweep`: every point of a grid of `--set` values, each an ordinary run directory, scheduled by an
Optuna study (GridSampler over an RDB storage) that any number of workers share.

The sweep directory:

    DIR/sweep.json                 what the sweep is (spec, grid, seeds, options), its study and database
    DIR/study.db                   the Optuna storage (SQLite), unless --join names another database
    DIR/runs/n=3,shortcut=A,seed=0/   one run directory per point (resdsl train's, resumable)
    DIR/logs/n=3,shortcut=A,seed=0.log   what each run printed

A worker loops: fail the trials of dead workers, stop when every point has a result, ask the study for a
trial (the GridSampler hands out points no trial has started; a stopped point is queued again), run it
unless another trial owns its point (study.owner), tell the result. A run that stopped resumes from its
checkpoint; one that finished is never run again. `--parallel K` starts K such workers on this machine.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import sys
import time
import traceback
from dataclasses import asdict, dataclass
from pathlib import Path

from resdsl.diagnostics import InputError, ResdslError, UsageError
from resdsl.experiments import storage
from resdsl.experiments import study as studies
from resdsl.experiments.grid import SEED, Point, describe
from resdsl.experiments.sweepfile import FORMAT, SWEEP_FILE, SweepConfig, read_sweep

__all__ = ["FORMAT", "SWEEP_FILE", "SweepConfig", "read_sweep", "run", "status", "status_table"]

DATABASE = "study.db"
RUNS = "runs"
LOGS = "logs"
POLL_S = 5.0  # how often a worker with nothing to do looks again while other workers' runs go on


@dataclass
class Machine:
    """How this machine runs its share: not part of what the sweep is."""

    out: Path
    url: str
    device: str | None = None
    parallel: int = 1
    threads: int = 1  # torch threads per run
    quiet: bool = False
    threads_reason: str | None = None  # why `threads` (the runs' logs and summary.json say it); None: --threads
    wait_policy: str = "passive"  # OpenMP's, for the worker processes (resdsl.train.threads)
    threads_line: str = ""  # the choice, said once when the sweep starts


def spec_digest(spec: Path) -> str:
    try:
        return hashlib.sha256(Path(spec).read_bytes()).hexdigest()
    except OSError as err:
        raise InputError(f"cannot read {spec}: {err.strerror or err}") from None


def default_parallel(device: str | None) -> tuple[int, int]:
    """(runs at once, torch threads per run): one run per GPU; on a CPU a run per 4 cores, the cores shared."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    if device is None or device.startswith("cuda"):
        import torch

        if torch.cuda.is_available():
            gpus = 1 if device and ":" in device else torch.cuda.device_count()
            return gpus, threads_for(gpus)
    parallel = max(1, cores // 4)
    return parallel, threads_for(parallel)


def threads_for(parallel: int) -> int:
    """torch threads per run: OMP_NUM_THREADS when set, else the cores shared out."""
    if os.environ.get("OMP_NUM_THREADS", "").isdigit() and int(os.environ["OMP_NUM_THREADS"]) > 0:
        return int(os.environ["OMP_NUM_THREADS"])
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, cores // parallel)


# ---------------------------------------------------------------------------------------- checks


def check_points(cfg: SweepConfig) -> None:
    """Every point's --set values name things the spec has: a misspelt grid name is a usage error for the whole
    sweep (exit 2); a point whose network does not check (shapes that do not fit) fails alone, when it runs."""
    from resdsl.ir.pipeline import load_network
    from resdsl.lang.overrides import parse_sets

    for point in cfg.points():
        overrides = parse_sets([*cfg.sets, *point.sets()])
        overrides.update(cfg.train)
        try:
            load_network(Path(cfg.spec), overrides)
        except UsageError as err:
            raise UsageError(f"--grid {point.name}: {err}") from None
        except ResdslError:
            continue  # recorded as this point's failure when it runs


def open_sweep_dir(cfg: SweepConfig, out: Path, url: str) -> None:
    """Create the sweep directory, or check that it holds this very sweep."""
    path = out / SWEEP_FILE
    if path.exists():
        try:
            record = read_sweep(out)
        except InputError as err:  # unreadable, or not as resdsl writes it: the field that is wrong
            raise InputError(f"{err}; use another --out") from None
        if record.config != cfg:
            raise InputError(f"{out} holds another sweep ({_difference(record.config, cfg)}); use another --out")
        _same_storage(out, record.storage, url)
        return
    if out.exists() and any(p for p in out.iterdir() if not p.name.startswith(".")):
        raise InputError(f"{out} exists and is no sweep directory (no {SWEEP_FILE}); use another --out")
    out.mkdir(parents=True, exist_ok=True)
    record = {"format": FORMAT, "config": asdict(cfg), "study": cfg.study_name, "storage": studies.redact(url)}
    from resdsl.train.rundir import atomic_write

    atomic_write(path, json.dumps(record, indent=2) + "\n")


def _same_storage(out: Path, stored: str | None, url: str) -> None:
    """A sweep directory continues with the study it started in: its own study.db (wherever the directory now
    is), or the database it was given with --join."""
    mine = studies.redact(url)
    if stored is None or stored == mine:
        return
    local = studies.sqlite_path(stored)
    if local is not None and Path(local).name == DATABASE and mine == studies.redact(storage_url(out, None)):
        return  # the directory moved: its study.db moved with it
    raise InputError(f"{out}'s study is in {stored}, not {mine}; pass --join with that URL, or use another --out")


def _difference(theirs: SweepConfig, mine: SweepConfig) -> str:
    a, b = asdict(theirs), asdict(mine)
    key = next(k for k in a if a[k] != b[k])
    if key == "axes":
        return f"the grid {describe(theirs.axes)} there, {describe(mine.axes)} here"
    if key == "spec_sha256":
        return f"{mine.spec} has changed since the sweep started"
    return f"{key} {a[key]} there, {b[key]} here"


def storage_url(out: Path, join: str | None) -> str:
    storage.timeout_s()  # RESDSL_DB_TIMEOUT checked before anything is created
    if join is not None:
        storage.check_join(join)  # before anything is created: a bad URL, a missing driver, an unwritable file
        return join
    return f"sqlite:///{(Path(out) / DATABASE).resolve()}"


# ---------------------------------------------------------------------------------------- running


def run(cfg: SweepConfig, machine: Machine) -> int:
    """The sweep on this machine; returns the exit code (0: every point done, 1: some failed, 128+N: stopped)."""
    check_points(cfg)
    open_sweep_dir(cfg, machine.out, machine.url)
    studies.open_study(machine.url, cfg.study_name, asdict(cfg))  # created once, before the workers start
    if machine.threads_line and not machine.quiet:
        print(machine.threads_line, file=sys.stderr, flush=True)
    with studies.database_errors(machine.url):
        code = work(cfg, machine, 0) if machine.parallel == 1 else _run_workers(cfg, machine)
        if code == 0 or code == 1:
            code = _summarise(cfg, machine)
    return code


def _run_workers(cfg: SweepConfig, machine: Machine) -> int:
    """K worker processes on this machine; SIGTERM/SIGINT are passed on, and each stops after a checkpoint."""
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_worker_main, args=(cfg, machine, i)) for i in range(machine.parallel)]
    for w in workers:
        w.start()

    def forward(signum, frame) -> None:
        for w in workers:
            if w.pid is not None and w.is_alive():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(w.pid, signum)

    old = {s: signal.signal(s, forward) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        for w in workers:
            w.join()
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)
    codes = [w.exitcode for w in workers]
    stopped = [c for c in codes if c not in (0, 1)]
    return (128 - stopped[0] if stopped[0] < 0 else stopped[0]) if stopped else max(codes)


def _worker_main(cfg: SweepConfig, machine: Machine, index: int) -> None:
    # A fresh process (spawn) that has not imported torch yet: OpenMP's settings still act here.
    os.environ["OMP_NUM_THREADS"] = str(machine.threads)
    os.environ.setdefault("OMP_WAIT_POLICY", machine.wait_policy.upper())
    if machine.wait_policy == "passive":
        os.environ.setdefault("KMP_BLOCKTIME", "0")
    if machine.device is None or machine.device == "cuda":
        gpus = os.environ.get("CUDA_VISIBLE_DEVICES")
        if gpus is None:
            os.environ["CUDA_VISIBLE_DEVICES"] = str(index)  # one GPU per worker (ignored without GPUs)
    try:
        with studies.database_errors(machine.url):
            code = work(cfg, machine, index)
        sys.exit(code)
    except ResdslError as err:
        print(err.render(), file=sys.stderr)
        sys.exit(2 if isinstance(err, UsageError) else 1)


class _Stop:
    """SIGTERM or Ctrl-C between runs: the worker stops before its next run (during a run, the runner's own
    handler saves a checkpoint first)."""

    def __init__(self) -> None:
        self.signum = 0

    def __enter__(self) -> _Stop:
        self._old = {s: signal.signal(s, self._handle) for s in (signal.SIGINT, signal.SIGTERM)}
        return self

    def _handle(self, signum, frame) -> None:
        self.signum = signum

    def __exit__(self, *exc) -> None:
        for s, handler in self._old.items():
            signal.signal(s, handler)


def work(cfg: SweepConfig, machine: Machine, index: int) -> int:
    """One worker's loop; returns 0 when no point is left to do, 128+N when stopped by signal N."""
    import torch

    from resdsl.train.dist import LAUNCHED

    os.environ.pop(LAUNCHED, None)
    torch.set_num_threads(machine.threads)
    study = studies.open_study(machine.url, cfg.study_name, asdict(cfg))
    study.sampler = _grid_sampler(cfg.axes)
    every = cfg.points()
    say = _say(machine, index)
    with _Stop() as stop:
        while not stop.signum:
            studies.reap(study)
            states = studies.point_states(study, cfg.axes, every)
            todo = [p for p in every if states[p.name].state not in ("done", "failed")]
            if not todo:
                return 0
            free = [p for p in todo if states[p.name].state != "running"]
            if not free:
                time.sleep(POLL_S)  # the rest run in other workers: wait for them (or for them to die)
                continue
            for p in free:
                if states[p.name].state == "stopped":
                    studies.requeue(study, cfg.axes, p)
            trial = study.ask()
            point = Point(tuple((k, str(trial.suggest_categorical(k, values))) for k, values in cfg.axes.items()))
            for key, value in studies.claim_attrs(point.name).items():
                trial.set_user_attr(key, value)
            if not studies.sqlite_path(machine.url):
                time.sleep(2.0)  # settle: a trial inserted just before this one is committed by now
            holder = studies.owner(study, cfg.axes, trial._trial_id, point)
            if holder is not None:
                trial.set_user_attr(studies.DUPLICATE, holder)
                study.tell(trial, state=_pruned())
                continue
            if stop.signum:
                trial.set_user_attr(studies.STOPPED, "the sweep was stopped before the run started")
                study.tell(trial, state=_failed())
                break
            done = sum(1 for s in states.values() if s.state in ("done", "failed")) + 1
            say(f"[{done}/{len(every)}] {point.name}: training")
            with studies.Heartbeat(study, trial._trial_id):
                outcome = run_point(cfg, machine, point)
            if outcome.state == "done":
                study.tell(trial, outcome.value)
                say(f"[{done}/{len(every)}] {point.name}: done, test error {100 * outcome.value:.2f}%")
            elif outcome.state == "failed":
                trial.set_user_attr(studies.ERROR, outcome.detail)
                study.tell(trial, state=_failed())
                say(f"[{done}/{len(every)}] {point.name}: failed: {outcome.detail}")
            else:
                trial.set_user_attr(studies.STOPPED, outcome.detail)
                study.tell(trial, state=_failed())
                say(f"{point.name}: {outcome.detail}")
                return outcome.code
    return 128 + int(stop.signum) if stop.signum else 0


def _grid_sampler(axes: dict[str, list[str]]):
    """Optuna's GridSampler over the axes; the sweep, not the sampler, decides when the study is over (its
    after_trial would call study.stop(), which only works inside study.optimize)."""
    from optuna.samplers import GridSampler

    class SweepGridSampler(GridSampler):
        def after_trial(self, study, trial, state, values) -> None:
            pass

    return SweepGridSampler(axes, seed=0)


def _pruned():
    from optuna.trial import TrialState

    return TrialState.PRUNED


def _failed():
    from optuna.trial import TrialState

    return TrialState.FAIL


def _say(machine: Machine, index: int):
    prefix = f"[worker {index}] " if machine.parallel > 1 else ""

    def say(text: str) -> None:
        if not machine.quiet:
            print(prefix + text, file=sys.stderr, flush=True)

    return say


@dataclass
class Outcome:
    state: str  # done | failed | stopped
    value: float | None = None
    detail: str = ""
    code: int = 0


def run_dir(out: Path, point: Point) -> Path:
    return Path(out) / RUNS / point.name


def run_point(cfg: SweepConfig, machine: Machine, point: Point) -> Outcome:
    """Train one point in this process (a new run, or the run resumed from its directory); its output goes
    to DIR/logs/NAME.log."""
    from resdsl.train import rundir, session
    from resdsl.train.console import Interrupted
    from resdsl.train.plan import Options

    out = run_dir(machine.out, point)
    started = (out / rundir.RECIPE).exists() or (out / rundir.CHECKPOINT).exists()
    overrides = dict(cfg.train)
    overrides["seed"] = int(point.params.get(SEED, 0))
    opts = Options(
        out=out,
        dataset=cfg.dataset,
        data=Path(cfg.data) if cfg.data else None,
        device=machine.device,
        amp=cfg.amp,
        resume=out if started else None,
        recipe_overrides=overrides,
        threads=machine.threads,
        threads_reason=machine.threads_reason,
    )
    sets = tuple([*cfg.sets, *(s for s in point.sets() if not s.startswith(f"{SEED}="))])
    log = Path(machine.out) / LOGS / f"{point.name}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "a") as stream, contextlib.redirect_stderr(stream):
        try:
            summary = session.run(Path(cfg.spec), sets, opts)
        except Interrupted as stop:
            print(stop, file=stream)
            return Outcome("stopped", detail=f"stopped with a checkpoint ({stop})", code=stop.code)
        except KeyboardInterrupt as stop:
            return Outcome("stopped", detail="stopped at once, without a checkpoint", code=getattr(stop, "code", 130))
        except ResdslError as err:
            print(err.render(), file=stream)
            return Outcome("failed", detail=err.render().splitlines()[0].removeprefix("error: "))
        except Exception as err:  # a bug or the machine (out of memory): recorded, the sweep goes on
            traceback.print_exc(file=stream)
            return Outcome("failed", detail=f"{type(err).__name__}: {err}"[:500])
    return Outcome("done", value=float(summary["final_test_error"]))


def _summarise(cfg: SweepConfig, machine: Machine) -> int:
    study = studies.open_study(machine.url, cfg.study_name, asdict(cfg))
    states = studies.point_states(study, cfg.axes, cfg.points())
    failed = [n for n, s in states.items() if s.state == "failed"]
    done = sum(1 for s in states.values() if s.state == "done")
    if not machine.quiet:
        print(f"sweep {machine.out}: {done} of {len(states)} runs done, {len(failed)} failed", file=sys.stderr)
        for name in failed:
            print(f"  failed: {name}: {states[name].detail}", file=sys.stderr)
    return 1 if failed else 0


# ---------------------------------------------------------------------------------------- status


def status(out: Path, join: str | None = None) -> list[tuple[str, studies.PointState]]:
    """Every point of the sweep in DIR with its state, in grid order, from the study in --join's database, else
    in the one sweep.json names (DIR/study.db for a sweep without --join)."""
    record = read_sweep(out)
    cfg = record.config
    url = storage_url(out, join) if join is not None else _recorded_storage(Path(out), record.storage)
    study = studies.open_study(url, record.study, asdict(cfg))
    with studies.database_errors(url):
        states = studies.point_states(study, cfg.axes, cfg.points())
    return [(p.name, states[p.name]) for p in cfg.points()]


def _recorded_storage(out: Path, stored: str | None) -> str:
    """The database sweep.json names: its own study.db (also after the directory moved), another SQLite file,
    or a server (then --join must give the password, which sweep.json does not keep)."""
    local = out / DATABASE
    file = studies.sqlite_path(stored) if stored else str(local)
    if file is not None:
        if local.is_file() and (stored is None or Path(file).name == DATABASE):
            return storage_url(out, None)
        if not Path(file).is_file():
            raise InputError(f"{out}'s study is in {stored}, which does not exist; pass --join URL if it moved")
        return f"sqlite:///{Path(file).resolve()}"
    if ":***@" in stored:
        raise InputError(f"{out}'s study is in {stored}: pass --join URL (with its password)")
    return stored


def status_table(rows: list[tuple[str, studies.PointState]]) -> str:
    width = max(len(n) for n, _ in rows)
    lines = [f"{'run':<{width}}  {'state':<8}  detail"]
    for name, s in rows:
        detail = f"test error {100 * s.value:.2f}%" if s.value is not None else s.detail
        lines.append(f"{name:<{width}}  {s.state:<8}  {detail}".rstrip())
    counts = {k: sum(1 for _, s in rows if s.state == k) for k in ("done", "running", "failed", "stopped", "pending")}
    lines.append(", ".join(f"{v} {k}" for k, v in counts.items()))
    return "\n".join(lines)
