"""Write tests/golden/timm_state_dicts.json: the state_dict keys and shapes of timm's resnet50d and
seresnet50, in state_dict order, buffers included.

Their names are not the generated modules' (timm's deep stem is `conv1.0`, `conv1.1`, ...; its SE
gate `se.fc1`), so tests/test_weights.py checks that `resdsl weights rename` pairs them with the
modules of specs/resnet50d.rd and specs/seresnet50.rd by position, every shape agreeing. With timm
installed, tests/test_zoo.py also compares outputs with the same weights. timm is needed only to
regenerate the file, never in CI:

    python3 -m venv /tmp/tm && /tmp/tm/bin/pip install torch timm
    /tmp/tm/bin/python scripts/timm_state_dicts.py

The models are built with `pretrained=False` on the meta device: nothing is downloaded or allocated.
"""

from __future__ import annotations

import json
from pathlib import Path

import timm
import torch

OUT = Path(__file__).resolve().parent.parent / "tests" / "golden" / "timm_state_dicts.json"
MODELS = ["resnet50d", "seresnet50"]


def main() -> None:
    golden = {}
    for name in MODELS:
        with torch.device("meta"):
            model = timm.create_model(name, pretrained=False)
        golden[name] = [[key, list(value.shape)] for key, value in model.state_dict().items()]
    lines = []
    for i, name in enumerate(MODELS):
        entries = ",\n".join(f"  {json.dumps(entry, separators=(', ', ': '))}" for entry in golden[name])
        lines.append(f" {json.dumps(name)}: [\n{entries}\n ]{',' if i < len(MODELS) - 1 else ''}")
    text = "{\n" + "\n".join(lines) + "\n}\n"
    assert json.loads(text) == golden
    OUT.write_text(text)
    print(f"wrote {OUT} (torch {torch.__version__}, timm {timm.__version__})")


if __name__ == "__main__":
    main()
