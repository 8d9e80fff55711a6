"""The module-name fuzzer's CI share (docs/reliability.md, issue 19): hostile `name:` values in every place a
spec names a module (fuzz/modnames.py). Every regression in fuzz/regressions/names/ is replayed, the seeds
compile, and a fixed-seed run of generated specs each ends in a located error of `check` or in a module that
builds, matches its IR and holds the paths it was given. `python -m fuzz.run --target names` runs it longer."""

from __future__ import annotations

import random
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `fuzz` is a top-level folder of the checkout, not part of the package
    sys.path.insert(0, str(ROOT))

from fuzz.harness import Finding, Outcome  # noqa: E402
from fuzz.modnames import check_one, generate, seeds  # noqa: E402

REGRESSIONS = sorted((ROOT / "fuzz" / "regressions" / "names").glob("*.rd"))
CRASHES = ROOT / "fuzz" / "crashes"
ITERATIONS, CI_SECONDS = 200, 8.0  # about 4 s of one core; the cap only matters on a loaded machine
pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def test_regressions_are_documented() -> None:
    assert REGRESSIONS
    assert all(p.read_text().startswith("# fuzz regression: ") for p in REGRESSIONS)


@pytest.mark.parametrize("path", REGRESSIONS, ids=lambda p: p.stem)
def test_regression(path: Path) -> None:
    try:
        check_one(path.read_text(), train_timeout=5.0)
    except Finding as f:
        pytest.fail(f"{path.name}: {f}")


def test_positions_of_containers_are_checked(tmp_path: Path) -> None:
    from resdsl.diagnostics import ResdslError
    from resdsl.ir.pipeline import load_network

    for name, line, message in (
        (
            "block-container-position-gap.rd",
            7,
            "bad module name 'conv.1': `conv` holds 0 modules here, so its next is `conv.0`",
        ),
        (
            "network-container-position-gap.rd",
            20,
            "`a.1.x`: `a` holds 0 modules before it, so its position is `a.0`, not `a.1`",
        ),
        (
            "network-container-names-then-positions.rd",
            8,
            "`features.0`: `features` holds 1 module before it, so its position is `features.1`, not `features.0`",
        ),
    ):
        spec = tmp_path / name
        spec.write_text((ROOT / "fuzz" / "regressions" / "names" / name).read_text())
        with pytest.raises(ResdslError) as err:
            load_network(spec)
        headline = err.value.render().splitlines()[0]
        assert headline.startswith(f"{spec}:{line}:") and headline.endswith(f": error: {message}"), headline


def test_seeds_compile() -> None:
    assert {name: check_one(text) for name, text in seeds().items()} == dict.fromkeys(seeds(), Outcome.COMPILED)


def test_names_fuzz_budget() -> None:
    rng = random.Random(20261202)
    outcomes: dict[str, int] = {}
    stop = time.monotonic() + CI_SECONDS
    for i in range(ITERATIONS):
        if time.monotonic() > stop:
            break
        text = generate(rng)
        try:
            outcome = check_one(text, train_timeout=5.0)
        except Finding as f:
            CRASHES.mkdir(exist_ok=True)
            saved = CRASHES / f"ci-names-{i}.rd"
            saved.write_text(text)
            pytest.fail(f"iteration {i}: {f}\n(input saved to {saved})")
        outcomes[outcome.value] = outcomes.get(outcome.value, 0) + 1
    print(f"{i + 1} specs: {outcomes}")
    assert set(outcomes) == {"error", "compiled"}, outcomes
