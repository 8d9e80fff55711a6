"""Kill `resdsl train` with SIGKILL at random moments, resume it, again and again: the final weights must be
bitwise those of an uninterrupted run.

    .venv/bin/python benchmarks/kill_resume.py [--kills 20] [--iterations 300] [--seed 0]

The run: specs/cifar20.rd with n=1 on scikit-learn's digits at their own size (1x8x8), batch 32,
`--checkpoint-every 10 --eval-every 50 --deterministic`, every process with OMP_NUM_THREADS=1 (the same
thread count everywhere: it decides the order in which float sums are added). First an uninterrupted run
gives the reference and the times: how long a process takes to start (until it prints `training ...`) and to
train. Then each round starts the command (`--out DIR`, or `--resume DIR` as soon as the directory is a
run: it holds recipe.json) and sends SIGKILL at a random moment: in a quarter of the rounds (which ones is
drawn at random) uniformly within the start-up (as long as the median start-up so far), otherwise uniformly
within the next 2 x (training left / kills left) seconds after the process printed `training ...`. So kills land everywhere: while
importing, before recipe.json, before the first checkpoint, between and during checkpoint and metrics
writes, all along the training. After the
last kill one more `--resume` finishes the run, and its checkpoint (weights, momentum buffers, data order,
generators) and metrics.csv (less images/s) are compared with the reference, bitwise.

The checkout's resdsl runs (PYTHONPATH is set to it), whatever is installed.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

from _bench import machine  # noqa: E402

SPEC = ROOT / "specs" / "cifar20.rd"


def command(out: Path, iterations: int, resume: bool) -> list[str]:
    args = [sys.executable, "-m", "resdsl", "train", str(SPEC), "--dataset", "digits"]
    args += ["--set", "n=1", "--set", "input=1x8x8", "--set", "crop=8", "--set", "pad=1", "--set", "flip=false"]
    args += ["--batch", "32", "--iterations", str(iterations), "--eval-every", "50", "--checkpoint-every", "10"]
    args += ["--deterministic"]
    args += ["--resume", str(out)] if resume else ["--out", str(out)]
    return args


def environment() -> dict[str, str]:
    return dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1")


def reference(out: Path, iterations: int) -> tuple[float, float]:
    """Run uninterrupted; returns (seconds until `training ...` is printed, seconds after it)."""
    started = time.perf_counter()
    proc = subprocess.Popen(command(out, iterations, False), stderr=subprocess.PIPE, text=True, env=environment())
    startup = None
    for line in proc.stderr:
        if line.startswith("training ") and startup is None:
            startup = time.perf_counter() - started
    if proc.wait() != 0:
        raise SystemExit(f"the uninterrupted run failed (exit {proc.returncode})")
    return startup or 0.0, time.perf_counter() - started - (startup or 0.0)


def state_of(out: Path) -> str:
    import torch

    if (out / "checkpoint.pt").exists():
        it = torch.load(out / "checkpoint.pt", map_location="cpu", weights_only=True)["trainer"]["iteration"]
        return f"checkpoint at {it}"
    if (out / "recipe.json").exists():
        return "recipe.json, no checkpoint"
    return "nothing yet" if not out.exists() or not [p for p in out.iterdir() if p.name != ".resdsl.lock"] else "?"


def iteration_of(out: Path) -> int:
    import torch

    if not (out / "checkpoint.pt").exists():
        return 0
    return int(torch.load(out / "checkpoint.pt", map_location="cpu", weights_only=True)["trainer"]["iteration"])


def compare(a: Path, b: Path) -> list[str]:
    """What differs between two finished runs (empty: bitwise equal)."""
    import torch

    sa = torch.load(a / "checkpoint.pt", map_location="cpu", weights_only=True)["trainer"]
    sb = torch.load(b / "checkpoint.pt", map_location="cpu", weights_only=True)["trainer"]
    diffs = []
    if sa["iteration"] != sb["iteration"]:
        diffs.append(f"iteration {sa['iteration']} != {sb['iteration']}")
    for key, value in sa["model"].items():
        if not torch.equal(value, sb["model"][key]):
            diffs.append(f"weight {key}")
    for i, (x, y) in enumerate(zip(sa["optimizer"]["state"].values(), sb["optimizer"]["state"].values())):
        if not torch.equal(x["momentum_buffer"], y["momentum_buffer"]):
            diffs.append(f"momentum buffer {i}")
    if not torch.equal(sa["perm"], sb["perm"]) or sa["pos"] != sb["pos"]:
        diffs.append("data order")
    if not torch.equal(sa["aug_gen"], sb["aug_gen"]) or not torch.equal(sa["order_gen"], sb["order_gen"]):
        diffs.append("generators")

    def rows(run: Path) -> list[list[str]]:
        return [line.split(",")[:-1] for line in (run / "metrics.csv").read_text().splitlines()]  # less images/s

    if rows(a) != rows(b):
        diffs.append("metrics.csv")
    return diffs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--iterations", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = random.Random(args.seed)

    with tempfile.TemporaryDirectory(prefix="kill-resume-") as tmp:
        whole, killed = Path(tmp) / "whole", Path(tmp) / "killed"
        startup, training = reference(whole, args.iterations)
        print(f"{machine()}; load average {os.getloadavg()[0]:.1f}")
        print(
            f"uninterrupted: {args.iterations} iterations, start-up {startup:.1f} s, training {training:.1f} s "
            f"(OMP_NUM_THREADS=1, --deterministic)"
        )
        startups = [startup]
        landed = {"start-up": 0, "training": 0}
        phases = ["start-up"] * (args.kills // 4) + ["training"] * (args.kills - args.kills // 4)
        rng.shuffle(phases)
        for k in range(1, args.kills + 1):
            resume = (killed / "recipe.json").exists() or (killed / "checkpoint.pt").exists()
            before = state_of(killed)
            left = training * (1 - iteration_of(killed) / args.iterations)
            typical = sorted(startups)[len(startups) // 2]
            phase = phases[k - 1]
            if phase == "start-up":  # somewhere in the start-up: imports, data, recipe.json, model.py
                delay = rng.uniform(0, typical)
            else:  # somewhere in the training still to do, spread over the kills left
                delay = rng.uniform(0, 2 * left / (args.kills - k + 1))
            log = Path(tmp) / f"round{k}.txt"
            with open(log, "w") as err:
                began = time.perf_counter()
                proc = subprocess.Popen(
                    command(killed, args.iterations, resume), stdout=subprocess.DEVNULL, stderr=err, env=environment()
                )
                trained_at = None
                while proc.poll() is None:
                    now = time.perf_counter() - began
                    if trained_at is None and any(
                        line.startswith("training ") for line in log.read_text().splitlines()
                    ):
                        trained_at = now
                        startups.append(now)
                    if phase == "start-up" and now >= delay:
                        break
                    if phase == "training" and trained_at is not None and now >= trained_at + delay:
                        break
                    time.sleep(0.01)
                finished = proc.poll() is not None
                if not finished:
                    proc.send_signal(signal.SIGKILL)
                    proc.wait()
                    landed[phase] += 1
                moment = time.perf_counter() - began
            if finished and proc.returncode != 0:
                raise SystemExit(f"round {k}: the run failed by itself (exit {proc.returncode}):\n{log.read_text()}")
            how = "finished before the kill" if finished else f"SIGKILL at {moment:4.1f} s ({phase})"
            flag = "--resume" if resume else "--out   "
            print(f"kill {k:2d}: {flag} from {before:28s} {how:30s} -> {state_of(killed)}", flush=True)
            if finished:
                break
        final = subprocess.run(
            command(killed, args.iterations, True), capture_output=True, text=True, env=environment()
        )
        if final.returncode != 0:
            raise SystemExit(f"the last resume failed (exit {final.returncode}):\n{final.stderr}")
        diffs = compare(whole, killed)
        if diffs:
            print(f"result: NOT bitwise equal to the uninterrupted run: {', '.join(diffs)}")
            raise SystemExit(1)
        kills = landed["start-up"] + landed["training"]
        print(
            f"result: after {kills} SIGKILLs ({landed['start-up']} in the start-up, {landed['training']} in the "
            f"training) and {k} resumes, the weights, momentum buffers, data order, generators and metrics.csv are "
            f"bitwise equal to the uninterrupted run's"
        )


if __name__ == "__main__":
    main()
