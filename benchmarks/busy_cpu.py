"""Training on a busy CPU: `resdsl train`'s own choice of threads against `--threads 1` and `--threads 2`.

The same short digits run as `make demo` (specs/cifar20.rd, n=1, scikit-learn's digits, batch 64, offline),
in paired rounds: each round runs the default, `--threads 1` and `--threads 2` back to back (in a rotating
order), first on the machine as it is ("idle"), then with BUSY competing processes (`python -c "while
True: pass"`, two by default) that are started before the round and killed after it; they also stop by
themselves after --limit seconds, should this script die. OMP_NUM_THREADS is removed from the runs'
environment, so the default is the runner's own choice (resdsl/train/threads.py).

Timed: `train_time_s` of each run's summary.json (training steps only; start-up, data and evaluation are
not in it). A round's ratio is default / best of (--threads 1, --threads 2); the median over rounds is
reported. Targets (issue 22): busy <= 1.15, idle <= 1.05.

    .venv/bin/python benchmarks/busy_cpu.py [--rounds 2] [--iterations 60] [--busy 2] [--write]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _bench import machine, replace_section, report, resdsl_command  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
VARIANTS = {"default": [], "--threads 1": ["--threads", "1"], "--threads 2": ["--threads", "2"]}
SECTION = "## Training on a busy CPU (benchmarks/busy_cpu.py)"


def train(out: Path, iterations: int, extra: list[str]) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "OMP_WAIT_POLICY", "KMP_BLOCKTIME")}
    args = [*resdsl_command(), "train", str(ROOT / "specs" / "cifar20.rd"), "--dataset", "digits"]
    args += ["--set", "n=1", "--set", "flip=false", "--batch", "64", "--iterations", str(iterations)]
    args += ["--eval-every", str(iterations), "--out", str(out), "-q", *extra]
    started = time.perf_counter()
    subprocess.run(args, check=True, env=env, timeout=900, cwd=ROOT)
    summary = json.loads((out / "summary.json").read_text())
    summary["wall_s"] = time.perf_counter() - started
    return summary


def start_busy(count: int, limit: float) -> list[subprocess.Popen]:
    code = f"import time\nend = time.time() + {limit}\nwhile time.time() < end: pass"
    procs = [subprocess.Popen([sys.executable, "-c", code]) for _ in range(count)]
    time.sleep(1.0)  # running before the first run measures the machine
    return procs


def stop_busy(procs: list[subprocess.Popen]) -> None:
    for p in procs:
        p.kill()
    for p in procs:
        p.wait()


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"{one:.1f} (5 min: {five:.1f})"


def measure(rounds: int, iterations: int, busy: int, limit: float, work: Path) -> str:
    lines = []
    for condition in ("idle", f"{busy} busy processes"):
        ratios: list[float] = []
        rows: dict[str, list[dict]] = {name: [] for name in VARIANTS}
        before = load()
        for r in range(rounds):
            order = list(VARIANTS)
            order = order[r % 3 :] + order[: r % 3]
            procs = start_busy(busy, limit) if condition != "idle" else []
            try:
                times = {}
                for name in order:
                    out = work / f"{condition.split()[0]}-{r}-{name.replace(' ', '').replace('-', '')}"
                    summary = train(out, iterations, VARIANTS[name])
                    rows[name].append(summary)
                    times[name] = summary["train_time_s"]
            finally:
                stop_busy(procs)
            ratios.append(times["default"] / min(times["--threads 1"], times["--threads 2"]))
        lines.append(f"{condition} (load average before: {before}, after: {load()}):")
        for name, runs in rows.items():
            speeds = ", ".join(f"{s['images_per_s']:.0f}" for s in runs)
            chosen = {s["threads"]["threads"] for s in runs}
            how = (
                f" (chose {'/'.join(map(str, sorted(chosen)))}: {runs[-1]['threads']['reason']})"
                if name == "default"
                else ""
            )
            walls = ", ".join(f"{s['wall_s']:.1f}" for s in runs)
            lines.append(f"  {name:<12} images/s {speeds}; wall s {walls}{how}")
        pairs = ", ".join(f"{x:.2f}" for x in ratios)
        lines.append(f"  default / best of --threads 1, 2: median {statistics.median(ratios):.2f}x (rounds: {pairs})")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--iterations", type=int, default=60)
    parser.add_argument("--busy", type=int, default=2, help="competing busy processes")
    parser.add_argument("--limit", type=float, default=900.0, help="seconds after which a busy process stops itself")
    parser.add_argument("--write", action="store_true", help="record the figures in docs/benchmarks.md")
    args = parser.parse_args()
    import torch

    header = (
        f"{machine()}, torch {torch.__version__}; specs/cifar20.rd n=1 on digits, batch 64, "
        f"{args.iterations} iterations per run, {args.rounds} paired rounds; {time.strftime('%Y-%m-%d')}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        figures = measure(args.rounds, args.iterations, args.busy, args.limit, Path(tmp))
    text = f"{header}\n\n{figures}"

    def writer(body: str) -> None:
        replace_section(SECTION, f"{SECTION}\n\n{DOC_TEXT}\n\n```\n{body}\n```\n")

    report(text, args.write, writer)


DOC_TEXT = (
    "`resdsl train` chooses its threads from the cores it may use and how many of them other processes keep\n"
    "busy (resdsl/train/threads.py). Paired runs of the default, `--threads 1` and `--threads 2` on the digits\n"
    "run, idle and with competing busy processes; the ratio is the default's training time over the best of\n"
    "the other two (targets: at most 1.15x busy, 1.05x idle)."
)


if __name__ == "__main__":
    main()
