"""How many CPU threads a run uses: torch's intra-op threads, DataLoader workers and OpenMP's wait policy.

Measured on a 2-core machine (docs/benchmarks.md): with two other busy processes, torch's default of two
OpenMP threads trains 4-5x slower than one thread, because a thread that finishes its share of an operator
spins waiting for the other one, which the scheduler has taken off its core; on an idle machine two
threads are right. So the runner looks at the cores it may use and at what else runs on them, and picks:

- `--threads N` when given; else `OMP_NUM_THREADS` when the environment sets it (the usual way to pin it);
- else `threads = max(1, cores - round(others))`, at most `cores`: `others` is how many of our cores
  other processes keep busy *now*, measured from /proc/stat over a quarter of a second (less this process's
  own CPU time). The 1-minute load average lags a minute behind a job that starts or stops, so it is only
  the fallback where /proc/stat is missing (and is reported beside the measurement);
- DataLoader workers (image folders only): the free cores, at least 1, at most 8, unless --workers is given;
- OpenMP's wait policy: ACTIVE (spin, the fastest) only when this run has the machine to itself, PASSIVE
  (sleep at once) otherwise.

What can be changed in a running process: the intra-op thread count, at any time (`torch.set_num_threads`);
the inter-op count once, before any parallel work (`set_num_interop_threads` raises after that: guarded).
What cannot: OpenMP reads OMP_WAIT_POLICY and KMP_BLOCKTIME once, when its runtime is loaded, i.e. when torch
is imported. `export_env` therefore sets them in this process only while torch is not imported yet (as in
`resdsl train`, which decides before its first torch import), and `child_env` gives the environment for
the fresh processes a command starts (torchrun's ranks, sweep workers). DataLoader workers are forked from
the training process: they inherit its runtime, and torch gives each of them one thread.

The standalone train.py carries a copy of `choose` (templates/train_script.py.j2); tests/test_threads.py
checks that the two agree.
"""

from __future__ import annotations

import math
import os
import sys
import time
from dataclasses import asdict, dataclass, replace
from typing import Any

MAX_WORKERS = 8
SAMPLE_S = 0.25  # how long /proc/stat is watched
OVERRIDE_HINT = "--threads to override"


@dataclass(frozen=True)
class Threading:
    """The choice: intra-op threads, DataLoader workers, OpenMP wait policy and why."""

    threads: int
    workers: int  # DataLoader processes (0: the data needs none)
    wait_policy: str  # "active" | "passive"
    reason: str
    cores: int = 1  # usable cores
    free: int = 1  # of them, not kept busy by other processes (at least 1)

    def line(self) -> str:
        """The log line: `threads: 1 (2 cores, 2.0 busy with other processes, load 3.9; --threads to override)`."""
        workers = f", {self.workers} DataLoader workers" if self.workers else ""
        return f"threads: {self.threads}{workers} ({self.reason}; {OVERRIDE_HINT})"

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


# ---------------------------------------------------------------------------------------- the policy


def choose(
    cores: int,
    others: float,
    *,
    requested: int | None = None,
    env_threads: str | None = None,
    loader: bool = False,
    workers: int | None = None,
    load: float | None = None,
    reason: str | None = None,
) -> Threading:
    """The choice for `cores` usable cores of which other processes keep `others` busy (a pure function).

    `requested`: --threads; `env_threads`: OMP_NUM_THREADS as the environment spells it (ignored unless a
    positive integer); `loader`: the data comes through DataLoader workers (image folders), `workers` the
    --workers given; `load`: the load average, only reported; `reason`: the caller's words for a requested
    count (a sweep sharing out its cores)."""
    cores = max(1, int(cores))
    others = max(0.0, float(others))
    busy = int(others + 0.5)  # other processes' cores, rounded half up
    free = max(1, cores - busy)
    if requested is not None:
        threads, why = int(requested), reason or f"--threads {requested}"
    elif env_threads is not None and env_threads.strip().isdigit() and int(env_threads) > 0:
        threads, why = int(env_threads), f"OMP_NUM_THREADS={int(env_threads)}"
    else:
        threads = min(cores, free)
        why = f"{cores} core{'s' if cores != 1 else ''}, {others:.1f} busy with other processes"
        if busy >= cores:
            why += ": oversubscribed"
        if load is not None:
            why += f", load {load:.1f}"
    alone = busy == 0 and threads <= cores
    choice = Threading(threads, 0, "active" if alone else "passive", why, cores, free)
    return with_loader(choice, workers) if loader or workers is not None else choice


def with_loader(choice: Threading, workers: int | None = None) -> Threading:
    """The choice for data read through DataLoader workers: `workers` (--workers) or the free cores, at most 8."""
    return replace(choice, workers=int(workers) if workers is not None else min(MAX_WORKERS, choice.free))


