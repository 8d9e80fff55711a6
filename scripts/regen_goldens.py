"""Rewrite the golden files of the tests on purpose, after a deliberate change of the output.

    .venv/bin/python scripts/regen_goldens.py

Writes tests/golden/model_*.py (generated PyTorch code, see tests/test_codegen.py) and the
diagram goldens tests/golden/viz_*.dot (tests/test_viz.py --regen). Review the diff before
committing it.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# (spec, --set values): the generated model.py files kept as goldens.
MODEL_GOLDENS = [
    ("cifar20", ()),
    ("resnet50", ("stride_at=middle",)),
    ("preact_resnet164", ()),
    ("densenet121", ()),
    ("mobilenet_v2", ()),
    ("stochdepth110", ()),
    ("resnet50d", ()),
    ("seresnet50", ()),
]


def model_golden(spec: str, sets: tuple[str, ...]) -> str:
    from resdsl.backends.pytorch.codegen import render_model
    from resdsl.ir.pipeline import load_network
    from resdsl.lang.overrides import parse_sets

    ir = load_network(ROOT / "specs" / f"{spec}.rd", parse_sets(sets))
    return render_model(ir, f"specs/{spec}.rd")


def main() -> None:
    for spec, sets in MODEL_GOLDENS:
        path = ROOT / "tests" / "golden" / f"model_{spec}.py"
        path.write_text(model_golden(spec, sets), encoding="utf-8")
        print(f"wrote {path.relative_to(ROOT)}")
    subprocess.run([sys.executable, str(ROOT / "tests" / "test_viz.py"), "--regen"], check=True)


if __name__ == "__main__":
    main()
