"""How fast is the front end? Whole-process `resdsl info` against `python -c pass`, cold (result cache
off) and warm (a cache hit), and in-process analysis time of CIFAR ResNet-110 against ResNet-1202
(which should grow linearly in blocks). Uses a private cache folder, never the user's.

    .venv/bin/python benchmarks/compile_speed.py            # print the figures
    .venv/bin/python benchmarks/compile_speed.py --write    # and record them in docs/benchmarks.md
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _bench import cpu_name, replace_section

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "benchmarks.md"
SECTION = "## Compile speed"


def walls(cmds: dict[str, tuple[list[str], dict[str, str]]], reps: int) -> dict[str, tuple[float, float]]:
    """(median, best) wall-clock seconds of each whole process. Commands take turns, round after round, so
    that a change in the machine's load touches all of them alike."""
    times: dict[str, list[float]] = {name: [] for name in cmds}
    for cmd, env in cmds.values():  # one untimed round: bytecode written, caches filled
        subprocess.run(cmd, cwd=ROOT, check=True, stdout=subprocess.DEVNULL, env=env)
    for _ in range(reps):
        for name, (cmd, env) in cmds.items():
            start = time.perf_counter()
            subprocess.run(cmd, cwd=ROOT, check=True, stdout=subprocess.DEVNULL, env=env)
            times[name].append(time.perf_counter() - start)
    return {name: (statistics.median(t), min(t)) for name, t in times.items()}


def resdsl_command() -> list[str]:
    script = Path(sys.executable).parent / "resdsl"
    return [str(script)] if script.exists() else [sys.executable, "-m", "resdsl"]


def in_process(spec: str, reps: int) -> dict[str, float]:
    """Median seconds of each front-end phase for one spec, warm (modules and grammar loaded)."""
    from resdsl.ir.lower import lower
    from resdsl.ir.passes import analyze
    from resdsl.ir.pipeline import load_network
    from resdsl.lang.imports import load_program
    from resdsl.lang.recipe import build_recipe

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
        ir.recipe = build_recipe(program, ir.classes, ir.params, {})
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
    cpu = cpu_name()
    gpu = "a GPU" if shutil.which("nvidia-smi") else "no GPU"
    return f"{os.cpu_count()} CPU cores ({cpu}), Python {platform.python_version()}, {platform.system()}, {gpu}"


NO_SITE = "python -S -c pass (no site: no .pth files, no site-packages)"
ENTRY = "python -c 'import resdsl.entry' (what a hit imports)"
NX = "python -c 'import networkx'"
IMPORTS = "python -c 'import resdsl.cli' (all imports, no work)"
NOBC = "PYTHONDONTWRITEBYTECODE=1"
NOBC_PASS = f"python -c pass, {NOBC}"


def pth_cost() -> dict[str, float]:
    """Seconds site.py spends on each .pth file in site-packages (median of 200, in process, sys.path restored);
    an import line in a .pth runs here too but its module is already loaded, so that import is timed apart."""
    import site
    import sysconfig

    folder = sysconfig.get_paths()["purelib"]
    out = {}
    for name in sorted(os.listdir(folder)):
        if name.endswith(".pth"):
            saved, times = list(sys.path), []
            for _ in range(200):
                start = time.perf_counter()
                site.addpackage(folder, name, set())
                times.append(time.perf_counter() - start)
                sys.path[:] = saved
            out[name] = statistics.median(times)
    return out


def import_time(module: str, env: dict[str, str]) -> float:
    """Seconds `python -X importtime` reports for one module imported at start-up (median of 9)."""
    times = []
    for _ in range(9):
        err = subprocess.run(
            [sys.executable, "-X", "importtime", "-c", "pass"], env=env, capture_output=True, text=True
        )
        for line in err.stderr.splitlines():
            if line.rsplit("|", 1)[-1].strip() == module:
                times.append(int(line.split("|")[1]) / 1e6)
    return statistics.median(times) if times else 0.0


