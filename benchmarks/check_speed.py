"""How fast is a check? Two things a user feels, measured apart from a cold start (compile_speed.py):

1. A warm re-check: a process that has checked a spec once checks it again, as a language server does on
   every keystroke; `load_network(specs/resnet152.rd)` in-process, phase by phase (parse, lower, analyze).
2. Large specs: generated specs of 1/4, 1/2 and just under 1 MB (the size cap, MAX_SPEC_BYTES), checked
   by a fresh `resdsl check` process and in-process phase by phase; the time should grow linearly.

    .venv/bin/python benchmarks/check_speed.py            # print the figures
    .venv/bin/python benchmarks/check_speed.py --write    # and record them in docs/benchmarks.md
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _bench import load_average, machine, replace_section, report, resdsl_command

ROOT = Path(__file__).resolve().parent.parent
SECTION = "## Check speed"
SPEC = "specs/resnet152.rd"
WARM_TARGET = 0.030  # seconds, a warm re-check of SPEC
BIG_TARGET = 3.0  # seconds, a spec just under the size cap
LINEAR = 1.25  # the largest spec's seconds per MB at most this times the smallest's

# One process: the phases of checking a spec (load_network's steps), `repeat` times, as JSON.
PHASES = """
import json, sys, time
from resdsl.ir.lower import lower
from resdsl.ir.passes import analyze
from resdsl.ir.pipeline import check_override_names
from resdsl.lang.gcpause import paused_gc
from resdsl.lang.imports import load_program
from resdsl.lang.recipe import build_recipe
runs, cpu = [], []
for _ in range(int(sys.argv[2])):
    with paused_gc():  # as load_network
        t, c = [time.perf_counter()], [time.process_time()]
        program = load_program(sys.argv[1])
        t.append(time.perf_counter()); c.append(time.process_time())
        check_override_names(program, {})
        ir = lower(program, {})
        t.append(time.perf_counter()); c.append(time.process_time())
        analyze(ir)
        ir.recipe = build_recipe(program, ir.classes, ir.params, {})
        t.append(time.perf_counter()); c.append(time.process_time())
    runs.append([b - a for a, b in zip(t, t[1:])])
    cpu.append([b - a for a, b in zip(c, c[1:])])
print(json.dumps({"runs": runs, "cpu": cpu, "ops": ir.graph.number_of_nodes()}))
"""
PHASE_NAMES = ["parse (load_program)", "lower", "analyze + recipe"]


def generated_spec(size: int) -> str:
    """A valid spec of at most `size` bytes: a param and a block definition per stage, each block a basic
    residual unit used twice (16 channels at 32x32), so parsing, templates, lowering and the passes all
    grow with the text."""
    head = (
        "network generated {\n    input 3x32x32\n    classes 10\n    shortcut A\n    stem { conv 3x3, 16; bn; relu }\n"
    )
    tail = "    head { avgpool global; fc classes }\n}\n"
    defs: list[str] = []
    stages: list[str] = []
    total = len(head) + len(tail)
    while True:
        i = len(defs)
        block = (
            f"param p{i} = ({i} * 3 + 1) // 2\n"
            f"block b{i}(width, stride = 1) {{\n    residual {{\n        conv 3x3, width, stride: stride; bn; relu\n"
            "        conv 3x3, width * 1; bn\n    }\n    relu\n}\n"
        )
        stage = f"    stage s{i} = b{i}(16) * 2\n"
        if total + len(block) + len(stage) > size:
            return "".join(defs) + head + "".join(stages) + tail
        defs.append(block)
        stages.append(stage)
        total += len(block) + len(stage)


def phases(spec: Path, repeat: int) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", PHASES, str(spec), str(repeat)], cwd=ROOT, check=True, capture_output=True, text=True
    ).stdout
    return json.loads(out)


def _children_cpu() -> float:
    """User + system seconds of the finished child processes so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms" if seconds < 0.1 else f"{seconds:.2f} s"


