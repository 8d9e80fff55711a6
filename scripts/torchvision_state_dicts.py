"""Write tests/golden/torchvision_state_dicts.json: the state_dict keys and shapes of torchvision's
resnet18/34/50/101/152, wide_resnet50_2, resnext50_32x4d, resnext101_32x8d, vgg16, vgg19,
densenet121 and mobilenet_v2, in state_dict order, buffers included (BN running_mean/var and
num_batches_tracked, whose shape is []).

tests/test_codegen.py checks that the models generated from specs/resnetNN.rd (with
`--set stride_at=middle` for the bottleneck ones) and specs/vgg16.rd, vgg19.rd, densenet121.rd and mobilenet_v2.rd
(whose `name:` options choose torchvision's module names) have exactly these keys and shapes, so
that torchvision's weights load with strict=True. The vgg and densenet121 entries were first
written from torchvision 0.29's source (models/vgg.py, densenet.py) without torchvision at hand;
the published parameter counts (138,357,544, 143,667,240, 7,978,856) agree with them, and
torchvision 0.28's own models gave the same file when it was regenerated with mobilenet_v2 added
(whose spec names its modules as torchvision does, `conv.0.0` inside its blocks).
torchvision is needed only to regenerate the file, never in CI. Regenerate it, in a throwaway environment, with:

    python3 -m venv /tmp/tv && /tmp/tv/bin/pip install torch torchvision
    /tmp/tv/bin/python scripts/torchvision_state_dicts.py

The models are built with `weights=None` on the meta device: nothing is downloaded or allocated.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
import torchvision

OUT = Path(__file__).resolve().parent.parent / "tests" / "golden" / "torchvision_state_dicts.json"
MODELS = [
    "resnet18",
    "resnet34",
    "resnet50",
    "resnet101",
    "resnet152",
    "wide_resnet50_2",
    "resnext50_32x4d",
    "resnext101_32x8d",
    "vgg16",
    "vgg19",
    "densenet121",
    "mobilenet_v2",
]


def state_dict_shapes(name: str) -> list[list]:
    with torch.device("meta"):
        model = getattr(torchvision.models, name)(weights=None)
    return [[key, list(value.shape)] for key, value in model.state_dict().items()]


def main() -> None:
    golden = {name: state_dict_shapes(name) for name in MODELS}
    # One [key, shape] pair per line: readable diffs, deterministic bytes.
    lines = []
    for i, name in enumerate(MODELS):
        entries = ",\n".join(f"  {json.dumps(entry, separators=(', ', ': '))}" for entry in golden[name])
        comma = "," if i < len(MODELS) - 1 else ""
        lines.append(f" {json.dumps(name)}: [\n{entries}\n ]{comma}")
    text = "{\n" + "\n".join(lines) + "\n}\n"
    assert json.loads(text) == golden
    OUT.write_text(text)
    counts = ", ".join(f"{name} {len(golden[name])}" for name in MODELS)
    print(f"wrote {OUT} (torch {torch.__version__}, torchvision {torchvision.__version__}): {counts} entries")


if __name__ == "__main__":
    main()