def measure(reps: int) -> str:
    py = sys.executable
    spec = ["info", "specs/resnet152.rd"]
    script = resdsl_command()
    cache = tempfile.mkdtemp(prefix="resdsl-bench-cache-")  # never the user's cache
    drop = ("RESDSL_NO_CACHE", "RESDSL_CACHE_DEBUG", "PYTHONDONTWRITEBYTECODE", "PYTHONPYCACHEPREFIX")
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env["XDG_CACHE_HOME"] = cache
    # Python's default: bytecode written and reused (kept in the temp folder, not the checkout)
    env["PYTHONPYCACHEPREFIX"] = os.path.join(cache, "pycache")
    cold_env = {**env, "RESDSL_NO_CACHE": "1"}
    # as this machine's shell sets it: nothing written, so resdsl's own modules are compiled on every run
    nobc_env = {k: v for k, v in env.items() if k != "PYTHONPYCACHEPREFIX"} | {"PYTHONDONTWRITEBYTECODE": "1"}
    try:
        for cmd in (script, script, [py, "-m", "resdsl"]):  # builds the LALR tables, then stores the results
            subprocess.run([*cmd, *spec], cwd=ROOT, check=True, stdout=subprocess.DEVNULL, env=env)
        for cmd in (script, [py, "-m", "resdsl"]):
            probe = subprocess.run(
                [*cmd, *spec], cwd=ROOT, capture_output=True, text=True, env={**env, "RESDSL_CACHE_DEBUG": "1"}
            )
            assert "resdsl cache: hit" in probe.stderr, probe.stderr  # else "warm" would measure misses
        script_name = "resdsl" if len(script) == 1 else "python -m resdsl"
        warm_name = f"{script_name} {' '.join(spec)}, warm (cache hit)"
        cold_name = f"{script_name} {' '.join(spec)}, cold (RESDSL_NO_CACHE=1)"
        module_name = f"python -m resdsl {' '.join(spec)}, warm (cache hit)"
        cmds = {
            "python -c pass": ([py, "-c", "pass"], env),
            NO_SITE: ([py, "-S", "-c", "pass"], env),
            ENTRY: ([py, "-c", "import resdsl.entry"], env),
            warm_name: ([*script, *spec], env),
            module_name: ([py, "-m", "resdsl", *spec], env),
            NX: ([py, "-c", "import networkx"], env),
            "python -c 'import lark, click'": ([py, "-c", "import lark, click"], env),
            IMPORTS: ([py, "-c", "import resdsl.cli, resdsl.compiler, resdsl.report"], env),
            cold_name: ([*script, *spec], cold_env),
            NOBC_PASS: ([py, "-c", "pass"], nobc_env),
            f"{warm_name}, {NOBC}": ([*script, *spec], nobc_env),
            f"{cold_name}, {NOBC}": ([*script, *spec], nobc_env | {"RESDSL_NO_CACHE": "1"}),
        }
        timed = walls(cmds, reps)
        hack = import_time("_distutils_hack", env)
        base, warm, cold = timed["python -c pass"][0], timed[warm_name][0], timed[cold_name][0]
    finally:
        shutil.rmtree(cache, ignore_errors=True)
    small, big = in_process("cifar110.rd", max(3, reps // 2)), in_process("cifar1202.rd", max(3, reps // 2))

    lines = [
        SECTION,
        "",
        f"Measured by `benchmarks/compile_speed.py` (median of {reps} runs) on {machine()}; load average "
        f"{os.getloadavg()[0]:.1f} at the end (the machine is shared: commands take turns round after round, so "
        "the ratios hold though the absolute medians float; `best` is the fastest run).",
        "",
        "Whole process (start-up, imports, parse, analysis, printing the table); `resdsl` is the console "
        "script `.venv/bin/resdsl`, what users run. Bytecode is written and reused, as Python does by default; "
        f"the last three rows are taken with `{NOBC}`, which this machine's shell sets (no `.pyc` is ever "
        "written, so every resdsl module is compiled on every run), and compare with the `python -c pass` "
        "row of their own:",
        "",
        "| command | median wall time | best | median vs `python -c pass` |",
        "|---|---:|---:|---:|",
    ]
    nobc_base = timed[NOBC_PASS][0]
    for name, (secs, best) in timed.items():
        ref = nobc_base if NOBC in name else base
        lines.append(f"| `{name}` | {secs * 1000:.0f} ms | {best * 1000:.0f} ms | {secs / ref:.1f}x |")
    lines += [
        "",
        f"Target: within 3x `python -c pass` ({3 * base * 1000:.0f} ms). Reached: warm (a repeated `check` or "
        f"`info`) **{warm / base:.1f}x** ({warm * 1000:.0f} ms); cold (first run, or after the spec, an import or "
        f"resdsl changed) **{cold / base:.1f}x** ({cold * 1000:.0f} ms). With `{NOBC}`: warm "
        f"**{timed[f'{warm_name}, {NOBC}'][0] / nobc_base:.1f}x**, cold "
        f"**{timed[f'{cold_name}, {NOBC}'][0] / nobc_base:.1f}x**.",
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
    pths = ", ".join(f"`{name}` {secs * 1e6:.0f} µs" for name, secs in pth_cost().items()) or "none"
    nx, imports, bare = timed[NX][0], timed[IMPORTS][0], timed[NO_SITE][0]
    entry_only, module = timed[ENTRY][0], timed[module_name][0]
    lines += [
        "",
        "How the warm figure is reached, and why the cold one is not:",
        "",
        "- **Result cache** (`resdsl/entry.py`, the console script): `check` and `info` are pure functions of "
        "their inputs, so a repeated run replays the stored stdout/stderr and exit code. The entry imports nothing "
        "Python has not already loaded at start-up (os, sys, marshal, codecs, the built-in blake2b; hashlib "
        "would load OpenSSL and json would load `re`), so a hit costs the interpreter's start-up plus a few stat "
        "calls and hashing the spec files. The key covers argv, the current directory, the interpreter, the "
        "stdout/stderr encodings, path+size+mtime of every resdsl module, grammar and bundled spec, and the mtime "
        "of every sys.path directory (installing or upgrading lark, networkx or click changes site-packages). A hit "
        "also needs every file the stored run read (the spec and all its imports) to have the same content, every "
        "path to resolve to the same file, and every import candidate that was absent (a file beside the spec that "
        "would shadow a bundled `std.rd`) to be still absent. Only exit 0/1 runs are stored, never usage errors, "
        "`--help`/`--version`, interrupted runs or runs whose output could not be written; `RESDSL_NO_CACHE=1` "
        "bypasses it. Entries live in `~/.cache/resdsl/results/` (`$XDG_CACHE_HOME`), newest 256 kept.",
        f"- Start-up itself: `python -S -c pass` takes {bare * 1000:.0f} ms, so site processing (site-packages and "
        f"its .pth files) is about {(base - bare) * 1000:.0f} ms of the {base * 1000:.0f} ms baseline. The .pth "
        f"files: {pths}; the editable install's is one plain path line (no import hook), so it costs nothing "
        "measurable beyond one more sys.path entry; setuptools' `distutils-precedence.pth` imports "
        f"`_distutils_hack` ({hack * 1000:.1f} ms). Importing the entry costs "
        f"{'under 1 ms' if entry_only - base < 0.001 else f'{(entry_only - base) * 1000:.0f} ms'} more than "
        "`python -c pass`; pip's generated console script imports only `sys` (no `re`) "
        f"and is faster than `python -m resdsl` ({module * 1000:.0f} ms warm: runpy's own imports). The entry "
        "is kept small and its miss path lives in `resdsl/_record.py`, so that where no bytecode is written "
        "(`PYTHONDONTWRITEBYTECODE=1`) a hit compiles ~200 lines, about 3 ms, not the whole tool.",
        "- The LALR tables are built once and cached in `~/.cache/resdsl/` (Lark needs about 140 ms to "
        "build them, 10 ms to load them); `resdsl info` imports none of torch, numpy, jinja2, graphviz or rich "
        "(tests/test_no_torch.py guards torch for every command).",
        "- The IR's hot paths avoid networkx's view machinery (`inputs()` reads `graph.pred`, `ops()` reads "
        "`nodes(data=...)`), which halved shape inference; oversized networks are refused from a static op count "
        "before anything is built.",
        f"- Cold runs stay far from 3x: importing networkx alone takes {nx * 1000:.0f} ms ({nx / base:.0f}x "
        "`python -c pass`): its package `__init__` imports every algorithm, wraps each in its backend dispatcher and "
        "scans installed packages' entry points; importing only `networkx.classes` still runs that `__init__`. "
        f"With lark and click the imports alone are {imports * 1000:.0f} ms, so a cold run cannot reach 3x while "
        "the IR is a networkx graph (which the design requires). What remains is ours: about "
        f"{max(cold - imports, 0) * 1000:.0f} ms of parsing, lowering and analysis for ResNet-152. Nothing cheap "
        "is left to trim on the cold path: click is needed to run any command, lark to parse, networkx for the IR "
        "(its backend dispatcher's entry-point scan pulls in importlib.metadata and email, ~25 ms, inside "
        "networkx); resdsl's own modules cost little once their bytecode is cached.",
        "- What a hit could still get wrong, and why that is acceptable: the key sees site-packages' directory mtime, "
        "not every file under it, so hand-editing a file inside an installed lark/networkx/click (not through pip) "
        "is not noticed (`RESDSL_NO_CACHE=1`, or delete `~/.cache/resdsl/results/`); a resdsl source edited to the "
        "same size within one mtime tick (~4 ms here) of the stored run is not either. Edits made while a run is in "
        "progress are safe: the stored hashes are of the bytes actually parsed, and a run during which resdsl's "
        "files changed is not stored.",
    ]
    return "\n".join(lines) + "\n"


def write_section(text: str) -> None:
    """Replace our section of docs/benchmarks.md (others append their own sections)."""
    replace_section(SECTION, text)


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
