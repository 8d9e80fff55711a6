"""How fast is the front end? A fresh `resdsl info specs/resnet152.rd` process against
`python -c "import networkx, lark, click"` (the libraries no run can do without), timed in pairs,
interleaved round after round; then where resdsl's own time goes: its imports (`-X importtime`)
and the phases of the run (parse, lower, analyze, report) in a fresh process.

    .venv/bin/python benchmarks/compile_speed.py            # print the figures
    .venv/bin/python benchmarks/compile_speed.py --write    # and record them in docs/benchmarks.md

Every process gets the same environment: bytecode written (by an untimed first round) into a private
PYTHONPYCACHEPREFIX, Lark's table cache in a private XDG_CACHE_HOME, and this checkout first on
PYTHONPATH when the interpreter's installed resdsl is another checkout.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from importlib.metadata import version
from pathlib import Path

from _bench import machine, replace_section, report, resdsl_command

ROOT = Path(__file__).resolve().parent.parent
SECTION = "## Compile speed"
SPEC = "specs/resnet152.rd"
TARGET = 1.25
LIBS = "import networkx, lark, click"

# A fresh process doing what `resdsl info SPEC` does, phase by phase, twice (first and warm), as JSON.
PHASES = f"""
import json, sys, time
clock = time.perf_counter
t = [clock()]
{LIBS}
t.append(clock())
import resdsl.cli.script  # what the console script imports (it turns the cyclic GC off)
t.append(clock())
from resdsl.backends import report  # what `info` imports when it runs
from resdsl.ir.lower import lower
from resdsl.ir.passes import analyze
from resdsl.ir.pipeline import check_override_names
from resdsl.lang.imports import load_program
from resdsl.lang.overrides import parse_sets
from resdsl.lang.parser import _parser
from resdsl.lang.recipe import build_recipe
t.append(clock())
_parser()  # Lark's LALR parser, its tables read from the cache
t.append(clock())
runs = []
for _ in range(2):
    r = [clock()]
    program = load_program(sys.argv[1])
    r.append(clock())
    sets = parse_sets(())
    check_override_names(program, sets)
    ir = lower(program, sets)
    r.append(clock())
    analyze(ir)
    ir.recipe = build_recipe(program, ir.classes, ir.params, sets)
    r.append(clock())
    report.table(ir, sys.argv[1])
    r.append(clock())
    runs.append([b - a for a, b in zip(r, r[1:])])
print(json.dumps({{"start": [b - a for a, b in zip(t, t[1:])], "first": runs[0], "warm": runs[1],
                  "ops": ir.graph.number_of_nodes()}}))
