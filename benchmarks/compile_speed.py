"""How fast is the front end? Whole-process `resdsl info` against `python -c pass`, and in-process
analysis time of CIFAR ResNet-110 against ResNet-1202 (which should grow linearly in blocks).

    .venv/bin/python benchmarks/compile_speed.py            # print the figures
    .venv/bin/python benchmarks/compile_speed.py --write    # and record them in docs/benchmarks.md
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "benchmarks.md"
SECTION = "## Compile speed"


def wall(cmd: list[str], reps: int) -> float:
    """Median wall-clock seconds of a whole process."""
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        subprocess.run(cmd, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def resdsl_command() -> list[str]:
    script = Path(sys.executable).parent / "resdsl"
    return [str(script)] if script.exists() else [sys.executable, "-m", "resdsl"]


def in_process(spec: str, reps: int) -> dict[str, float]:
    """Median seconds of each front-end phase for one spec, warm (modules and grammar loaded)."""
    from resdsl.compiler import load_network
    from resdsl.lower import lower
    from resdsl.passes import analyze
    from resdsl.recipe import build_recipe
    from resdsl.resolve import load_program

    path = ROOT / "specs" / spec
    ir = load_network(path)  # warm-up
    phases: dict[str, list[float]] = {"parse": [], "lower": [], "analyze": [], "total": []}
    for _ in range(reps):
        t0 = time.perf_counter()
        program = load_program(path)
        t1 = time.perf_counter()
        ir = lower(program, {})
        t2 = time.perf_counter()
        analyze(ir)
        ir.recipe = build_recipe(program, ir, {})
        t3 = time.perf_counter()
        for key, dt in (("parse", t1 - t0), ("lower", t2 - t1), ("analyze", t3 - t2), ("total", t3 - t0)):
            phases[key].append(dt)
    out = {k: statistics.median(v) for k, v in phases.items()}
    out["ops"] = ir.graph.number_of_nodes()
    out["blocks"] = sum(len(s.blocks) for s in ir.sections)
    return out


def _per_block(r: dict[str, float]) -> float:
    return (r["lower"] + r["analyze"]) / r["blocks"]


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    gpu = "a GPU" if shutil.which("nvidia-smi") else "no GPU"
    return f"{os.cpu_count()} CPU cores ({cpu}), Python {platform.python_version()}, {platform.system()}, {gpu}"


def measure(reps: int) -> str:
    py = sys.executable
    base = wall([py, "-c", "pass"], reps)
    info = wall([*resdsl_command(), "info", "specs/resnet152.rd"], reps)
    floors = {
        "python -c pass": base,
        "python -c 'import networkx'": wall([py, "-c", "import networkx"], reps),
        "python -c 'import lark, click'": wall([py, "-c", "import lark, click"], reps),
        "python -c 'import resdsl.cli' (all imports, no work)": wall(
            [py, "-c", "import resdsl.cli, resdsl.compiler, resdsl.report"], reps
        ),
        "resdsl info specs/resnet152.rd": info,
    }
    small, big = in_process("cifar110.rd", max(3, reps // 2)), in_process("cifar1202.rd", max(3, reps // 2))

    lines = [
        SECTION,
        "",
        f"Measured by `benchmarks/compile_speed.py` (median of {reps} runs) on {machine()}.",
        "",
        "Whole process (start-up, imports, parse, analysis, printing the table):",
        "",
        "| command | median wall time | vs `python -c pass` |",
        "|---|---:|---:|",
    ]
    for name, secs in floors.items():
        lines.append(f"| `{name}` | {secs * 1000:.0f} ms | {secs / base:.1f}x |")
    lines += [
        "",
        f"Target: within 3x `python -c pass` ({3 * base * 1000:.0f} ms). Reached: **{info / base:.1f}x** "
        f"({info * 1000:.0f} ms).",
        "",
        "In process, warm (the front end alone, per phase):",
        "",
        "| spec | blocks | ops | parse | lower | analyze | total | per block |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, r in (("cifar110", small), ("cifar1202", big)):
        lines.append(
            f"| {name} | {r['blocks']} | {r['ops']:,} | {r['parse'] * 1000:.1f} ms | {r['lower'] * 1000:.1f} ms | "
            f"{r['analyze'] * 1000:.1f} ms | {r['total'] * 1000:.1f} ms | {_per_block(r) * 1000:.3f} ms |"
        )
    blocks = big["blocks"] / small["blocks"]
    ratio = (big["lower"] + big["analyze"]) / (small["lower"] + small["analyze"])
    lines += [
        "",
        "Per block = (lower + analyze) / blocks; parsing depends on the text, not on `n`.",
        f"cifar1202 has {blocks:.1f}x the blocks of cifar110; lowering and analysis take {ratio:.1f}x the time: "
        f"{'linear' if 0.75 < ratio / blocks < 1.33 else 'NOT linear'} growth "
        f"({_per_block(small) * 1000:.3f} vs {_per_block(big) * 1000:.3f} ms per block).",
    ]
    nx, imports = floors["python -c 'import networkx'"], floors["python -c 'import resdsl.cli' (all imports, no work)"]
    lines += [
        "",
        "What was done, and what stands in the way of 3x:",
        "",
        "- The LALR tables are built once and cached in `~/.cache/resdsl/` (Lark needs about 140 ms to "
        "build them, 10 ms to load them); `resdsl info` imports none of torch, numpy, jinja2, graphviz or rich "
        "(tests/test_no_torch.py guards torch for every command).",
        "- The IR's hot paths avoid networkx's view machinery (`inputs()` reads `graph.pred`, `ops()` reads "
        "`nodes(data=...)`), which halved shape inference; oversized networks are refused from a static op count "
        "before anything is built.",
        f"- Importing networkx alone takes {nx * 1000:.0f} ms ({nx / base:.0f}x `python -c pass`): its package "
        "`__init__` imports every algorithm, wraps each in its backend dispatcher and scans installed packages' "
        "entry points; importing only `networkx.classes` still runs that `__init__`. With lark and click, the "
        f"imports alone are {imports * 1000:.0f} ms, so 3x `python -c pass` cannot be reached while the IR is a "
        "networkx graph (which the design requires). What remains is ours: about "
        f"{max(info - imports, 0) * 1000:.0f} ms of parsing, lowering and analysis for ResNet-152.",
    ]
    return "\n".join(lines) + "\n"


def write_section(text: str) -> None:
    """Replace our section of docs/benchmarks.md (others append their own sections)."""
    doc = DOC.read_text() if DOC.exists() else "# Benchmarks\n\n"
    pattern = re.compile(rf"^{re.escape(SECTION)}\n.*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(doc):
        doc = pattern.sub(lambda _: text + "\n", doc, count=1)
    else:
        doc = doc.rstrip("\n") + "\n\n" + text
    DOC.write_text(doc.rstrip("\n") + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=15)
    parser.add_argument("--write", action="store_true", help=f"record the figures in {DOC.relative_to(ROOT)}")
    args = parser.parse_args()
    text = measure(args.reps)
    print(text)
    if args.write:
        write_section(text)
        print(f"written to {DOC.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
