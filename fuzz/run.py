"""`make fuzz`: coverage-guided fuzzing of the front end and the PyTorch code generator, and (`--target data`)
of the readers of image folders, idx, npz, weights and SVHN .mat files and of sweep.json.

    .venv/bin/python -m fuzz.run [--target specs|data|names] [--seconds N] [--max-ops N] [--engine atheris|random]
                                 [LIBFUZZER_FLAGS...]

atheris (libFuzzer) runs `harness.check_one` on inputs made by `mutate.mutate` (its custom
mutator) from a working corpus, fuzz/corpus/ (git-ignored; the seeds of `mutate.seeds()` are
written into it first, and inputs that reach new coverage of resdsl's modules are added to it).
With `--target names` the harness is `modnames.check_one` (hostile `name:` values: a located error, or a
module that builds and holds the paths it was given) on specs `modnames.generate` makes (and the spec mutator
edits now and then); findings are KIND-HASH.rd. With `--target data` the harness is `datafiles.check_one`, the mutator `datafiles.mutate` (binary edits of
real files) and the corpus fuzz/corpus-data/; findings are KIND-HASH.bin.
A finding does not stop the run: it is written to fuzz/crashes/ as KIND-HASH.rd (the input) and
KIND-HASH.txt (the symptom, the signature, a traceback), at most 3 inputs per signature, and
fuzz/crashes/summary.json counts executions, outcomes and signatures. Inputs that compile are also
kept in memory, and 30% of mutations start from one of them (most of the coverage corpus ends in
errors, and the code generator needs valid networks). Without atheris (or with --engine random)
the same mutator runs in a plain loop over the seeds and the inputs that compiled.
Triage: `python -m fuzz.minimize fuzz/crashes/KIND-HASH.rd` (docs/reliability.md).
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import json
import os
import pkgutil
import random
import sys
import time
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
CORPUS = HERE / "corpus"
CRASHES = HERE / "crashes"
KEEP_PER_SIGNATURE = 3
VALID_POOL = 500
RESTART_FROM_VALID = 0.3  # most of libFuzzer's corpus ends in errors: keep the code generator busy
INSTRUMENTED = ["resdsl.diagnostics", "resdsl.lang", "resdsl.ir", "resdsl.backends.report", "resdsl.backends.pytorch"]
DATA_INSTRUMENTED = [
    "resdsl.experiments.sweepfile",
    "resdsl.files",
    "resdsl.train.datafiles",
    "resdsl.train.digitfiles",
    "resdsl.train.imagefiles",
    "resdsl.train.imagefolder",
    "resdsl.backends.pytorch.weights",
]


def target(name: str):
    """(harness, mutator, seeds as bytes, instrumented modules, suffix of saved inputs) of a target."""
    if name == "names":
        from fuzz import modnames, mutate

        def names_mutator(data: bytes, max_size: int, rng: random.Random) -> bytes:
            if rng.random() < 0.3:
                return mutate.mutate(data, max_size, rng)
            return modnames.generate(rng).encode()[:max_size]

        seeds = [t.encode() for t in modnames.seeds().values()]
        return modnames, names_mutator, seeds, INSTRUMENTED, ".rd"
    if name == "data":
        from fuzz import datafiles

        return datafiles, datafiles.mutate, list(datafiles.seeds().values()), DATA_INSTRUMENTED, ".bin"
    from fuzz import harness, mutate

    def spec_mutator(data: bytes, max_size: int, rng: random.Random) -> bytes:
        return mutate.mutate(data, max_size, rng)

    return harness, spec_mutator, [t.encode() for t in mutate.seeds().values()], INSTRUMENTED, ".rd"


class Session:
    """Runs inputs through the harness, records findings and statistics."""

    def __init__(self, harness, max_ops: int, timeout: float, crashes: Path, suffix: str = ".rd") -> None:
        self.harness = harness
        self.suffix = suffix
        self.max_ops = max_ops
        self.timeout = timeout
        self.crashes = crashes
        self.outcomes: Counter[str] = Counter()
        self.valid: list[bytes] = []  # inputs that compiled: the mutator restarts from them now and then
        self.signatures: Counter[str] = Counter()
        self.start = time.monotonic()
        self.last_report = self.start
        crashes.mkdir(parents=True, exist_ok=True)

    def one(self, data: bytes) -> None:
        try:
            outcome = self.harness.check_one(data, max_ops=self.max_ops, timeout=self.timeout)
            self.outcomes[outcome.value] += 1
            if outcome.value in ("compiled", "refused"):
                if len(self.valid) < VALID_POOL:
                    self.valid.append(bytes(data))
                else:
                    self.valid[random.randrange(VALID_POOL)] = bytes(data)
        except self.harness.Finding as f:
            self.outcomes["finding"] += 1
            self.record(f, data)
        now = time.monotonic()
        if now - self.last_report > 30:
            self.last_report = now
            self.report()

    def record(self, f, data: bytes) -> None:
        self.signatures[f.signature] += 1
        count = self.signatures[f.signature]
        if count == 1:
            print(f"\n*** new finding: {f.signature}\n    {f}", file=sys.stderr, flush=True)
        if count <= KEEP_PER_SIGNATURE:
            name = f"{f.kind}-{hashlib.sha1(data).hexdigest()[:12]}"
            (self.crashes / f"{name}{self.suffix}").write_bytes(data)
            info = f"signature: {f.signature}\n{f}\n\n{f.traceback}"
            (self.crashes / f"{name}.txt").write_text(info, encoding="utf-8", errors="replace")
            self.report()

    def executions(self) -> int:
        return sum(self.outcomes.values())

    def report(self) -> None:
        elapsed = time.monotonic() - self.start
        execs = self.executions()
        summary = {
            "executions": execs,
            "seconds": round(elapsed, 1),
            "executions_per_second": round(execs / elapsed, 2) if elapsed else None,
            "outcomes": dict(self.outcomes),
            "signatures": dict(self.signatures),
        }
        (self.crashes / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
        print(
            f"[fuzz] {elapsed:7.0f} s  {execs} execs  {summary['executions_per_second']}/s  "
            f"{dict(self.outcomes)}  {len(self.signatures)} signatures",
            file=sys.stderr,
            flush=True,
        )


def write_seeds(corpus: Path, seeds: list[bytes]) -> None:
    corpus.mkdir(parents=True, exist_ok=True)
    for data in seeds:
        path = corpus / f"seed-{hashlib.sha1(data).hexdigest()[:12]}"
        if not path.exists():
            path.write_bytes(data)


def import_instrumented(modules: list[str]) -> None:
    """Import every module the harness can reach (lazy imports inside functions included), so
    that atheris instruments them all."""
    for name in modules:
        module = importlib.import_module(name)
        if hasattr(module, "__path__"):
            for info in pkgutil.walk_packages(module.__path__, name + "."):
                importlib.import_module(info.name)


def run_atheris(args, extra: list[str]) -> None:
    import atheris

    with atheris.instrument_imports(include=["resdsl"]):
        import_instrumented(target(args.target)[3])
    harness, mutator, seeds, _, suffix = target(args.target)
    session = Session(harness, args.max_ops, args.timeout, args.crashes, suffix)

    def test_one_input(data: bytes) -> None:
        session.one(data)

    def custom_mutator(data: bytes, max_size: int, seed: int) -> bytes:
        rng = random.Random(seed)
        if session.valid and rng.random() < RESTART_FROM_VALID:
            data = rng.choice(session.valid)
        if args.target != "specs":
            return mutator(data, max_size, rng)
        from fuzz import mutate

        return mutate.mutate(data, max_size, rng, lambda d, n, _: atheris.Mutate(d, n), stack=False)

    def custom_crossover(a: bytes, b: bytes, max_size: int, seed: int) -> bytes:
        from fuzz import mutate

        return mutate.crossover(a, b, max_size, random.Random(seed))

    corpus = (
        args.corpus if args.target == "specs" or args.corpus != CORPUS else CORPUS.with_name(f"corpus-{args.target}")
    )
    write_seeds(corpus, seeds)
    flags = [
        f"-max_total_time={args.seconds}",
        f"-max_len={262144 if args.target == 'data' else 16384}",
        "-timeout=0",  # the harness has its own per-input alarm (SIGALRM); libFuzzer's would clash
        "-rss_limit_mb=4096",
        "-print_final_stats=1",
        f"-artifact_prefix={args.crashes}/",
    ]
    if args.target == "specs":
        flags.append(f"-dict={HERE / 'resdsl.dict'}")
    if args.seed is not None:
        flags.append(f"-seed={args.seed}")
    atheris.Setup(
        [sys.argv[0], *flags, *extra, str(corpus)],
        test_one_input,
        custom_mutator=custom_mutator,
        custom_crossover=custom_crossover if args.target == "specs" else None,
    )
    try:
        atheris.Fuzz()
    finally:
        session.report()


def run_random(args) -> None:
    """The same mutator in a plain loop (no coverage feedback): mutants of mutants of the seeds."""
    harness, mutator, seeds, _, suffix = target(args.target)
    session = Session(harness, args.max_ops, args.timeout, args.crashes, suffix)
    rng = random.Random(args.seed if args.seed is not None else 0)
    deadline = time.monotonic() + args.seconds
    try:
        while time.monotonic() < deadline:
            parent = rng.choice(session.valid if session.valid and rng.random() < 0.7 else seeds)
            session.one(mutator(parent, 262144, rng))
    finally:
        session.report()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=int(os.environ.get("FUZZ_SECONDS", "600")))
    parser.add_argument("--max-ops", type=int, default=int(os.environ.get("FUZZ_MAX_OPS", "20000")))
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds per input before it is a finding")
    parser.add_argument("--engine", choices=["atheris", "random"], default=None)
    parser.add_argument("--target", choices=["specs", "data", "names"], default=os.environ.get("FUZZ_TARGET", "specs"))
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--corpus", type=Path, default=CORPUS)
    parser.add_argument("--crashes", type=Path, default=CRASHES)
    args, extra = parser.parse_known_args(argv)
    engine = args.engine
    if engine is None:
        try:
            import atheris  # noqa: F401
        except ImportError:
            print("atheris is not installed (pip install atheris): a random loop, no coverage", file=sys.stderr)
            engine = "random"
        else:
            engine = "atheris"
    if engine == "atheris":
        run_atheris(args, extra)
    else:
        run_random(args)


if __name__ == "__main__":
    main()