"""
START = [
    "import networkx, lark, click",
    "import resdsl.cli.script",
    "`info`'s lazy imports",
    "Lark parser (cached tables)",
]
RUN = ["parse (load_program)", "lower", "analyze + recipe", "report table"]

# The libraries, exiting as resdsl does (resdsl.cli.common.skip_final_collection).
LIBS_FROZEN = f"{LIBS}, atexit, gc; atexit.register(gc.freeze)"
# `info` with the interpreter's teardown at exit, as before skip_final_collection.
TEARDOWN = f"""
import sys
import resdsl.cli.common
resdsl.cli.common.skip_final_collection = lambda: None
sys.argv = ["resdsl", "info", {SPEC!r}]
from resdsl.cli.script import main
main()
"""
# `info` with the cyclic garbage collector on, as before resdsl.cli.script turned it off.
GC_ON = f"""
import sys
sys.argv = ["resdsl", "info", {SPEC!r}]
from resdsl.cli.main import main
main()
"""

# The same run under -X importtime, the libraries imported first: what comes after them is resdsl's.
IMPORTS = f"""
{LIBS}
import sys
sys.argv = ["resdsl", "info", {SPEC!r}]
from resdsl.cli.script import main
main()
"""


def environment(tmp: str) -> dict[str, str]:
    """The environment of every timed process (see the module's docstring)."""
    drop = ("PYTHONDONTWRITEBYTECODE", "PYTHONPYCACHEPREFIX", "PYTHONPATH", "XDG_CACHE_HOME")
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env["PYTHONPYCACHEPREFIX"] = os.path.join(tmp, "pycache")
    env["XDG_CACHE_HOME"] = tmp
    installed = subprocess.run(
        [sys.executable, "-c", "import resdsl; print(resdsl.__file__)"],
        cwd=tmp,
        env=env,
        capture_output=True,
        text=True,
    ).stdout.strip()
    if not installed or Path(installed).resolve().parent.parent != ROOT:
        env["PYTHONPATH"] = str(ROOT)
    return env


def interleaved(cmds: dict[str, list[str]], env: dict[str, str], rounds: int) -> dict[str, list[float]]:
    """Wall-clock seconds of each whole process, per round. Commands take turns, in the opposite order
    every other round, so that a change in the machine's load touches all of them alike."""
    for cmd in cmds.values():  # untimed: bytecode written, Lark's tables built
        subprocess.run(cmd, cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL)
    times: dict[str, list[float]] = {name: [] for name in cmds}
    order = list(cmds)
    for i in range(rounds):
        for name in order if i % 2 == 0 else order[::-1]:
            start = time.perf_counter()
            subprocess.run(cmds[name], cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL)
            times[name].append(time.perf_counter() - start)
    return times


def quartiles(xs: list[float]) -> tuple[float, float, float]:
    q1, q2, q3 = statistics.quantiles(xs, n=4, method="inclusive")
    return q1, q2, q3


def phases(env: dict[str, str], reps: int) -> dict[str, list[float]]:
    """Median seconds of each phase of a fresh `info` process (see PHASES)."""
    runs = [
        json.loads(
            subprocess.run(
                [sys.executable, "-c", PHASES, SPEC], cwd=ROOT, env=env, check=True, capture_output=True, text=True
            ).stdout
        )
        for _ in range(reps)
    ]
    return {
        key: [statistics.median(r[key][i] for r in runs) for i in range(len(runs[0][key]))]
        for key in ("start", "first", "warm")
    } | {"ops": runs[0]["ops"]}


def import_tree(stderr: str) -> list[dict]:
    """`-X importtime` output as a tree: [{name, self, cum, children}], the roots in import order."""
    pending: dict[int, list[dict]] = {}
    for line in stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        own, cum, name = line.removeprefix("import time:").split("|")
        depth = (len(name) - len(name.lstrip()) - 1) // 2
        node = {"name": name.strip(), "self": int(own), "cum": int(cum)}
        node["children"] = pending.pop(depth + 1, [])
        pending.setdefault(depth, []).append(node)
    return pending.get(0, [])


def our_imports(env: dict[str, str], reps: int) -> tuple[dict[str, float], dict[str, tuple[float, str]]]:
    """Median self seconds of each resdsl module, and of each outside module that resdsl is the first to
    import (its cumulative time, with the resdsl module that imports it), in a run of `info`."""
    ours: dict[str, list[float]] = {}
    outside: dict[str, list[float]] = {}
    importer: dict[str, str] = {}
    for _ in range(reps):
        err = subprocess.run(
            [sys.executable, "-X", "importtime", "-c", IMPORTS], cwd=ROOT, env=env, capture_output=True, text=True
        ).stderr
        roots = import_tree(err)
        last_lib = max(i for i, r in enumerate(roots) if r["name"] in ("networkx", "lark", "click"))

        def walk(node: dict, parent: str) -> None:
            if node["name"].split(".")[0] == "resdsl":
                ours.setdefault(node["name"], []).append(node["self"] / 1e6)
                for child in node["children"]:
                    walk(child, node["name"])
            else:
                outside.setdefault(node["name"], []).append(node["cum"] / 1e6)
                importer[node["name"]] = parent

        for root in roots[last_lib + 1 :]:
            walk(root, "-c")
    return (
        {k: statistics.median(v) for k, v in ours.items()},
        {k: (statistics.median(v), importer[k]) for k, v in outside.items()},
    )


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms" if seconds >= 0.01 else f"{seconds * 1000:.1f} ms"


def measure(rounds: int, reps: int) -> str:
    py = sys.executable
    script = resdsl_command()
    script_name = "resdsl" if len(script) == 1 else "python -m resdsl"
    info = f"{script_name} info {SPEC}"
    libs = f'python -c "{LIBS}"'
    frozen = f'python -c "{LIBS_FROZEN}"'
    teardown = f"`resdsl info {SPEC}` (as `python -c`) with the teardown at exit"
    gc_on = f"`resdsl info {SPEC}` (as `python -c`) with the cyclic GC on"
    load_before = os.getloadavg()
    tmp = tempfile.mkdtemp(prefix="resdsl-bench-")
    try:
        env = environment(tmp)
        cmds = {
            "python -c pass": [py, "-c", "pass"],
            libs: [py, "-c", LIBS],
            frozen: [py, "-c", LIBS_FROZEN],
            info: [*script, "info", SPEC],
        }
        if len(script) == 1:
            cmds[f"python -m resdsl info {SPEC}"] = [py, "-m", "resdsl", "info", SPEC]
        cmds[teardown] = [py, "-c", TEARDOWN]
        cmds[gc_on] = [py, "-c", GC_ON]
        times = interleaved(cmds, env, rounds)
        phase = phases(env, reps)
        ours, outside = our_imports(env, reps)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    load_after = os.getloadavg()

    med = {name: statistics.median(ts) for name, ts in times.items()}
    base = med[libs]
    r1, r2, r3 = quartiles([a / b for a, b in zip(times[info], times[libs])])
    f1, f2, f3 = quartiles([a / b for a, b in zip(times[info], times[frozen])])
    spread = [a / b for a, b in zip(times[info], times[libs])]
    versions = ", ".join(f"{lib} {version(lib)}" for lib in ("networkx", "lark", "click"))
    how = (
        f"the console script `{Path(script[0]).relative_to(Path(script[0]).parents[2])}`"
        if len(script) == 1
        else "`python -m resdsl`"
    )
    if "PYTHONPATH" in env:
        how += " with `PYTHONPATH` set to this checkout (the interpreter's installed resdsl is another one)"
    lines = [
        SECTION,
        "",
        f"Measured by `benchmarks/compile_speed.py` on {machine()}, {versions}; {rounds} rounds, load "
        f"average {load_before[0]:.1f} before and {load_after[0]:.1f} after (the machine is shared, so "
        "absolute times float; the paired ratios hold better).",
        "",
        f"Whole process, wall clock: a fresh `resdsl info {SPEC}` (start-up, imports, parse, analysis, printing "
        f"the table), run as {how}, against `{libs}` with the same interpreter, the libraries no run can do "
        "without. Every run parses and analyses the spec anew. Bytecode is written (by an untimed "
        "first round, into a private `PYTHONPYCACHEPREFIX`) and Lark's LALR tables are cached, as after a first "
        "run. The commands take turns, in the opposite order every other round.",
        "",
        f"| command | median | quartiles | fastest | median vs `{LIBS}` |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, ts in times.items():
        q1, q2, q3 = quartiles(ts)
        shown = name if name.startswith("`") else f"`{name}`"
        lines.append(f"| {shown} | {_ms(q2)} | {_ms(q1)}-{_ms(q3)} | {_ms(min(ts))} | {q2 / base:.2f}x |")
    verdict = "reached" if r2 <= TARGET else "**not reached**"
    lines += [
        "",
        f"Paired ratio `{info}` / `{libs}`, round by round: median **{r2:.2f}x** (quartiles {r1:.2f}-{r3:.2f}x, "
        f"range {min(spread):.2f}-{max(spread):.2f}x). Target <= {TARGET}x: {verdict}.",
        "",
        "Part of that comes from the exit, not from less work: `resdsl.cli.common.skip_final_collection` freezes "
        "every object at exit, so that the interpreter does not free, one by one, the tens of thousands of "
        f"objects the imports created. That saves {_ms(med[teardown] - med[info])} (the row with the teardown); "
        "the console script (`resdsl.cli.script`) runs `check`, `info`, `compile` and `viz` with the cyclic garbage "
        f"collector off, from before the first import: {_ms(med[gc_on] - med[info])} less than with it on (that row). "
        f"The libraries exiting the same way take {_ms(med[frozen])}, "
        f"{_ms(base - med[frozen])} less than plain; against them, resdsl's ratio is {f2:.2f}x (quartiles "
        f"{f1:.2f}-{f3:.2f}x): that is its own work, {_ms(med[info] - med[frozen])}, broken down below.",
        "",
        f"Where resdsl's own time goes: a fresh process doing what `info` does, phase by phase (median of {reps}; "
        f"the second pass, in the same process, shows what the first one pays once). ResNet-152 lowers to "
        f"{phase['ops']} ops.",
        "",
        "| phase | first | second |",
        "|---|---:|---:|",
    ]
    for name, secs in zip(START, phase["start"]):
        lines.append(f"| {name} | {_ms(secs)} | |")
    for name, first, warm in zip(RUN, phase["first"], phase["warm"]):
        lines.append(f"| {name} | {_ms(first)} | {_ms(warm)} |")
    own = sum(phase["start"][1:]) + sum(phase["first"])
    once = phase["first"][0] - phase["warm"][0]
    lines += [
        "",
        f"resdsl's part of a fresh process: about {_ms(own)} (imports {_ms(sum(phase['start'][1:3]))}, Lark's "
        f"parser {_ms(phase['start'][3])}, the run {_ms(sum(phase['first']))})."
        + (
            f" The first parse takes {_ms(once)} more than the second: on first use, Lark's contextual lexer "
            "compiles a regular expression for each parser state it meets."
            if once > 0.002
            else ""
        ),
        "",
        f"Imports (`python -X importtime`, median of {reps}, after `{LIBS}`): each resdsl module's own time "
        "(its body, without what it imports), and the outside modules resdsl is the first to import, with "
        "what they pull in:",
        "",
        "| module | time | imported by |",
        "|---|---:|---|",
    ]
    rows = [(secs, name, "") for name, secs in ours.items()]
    rows += [(secs, name, by) for name, (secs, by) in outside.items()]
    rows.sort(reverse=True)
    shown = [r for r in rows if r[0] >= 0.0005]
    for secs, name, by in shown:
        lines.append(f"| `{name}` | {_ms(secs)} | {f'`{by}`' if by else ''} |")
    lines += [
        "",
        f"Total: resdsl's modules {_ms(sum(ours.values()))}, outside modules they bring "
        f"{_ms(sum(s for s, _ in outside.values()))} ({len(rows) - len(shown)} rows under 0.5 ms left out; "
        "`-X importtime` itself inflates these figures a little).",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=21, help="rounds of the whole-process timing")
    parser.add_argument("--reps", type=int, default=7, help="runs of the phase and import breakdowns")
    parser.add_argument("--write", action="store_true", help="record the figures in docs/benchmarks.md")
    args = parser.parse_args()
    report(measure(args.rounds, args.reps), args.write, lambda text: replace_section(SECTION, text))


if __name__ == "__main__":
    main()
