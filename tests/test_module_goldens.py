"""Every spec keeps its generated module: the same state_dict keys and shapes, and the same outputs
for weights fixed by key, as recorded in tests/golden/modules.json before names were decided in the
IR (tests/module_goldens.py says how to re-record, for a listed fix only)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from module_goldens import NETWORK_SPECS, fingerprint

GOLDEN = json.loads((Path(__file__).parent / "golden" / "modules.json").read_text())


def test_every_spec_has_a_golden() -> None:
    assert sorted(GOLDEN) == NETWORK_SPECS


@pytest.mark.parametrize("spec", NETWORK_SPECS)
def test_module_unchanged(spec: str) -> None:
    want, got = GOLDEN[spec], fingerprint(spec)
    assert (got["tensors"], got["keys"], got["output_shape"]) == (want["tensors"], want["keys"], want["output_shape"])
    assert got["output"] == pytest.approx(want["output"], rel=1e-4, abs=1e-5)
    assert got["output_sum"] == pytest.approx(want["output_sum"], rel=1e-4, abs=1e-4)
    assert got["output_abs_sum"] == pytest.approx(want["output_abs_sum"], rel=1e-4)
