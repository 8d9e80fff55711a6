"""The data-file fuzzer's CI share (docs/reliability.md, issue 19): every committed regression in
fuzz/regressions/data/ is replayed through `fuzz.datafiles.check_one`, every seed (real JPEGs, PNGs, idx, npz,
weights and SVHN .mat files, sweep.json) reads cleanly, and a fixed-seed run of the binary mutator over them ends, for each mutant, in a
result of the right shape or a one-line error naming the file. `make fuzz FUZZ_TARGET=data` runs it longer."""

from __future__ import annotations

import json
import random
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `fuzz` is a top-level folder of the checkout, not part of the package
    sys.path.insert(0, str(ROOT))

from fuzz.datafiles import KINDS, check_one, decode_input, mutate, seeds  # noqa: E402
from fuzz.harness import Finding, Outcome  # noqa: E402

REGRESSIONS = ROOT / "fuzz" / "regressions" / "data"
CRASHES = ROOT / "fuzz" / "crashes"
ITERATIONS, CI_SECONDS = 600, 15.0  # about 3 s of one core; the cap only matters on a loaded machine
pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def test_regressions_are_documented() -> None:
    index = json.loads((REGRESSIONS / "index.json").read_text())
    assert sorted(index) == sorted(p.name for p in REGRESSIONS.glob("*.bin"))
    assert all(index.values())


@pytest.mark.parametrize("path", sorted(REGRESSIONS.glob("*.bin")), ids=lambda p: p.stem)
def test_regression(path: Path) -> None:
    try:
        check_one(path.read_bytes())
    except Finding as f:
        pytest.fail(f"{path.name}: {f}")


def test_every_seed_reads() -> None:
    outcomes = {name: check_one(data) for name, data in seeds().items()}
    assert set(outcomes.values()) == {Outcome.COMPILED}, outcomes
    assert {decode_input(d)[0] for d in seeds().values()} == set(KINDS)


def test_data_fuzz_budget() -> None:
    rng = random.Random(20261202)
    pool = list(seeds().values())
    outcomes: dict[tuple[str, str], int] = {}
    stop = time.monotonic() + CI_SECONDS
    for i in range(ITERATIONS):
        if time.monotonic() > stop:
            break
        kind = rng.choice(KINDS)
        child = mutate(rng.choice([p for p in pool if decode_input(p)[0] == kind] or pool), 1 << 18, rng)
        try:
            outcome = check_one(child)
        except Finding as f:
            CRASHES.mkdir(exist_ok=True)
            saved = CRASHES / f"ci-data-{i}.bin"
            saved.write_bytes(child)
            pytest.fail(f"iteration {i}: {f}\n(input saved to {saved})")
        key = (decode_input(child)[0], outcome.value)
        outcomes[key] = outcomes.get(key, 0) + 1
        if outcome is Outcome.COMPILED and len(pool) < 200:
            pool.append(child)
    print(f"{i + 1} mutants: {outcomes}")
    assert {k for k, o in outcomes if o == "error"} == set(KINDS), outcomes  # every reader reached its errors


def test_sweep_json_keys_are_escaped_and_shortened_in_errors(tmp_path: Path) -> None:
    from resdsl.diagnostics import InputError
    from resdsl.experiments.sweepfile import read_sweep

    path = tmp_path / "sweep.json"
    for name, message in (
        (
            "sweep-axis-terminal-escape.bin",
            '`config.axes."\\u001b[31m"` must be named like a --set name, not "\\u001b[31m"',
        ),
        ("sweep-field-newline.bin", '`config."a\\nb"` is not a field of a sweep'),
        ("sweep-train-key-300-chars.bin", f'`config.train."{"x" * 56}...` is not an option of a sweep'),
    ):
        path.write_bytes((REGRESSIONS / name).read_bytes()[1:])
        with pytest.raises(InputError) as err:
            read_sweep(tmp_path)
        assert str(err.value).startswith(f"{path}: {message}"), str(err.value)


def test_a_mat_file_that_crashes_scipy_is_a_one_line_error(tmp_path: Path) -> None:
    from resdsl.train import digitfiles
    from resdsl.train.datafiles import DataError

    path = tmp_path / "train_32x32.mat"
    path.write_bytes((REGRESSIONS / "mat-segfault.bin").read_bytes()[1:])
    with pytest.raises(DataError) as err:
        digitfiles.read_svhn_mat(path)
    # scipy's reader either segfaults on this file or, depending on what its memory held, raises first (seen
    # once in a full run): both are one line naming the file, and this process lives on
    assert str(err.value) in (
        f"{path} is not a readable MATLAB v5 file (truncated, or not SVHN's): scipy crashed reading it",
        f"{path} is not a readable MATLAB v5 file (truncated, or not SVHN's)",
    )
