"""Record the originals of the zoo's torchvision and timm specs, for tests that run without them:

- tests/golden/torchvision_state_dicts.json: the state_dict keys and shapes of torchvision's
  resnet18/34/50/101/152, wide_resnet50_2, resnext50_32x4d, resnext101_32x8d, vgg16, vgg19,
  densenet121, mobilenet_v2, mobilenet_v3_large, efficientnet_b0 and convnext_tiny, in state_dict order, buffers included (BN running_mean/var and
  num_batches_tracked, whose shape is []). tests/test_codegen.py checks that the modules generated
  from specs/ have exactly these, so torchvision's weights load with strict=True.
- tests/golden/timm_state_dicts.json: the same for timm's resnet50d and seresnet50, whose names
  are not the generated modules' (`conv1.0`, `se.fc1`): tests/test_weights.py checks that
  `resdsl weights rename` pairs them by position.
- tests/golden/zoo_outputs.json: for every one of these 17 networks, what it computes with weights
  made from each state_dict key and shape alone (tests/zoo_recorded.py: a generator seeded by the
  sha256 of the key and shape, conv and fc weights scaled to variance 2/fan_in) on a seeded input
  (2x3x35x35; 67x67 for vgg, densenet121 and convnext_tiny): summaries of the eval- and train-mode
  outputs (dropout and convnext_tiny's stochastic depth drawn from torch's seeded generator) and
  of the gradients to the input and the stem's conv. tests/test_zoo.py builds the same
  weights from the key lists above, loads them into the generated modules with strict=True (timm's
  renamed by position) and compares, in CI, where neither torchvision nor timm is installed.
  efficientnet_b0 is built with stochastic_depth_prob=0 (`ARGUMENTS`): torchvision drops samples,
  resdsl's stochastic depth whole batches, so only the model without it has one train-mode output.

The models are built on the meta device (nothing is downloaded, no init is computed) and get the
made weights with load_state_dict(assign=True). Run it beside the project's torch (2.13.0 CPU) with
torchvision and timm unpacked into a side directory, never into the project's environment:

    pip download --no-deps -d /tmp/zoo-wheels 'torchvision==0.28.*' 'timm==1.0.*'
    for w in /tmp/zoo-wheels/*.whl; do python3 -m zipfile -e "$w" /tmp/zoo-side; done
    PYTHONPATH=/tmp/zoo-side .venv/bin/python scripts/record_zoo.py

(`pip install --no-deps --target /tmp/zoo-side ...` works as well.) A torchvision wheel built for
another torch fails to import (`operator torchvision::nms does not exist`) when it registers the
fake kernels of its detection ops; this script leaves those registrations out, which the
classification models never use. The vgg and densenet121 key lists were first written from
torchvision 0.29's source without torchvision at hand; torchvision 0.28's models give the same.
Review the diff: the state_dict goldens must not change unless the originals did.
"""

from __future__ import annotations

import json
import sys
import types
from collections.abc import Callable
from functools import partial
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = ROOT / "tests" / "golden"
sys.path.insert(0, str(ROOT / "tests"))

import zoo_recorded  # noqa: E402  (tests/zoo_recorded.py: the weight rule the tests share)

TORCHVISION = [
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
    "mobilenet_v3_large",
    "efficientnet_b0",
    "convnext_tiny",
]
# Built with these arguments: torchvision's stochastic depth drops whole samples in training, which
# resdsl's per-batch mode does not compute; with it off, the train-mode output is comparable too
# (at test time it drops nothing, so the eval output is the default model's).
ARGUMENTS = {"efficientnet_b0": {"stochastic_depth_prob": 0.0}}
TIMM = ["resnet50d", "seresnet50"]


def import_originals() -> tuple[types.ModuleType, types.ModuleType]:
    for name in ("torchvision._meta_registrations", "torchvision._autograd_registrations"):
        sys.modules[name] = types.ModuleType(name)  # detection ops' kernels: see the docstring
    import timm
    import torchvision

    return torchvision, timm


def write_state_dicts(path: Path, golden: dict[str, list]) -> None:
    """One [key, shape] pair per line: readable diffs, deterministic bytes."""
    lines = []
    for i, name in enumerate(golden):
        entries = ",\n".join(f"  {json.dumps(entry, separators=(', ', ': '))}" for entry in golden[name])
        lines.append(f" {json.dumps(name)}: [\n{entries}\n ]{',' if i < len(golden) - 1 else ''}")
    text = "{\n" + "\n".join(lines) + "\n}\n"
    assert json.loads(text) == golden
    path.write_text(text)


def write_outputs(path: Path, header: dict, networks: dict[str, dict]) -> None:
    """The header, then one line per network and summary: small, and a diff shows which changed."""
    lines = [f" {json.dumps(k)}: {json.dumps(v)}," for k, v in header.items()]
    lines.append(' "networks": {')
    for i, (name, entry) in enumerate(networks.items()):
        fields = ",\n".join(f"   {json.dumps(k)}: {json.dumps(v)}" for k, v in entry.items())
        lines.append(f"  {json.dumps(name)}: {{\n{fields}\n  }}{',' if i < len(networks) - 1 else ''}")
    text = "{\n" + "\n".join(lines) + "\n }\n}\n"
    assert json.loads(text) == {**header, "networks": networks}
    path.write_text(text)


def record(name: str, build: Callable[[], torch.nn.Module]) -> tuple[list, dict]:
    """The model's [key, shape] list and, with the made weights, its recorded summaries."""
    with torch.device("meta"):
        model = build()
    keys = [[key, list(value.shape)] for key, value in model.state_dict().items()]
    weights = zoo_recorded.state_dict(keys)
    model.load_state_dict(weights, strict=True, assign=True)
    size = zoo_recorded.input_size(name)
    entry = {"input": [zoo_recorded.BATCH, 3, size, size], "weights": zoo_recorded.weights_fingerprint(weights)}
    return keys, {**entry, **zoo_recorded.record(model, size)}


def main() -> None:
    torchvision, timm = import_originals()
    shapes: dict[str, dict[str, list]] = {"torchvision": {}, "timm": {}}
    networks = {}
    for origin, names in (("torchvision", TORCHVISION), ("timm", TIMM)):
        for name in names:
            if origin == "torchvision":
                build = partial(getattr(torchvision.models, name), weights=None, **ARGUMENTS.get(name, {}))
            else:
                build = partial(timm.create_model, name, pretrained=False)
            keys, entry = record(name, build)
            shapes[origin][name] = keys
            networks[name] = {"from": f"{origin} {name}", **entry}
            print(f"{name}: {len(keys)} tensors, eval rms {entry['eval']['rms']:.4g}", flush=True)
    write_state_dicts(GOLDEN / "torchvision_state_dicts.json", shapes["torchvision"])
    write_state_dicts(GOLDEN / "timm_state_dicts.json", shapes["timm"])
    header = {
        "recorded_with": f"torch {torch.__version__}, torchvision {torchvision.__version__}, timm {timm.__version__}",
        "seed": zoo_recorded.SEED,
        "probe": zoo_recorded.probe(),
    }
    write_outputs(GOLDEN / "zoo_outputs.json", header, networks)
    print(f"wrote {GOLDEN}/torchvision_state_dicts.json, timm_state_dicts.json, zoo_outputs.json")


if __name__ == "__main__":
    main()
