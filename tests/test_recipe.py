"""The `train { }` section as the pipeline reads it: `warmup ... until_error` is always a float."""

from __future__ import annotations

from pathlib import Path

import pytest

from resdsl.ir.pipeline import load_network

SPEC = """\
import "std.rd"

network tiny {{
    input 3x32x32
    classes 10
    shortcut A

    stem {{ conv 3x3, 16; bn; relu }}
    stage conv2 = basic(16) * 1
    head {{ avgpool global; fc classes }}
}}

train {{
    warmup lr: 0.01, until_error: {until_error}
}}
"""


@pytest.mark.parametrize(("written", "expected"), [("0.8", 0.8), ("1", 1.0)])
def test_warmup_until_error_is_a_float(tmp_path: Path, written: str, expected: float) -> None:
    spec = tmp_path / "tiny.rd"
    spec.write_text(SPEC.format(until_error=written))
    recipe = load_network(spec).recipe
    assert recipe.warmup_lr == 0.01
    assert type(recipe.warmup_until_error) is float  # `until_error: 1` once kept the int 1
    assert recipe.warmup_until_error == expected