def share(choice: Threading, runs: int) -> Threading:
    """Each of `runs` runs at once gets an equal part of the threads chosen for the machine (at least 1)."""
    if runs <= 1:
        return choice
    threads = max(1, choice.threads // runs)
    return replace(choice, threads=threads, reason=f"{choice.reason}, shared by {runs} runs at once")


# ---------------------------------------------------------------------------------------- the machine


def usable_cores() -> list[int]:
    """The CPUs this process may run on (its affinity), fewer when a cgroup CPU quota allows fewer."""
    try:
        cpus = sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = list(range(os.cpu_count() or 1))
    quota = _cgroup_quota()
    if quota is not None and quota < len(cpus):
        cpus = cpus[: max(1, math.ceil(quota))]
    return cpus


def _cgroup_quota() -> float | None:
    """cgroup v2's cpu.max as a number of CPUs (None: no limit or no cgroup v2)."""
    try:
        text = open("/sys/fs/cgroup/cpu.max").read().split()
        if len(text) == 2 and text[0] != "max":
            return int(text[0]) / int(text[1])
    except (OSError, ValueError, ZeroDivisionError):
        pass
    return None


def _cpu_ticks(cpus: list[int]) -> tuple[int, int] | None:
    """(busy, total) clock ticks of the given CPUs since boot, from /proc/stat (None where it is missing)."""
    try:
        lines = open("/proc/stat").read().splitlines()
    except OSError:
        return None
    wanted = {f"cpu{i}" for i in cpus}
    busy = total = 0
    found = False
    for line in lines:
        parts = line.split()
        if parts and parts[0] in wanted:
            # user nice system idle iowait irq softirq steal (guest time is already counted in user)
            ticks = [int(v) for v in parts[1:9]]
            idle = ticks[3] + ticks[4]
            total += sum(ticks)
            busy += sum(ticks) - idle
            found = True
    return (busy, total) if found and total else None


def load_average() -> float | None:
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):
        return None


def measure_others(cpus: list[int], seconds: float = SAMPLE_S) -> tuple[float, float | None]:
    """(cores kept busy by other processes now, the 1-minute load average): /proc/stat over `seconds`, less
    this process's own CPU time; where /proc/stat is missing, the load average less this process (it runs)."""
    load = load_average()
    before, own_before, t0 = _cpu_ticks(cpus), time.process_time(), time.monotonic()
    if before is not None:
        time.sleep(seconds)
        after, own, elapsed = _cpu_ticks(cpus), time.process_time() - own_before, time.monotonic() - t0
        if after is not None and after[1] > before[1]:
            fraction = (after[0] - before[0]) / (after[1] - before[1])
            return max(0.0, fraction * len(cpus) - own / max(elapsed, 1e-6)), load
    return (max(0.0, load - 1.0) if load is not None else 0.0), load


def decide(
    requested: int | None = None,
    *,
    loader: bool = False,
    workers: int | None = None,
    reason: str | None = None,
    environ: dict[str, str] | None = None,
) -> Threading:
    """The choice for this machine now; measures only when nothing fixes the thread count."""
    env = os.environ if environ is None else environ
    cpus = usable_cores()
    env_threads = env.get("OMP_NUM_THREADS")
    fixed = requested is not None or (env_threads is not None and env_threads.strip().isdigit() and int(env_threads))
    others, load = (0.0, load_average()) if fixed else measure_others(cpus)
    return choose(
        len(cpus),
        others,
        requested=requested,
        env_threads=env_threads,
        loader=loader,
        workers=workers,
        load=load,
        reason=reason,
    )


# ---------------------------------------------------------------------------------------- applying it


def child_env(choice: Threading, environ: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for a fresh process that should follow the choice (what the user set stays)."""
    env = dict(os.environ if environ is None else environ)
    env.setdefault("OMP_NUM_THREADS", str(choice.threads))
    env.setdefault("OMP_WAIT_POLICY", choice.wait_policy.upper())
    if choice.wait_policy == "passive":
        env.setdefault("KMP_BLOCKTIME", "0")  # Intel's OpenMP (libiomp); GNU's reads OMP_WAIT_POLICY
    return env


def export_env(choice: Threading) -> bool:
    """Set OMP_WAIT_POLICY (and KMP_BLOCKTIME) in this process when they can still act: before torch, and with
    it OpenMP, is loaded. Returns whether they were set. The user's own values stay."""
    if "torch" in sys.modules:
        return False
    os.environ.setdefault("OMP_WAIT_POLICY", choice.wait_policy.upper())
    if choice.wait_policy == "passive":
        os.environ.setdefault("KMP_BLOCKTIME", "0")
    return True


_interop_set = False


def apply(choice: Threading) -> int:
    """torch's intra-op thread count (and the inter-op count, when that is still allowed); returns the
    intra-op count before, for the caller to restore."""
    global _interop_set
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(choice.threads)
    if not _interop_set:
        _interop_set = True
        try:
            torch.set_num_interop_threads(choice.threads)
        except RuntimeError:  # parallel work has started, or it was set before: it stays
            pass
    return before