def measure(repeat: int, rounds: int) -> str:
    from resdsl.lang.imports import MAX_SPEC_BYTES

    before = load_average()
    warm = phases(ROOT / SPEC, repeat + 1)
    runs = warm["runs"][1:]  # the first check pays the parser's first use
    totals = [sum(r) for r in runs]
    cpu_totals = [sum(r) for r in warm["cpu"][1:]]
    per_phase = [statistics.median(r[i] for r in runs) for i in range(len(PHASE_NAMES))]
    q1, q2, q3 = statistics.quantiles(totals, n=4, method="inclusive")
    first = sum(warm["runs"][0])

    sizes = {"1/4 MB": MAX_SPEC_BYTES // 4, "1/2 MB": MAX_SPEC_BYTES // 2, "1 MB": MAX_SPEC_BYTES - 1000}
    tmp = Path(tempfile.mkdtemp(prefix="resdsl-check-"))
    files = {}
    for label, size in sizes.items():
        files[label] = tmp / f"generated_{size}.rd"
        files[label].write_text(generated_spec(size))
    cold: dict[str, list[float]] = {label: [] for label in files}
    cold_cpu: dict[str, list[float]] = {label: [] for label in files}
    cmd = resdsl_command()
    for r in range(rounds):  # whole processes, the sizes taking turns
        for label in list(files) if r % 2 == 0 else list(files)[::-1]:
            start, used = time.perf_counter(), _children_cpu()
            subprocess.run([*cmd, "check", str(files[label])], cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
            cold[label].append(time.perf_counter() - start)
            cold_cpu[label].append(_children_cpu() - used)
    inproc = {label: phases(path, 1) for label, path in files.items()}

    lines = [
        SECTION,
        "",
        f"Measured by `benchmarks/check_speed.py` on {machine()} when written; {before} when it started.",
        "",
        f"**Warm re-check** (what a language server does on every edit): `load_network({SPEC})` again in a "
        f"process that has checked it once; {len(runs)} checks, {warm['ops']} ops. Median **{_ms(q2)}** wall clock "
        f"(quartiles {_ms(q1)}-{_ms(q3)}, fastest {_ms(min(totals))}; the first check in the process: "
        f"{_ms(first)}), **{_ms(statistics.median(cpu_totals))}** of CPU time. Target < {WARM_TARGET * 1000:.0f} ms: "
        f"{'reached' if q2 < WARM_TARGET else '**not reached**'} (wall clock), "
        f"{'reached' if statistics.median(cpu_totals) < WARM_TARGET else '**not reached**'} (CPU time).",
        "",
        "| phase | median |",
        "|---|---:|",
        *(f"| {name} | {_ms(t)} |" for name, t in zip(PHASE_NAMES, per_phase)),
        "",
        "**Large specs**, generated (`generated_spec`: a param and a two-use basic block per stage): a fresh "
        f"`resdsl check` process (median of {rounds}, the sizes taking turns), and the phases in a fresh process.",
        "",
        "| spec | bytes | ops | `resdsl check` | its CPU time | CPU per MB | parse | lower | analyze + recipe |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    per_mb = {}
    for label, path in files.items():
        size = path.stat().st_size
        med = statistics.median(cold[label])
        cpu = statistics.median(cold_cpu[label])
        per_mb[label] = cpu / (size / 1e6)
        p = inproc[label]["cpu"][0]  # CPU time: on a busy machine the wall clock mostly measures the others
        lines.append(
            f"| {label} | {size:,} | {inproc[label]['ops']:,} | {_ms(med)} | {_ms(cpu)} | {_ms(per_mb[label])} | "
            + " | ".join(_ms(t) for t in p)
            + " |"
        )
    big, big_cpu = statistics.median(cold["1 MB"]), statistics.median(cold_cpu["1 MB"])
    growth = per_mb["1 MB"] / per_mb["1/4 MB"]
    lines += [
        "",
        "The phases are CPU time in one fresh process. "
        f"Just under the size cap: **{_ms(big)}** wall clock, **{_ms(big_cpu)}** of CPU time (target < "
        f"{BIG_TARGET:.0f} s: {'reached' if big < BIG_TARGET else '**not reached**'} (wall clock), "
        f"{'reached' if big_cpu < BIG_TARGET else '**not reached**'} (CPU time)); CPU seconds per MB at 1 MB over "
        f"those at 1/4 MB: **{growth:.2f}x** (linear: at most {LINEAR}x; "
        f"{'reached' if growth <= LINEAR else '**not reached**'}). On a busy machine the wall clock is the CPU time "
        "stretched by the other processes; the CPU time holds better.",
    ]
    for path in files.values():
        path.unlink()
    tmp.rmdir()
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=30, help="warm re-checks of resnet152")
    parser.add_argument("--rounds", type=int, default=3, help="fresh `resdsl check` processes per size")
    parser.add_argument("--write", action="store_true", help="record the figures in docs/benchmarks.md")
    args = parser.parse_args()
    report(measure(args.repeat, args.rounds), args.write, lambda text: replace_section(SECTION, text))


if __name__ == "__main__":
    main()
