"""The fuzzer's CI share (docs/reliability.md): every committed regression in fuzz/regressions/
is replayed through `fuzz.harness.check_one`, and a short, fixed-seed run of the spec-aware
mutator over the seed corpus goes through the whole pipeline (parse, check, compile, build on the
meta device). `make fuzz` runs the coverage-guided engine (atheris) for longer.

A regression whose bug is still open carries a `# xfail: REASON` line; it is a strict xfail, so
the test fails (XPASS) once the bug is fixed: then delete that line.
"""

from __future__ import annotations

import os
import random
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `fuzz` is a top-level folder of the checkout, not part of the package
    sys.path.insert(0, str(ROOT))

from fuzz.harness import Finding, Outcome, check_one, signature_of  # noqa: E402
from fuzz.mutate import mutate, seeds  # noqa: E402

REGRESSIONS = sorted((ROOT / "fuzz" / "regressions").glob("*.rd"))
CRASHES = ROOT / "fuzz" / "crashes"

# The CI budget: a fixed number of mutants (fixed seed), each compiled only if its IR is small, and
# a wall-clock cap past which the loop stops early (it never fails for time): about 20-30 s of
# one core. RESDSL_FUZZ_ITERATIONS raises it for a local bug hunt; `make fuzz` is the long run.
ITERATIONS = int(os.environ.get("RESDSL_FUZZ_ITERATIONS", "300"))
CI_SECONDS = 35.0
CI_MAX_OPS = 600
CI_TIMEOUT = 30.0
REGRESSION_TRAIN_TIMEOUT = 5.0  # the regressions are tiny networks: a step that takes longer is the finding


def header(data: bytes) -> dict[str, str]:
    """`# key: value` lines at the top of a regression file (`fuzz regression:`, `xfail:`)."""
    out: dict[str, str] = {}
    for line in data.decode("utf-8", "replace").splitlines():
        if not line.startswith("#"):
            break
        key, sep, value = line[1:].strip().partition(":")
        if sep:
            out[key.strip()] = value.strip()
    return out


def _cases():
    for path in REGRESSIONS:
        meta = header(path.read_bytes())
        marks = [pytest.mark.xfail(strict=True, reason=meta["xfail"])] if "xfail" in meta else []
        yield pytest.param(path, id=path.stem, marks=marks)


def test_regressions_are_documented() -> None:
    assert REGRESSIONS, "fuzz/regressions/ is empty"
    for path in REGRESSIONS:
        assert header(path.read_bytes()).get("fuzz regression"), f"{path.name}: no `# fuzz regression: ...` line"


@pytest.mark.parametrize("path", list(_cases()))
def test_regression(path: Path) -> None:
    """A minimised input that once broke the property satisfies it."""
    try:
        check_one(path.read_bytes(), train_timeout=REGRESSION_TRAIN_TIMEOUT)
    except Finding as f:
        pytest.fail(f"{path.name}: {f}")


def test_seed_corpus() -> None:
    """The seeds themselves pass the front end (std.rd, a library, is a clear error): a seed that
    broke would quietly narrow the fuzzing. (tests/test_codegen.py compiles every spec.)"""
    outcomes = {name: check_one(text, compile_model=False) for name, text in seeds().items() if "small" in name}
    outcomes["std.rd"] = check_one(seeds()["std.rd"])
    assert outcomes.pop("std.rd") is Outcome.ERROR
    assert set(outcomes.values()) == {Outcome.SKIPPED}, outcomes


def open_signatures() -> set[str]:
    """The signatures of the open (xfail) regressions: known bugs, which the budget run skips."""
    out = set()
    for path in REGRESSIONS:
        data = path.read_bytes()
        if "xfail" in header(data):
            out.add(signature_of(data, train_timeout=REGRESSION_TRAIN_TIMEOUT))
    return out - {None}


@pytest.mark.slow
def test_fuzz_budget() -> None:
    """Mutants (of mutants) of the small seeds, fixed seed: every one ends in a clear error or a
    verified module. A new finding (one whose signature no open regression has) is written to
    fuzz/crashes/ and fails the test with its input."""
    known = open_signatures()
    rng = random.Random(20240601)
    pool = [t.encode() for name, t in seeds().items() if name.startswith(("small-", "inline-small-"))]
    outcomes: dict[Outcome | str, int] = {}
    stop = time.monotonic() + CI_SECONDS
    for i in range(ITERATIONS):
        if time.monotonic() > stop:
            break
        child = mutate(rng.choice(pool), 16384, rng)
        try:
            outcome = check_one(child, max_ops=CI_MAX_OPS, timeout=CI_TIMEOUT)
        except Finding as f:
            if f.signature in known:
                outcomes["known"] = outcomes.get("known", 0) + 1
                continue
            CRASHES.mkdir(exist_ok=True)
            saved = CRASHES / f"ci-{i}.rd"
            saved.write_bytes(child)
            pytest.fail(f"iteration {i}: {f}\n(input saved to {saved}; minimise: python -m fuzz.minimize {saved})")
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
        if outcome in (Outcome.COMPILED, Outcome.REFUSED) and len(pool) < 500:
            pool.append(child)
    print(f"{i + 1} mutants: " + ", ".join(f"{getattr(o, 'value', o)} {n}" for o, n in outcomes.items()))
    assert outcomes.get(Outcome.ERROR) and outcomes.get(Outcome.COMPILED), outcomes  # the mutator reaches both ends


def test_section_in_stem_is_a_clear_refusal(tmp_path: Path) -> None:
    """Seen while fuzzing: `residual { }` or `dense { }` directly in a stem or head passes check,
    and compile said only `no module for shortcut`; it now says what and where."""
    from resdsl.backends.pytorch.codegen import CodegenError, render_model
    from resdsl.ir.pipeline import load_network

    spec = tmp_path / "s.rd"
    spec.write_text(
        "network t {\n    input 3x8x8\n    classes 2\n    stem { conv 3x3, 4; dense { conv 3x3, 4 } }\n"
        "    head { avgpool global; fc classes }\n}\n"
    )
    with pytest.raises(CodegenError, match=r"`dense \{ \}` section directly in the stem \(.*s\.rd:4:25\)"):
        render_model(load_network(spec), spec)
