"""ir.paths: the module path the IR decided for each op that owns a module, as the generated model holds it. Checked by
running the generated model on the meta device with every mapped module hooked: each runs exactly once per
forward pass, is the op's kind of module, and gives the op's output shape."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from resdsl.backends.pytorch.codegen import render_model
from resdsl.backends.pytorch.optable import behaviour
from resdsl.backends.pytorch.verify import load_module
from resdsl.ir.graph import OpKind
from resdsl.ir.paths import module_paths
from resdsl.ir.pipeline import load_network

SPECS = Path(__file__).resolve().parent.parent / "specs"


def module_types() -> dict:
    """Each module-owning op kind -> the torch.nn class(es) its module is."""
    import torch

    return {
        OpKind.CONV: torch.nn.Conv2d,
        OpKind.BN: torch.nn.modules.batchnorm._BatchNorm,
        OpKind.FC: torch.nn.Linear,
        OpKind.MAXPOOL: torch.nn.MaxPool2d,
        OpKind.AVGPOOL: (torch.nn.AvgPool2d, torch.nn.AdaptiveAvgPool2d),
        OpKind.GLOBAL_AVGPOOL: torch.nn.AdaptiveAvgPool2d,
        OpKind.ADAPTIVE_AVGPOOL: torch.nn.AdaptiveAvgPool2d,
        OpKind.DROPOUT: torch.nn.Dropout,
    }


NESTED = """import "std.rd"

block pair(width) {
    basic(width)
    conv 3x3, width; bn; relu
    basic(width)
}

network nested {
    input 3x16x16
    classes 10
    stem { conv 3x3, 8; bn; relu }
    stage s = pair(8) * 2
    stage t = conv_relu(16), pair(16)
    head { avgpool global; fc classes }
}
"""


def check(ir) -> int:
    import torch

    MODULE_TYPES = module_types()
    paths = module_paths(ir)
    owners = [op for op in ir.ops() if op.kind in MODULE_TYPES]
    assert sorted(paths) == sorted(op.id for op in owners)
    assert len(set(paths.values())) == len(paths)
    with torch.device("meta"):
        model = load_module(render_model(ir, ir.name)).build_model().eval()
    seen: dict[int, list[tuple[int, ...]]] = {op.id: [] for op in owners}
    hooks = []
    for op in owners:
        module = model.get_submodule(paths[op.id])
        assert isinstance(module, MODULE_TYPES[op.kind]), (op.id, paths[op.id], module)
        hooks.append(module.register_forward_hook(lambda m, i, o, k=op.id: seen[k].append(tuple(o.shape[1:]))))
    with torch.no_grad():
        model(torch.empty(2, *ir.input_shape, device="meta"))
    for h in hooks:
        h.remove()
    for op in owners:
        shape = tuple(op.shape)
        if behaviour(op.kind).elementwise and len(shape) == 3 and shape[1:] == (1, 1):
            shape = shape[:1]  # flattened before the dropout of `avgpool global; dropout; fc`, as torchvision does
        assert seen[op.id] == [shape], (op.id, op.kind, paths[op.id], seen[op.id], op.shape)
    return len(owners)


@pytest.mark.parametrize(
    "spec, sets",
    [
        ("cifar20.rd", {"shortcut": "B"}),
        ("preact_resnet164.rd", {}),
        ("resnet50.rd", {}),
        ("seresnet50.rd", {}),  # a gate inside each residual branch
        ("densenet40.rd", {}),  # modules named with `name:` (the tree layout)
        ("vgg16.rd", {}),  # named, features.N / classifier.N
        ("mobilenet_v2.rd", {}),  # `if` in a block
        ("resnet50d.rd", {}),  # written shortcuts: downsample.0, .1, ... as each use builds them
        ("nin_cifar10.rd", {}),
        ("stochdepth110.rd", {}),
        ("wrn28_10.rd", {}),
    ],
)
def test_every_module_owner_maps_to_its_module(spec: str, sets: dict) -> None:
    assert check(load_network(SPECS / spec, sets)) > 10


def test_blocks_inside_blocks(tmp_path: Path) -> None:
    spec = tmp_path / "nested.rd"
    spec.write_text(NESTED)
    ir = load_network(spec, {})
    assert check(ir) == 1 + 1 + 3 * (2 + 2 + 2 + 2 + 2) + 1 + 1 + 1  # stem, 3 pairs, conv_relu, pool, fc
    paths = module_paths(ir)
    assert sorted(p for p in paths.values() if p.startswith("layer1.1.")) == [
        "layer1.1.basic.bn1", "layer1.1.basic.bn2", "layer1.1.basic.conv1", "layer1.1.basic.conv2",
        "layer1.1.basic_.bn1", "layer1.1.basic_.bn2", "layer1.1.basic_.conv1", "layer1.1.basic_.conv2",
        "layer1.1.bn1", "layer1.1.conv1",
    ]  # fmt: skip


def test_paths_are_decided_in_the_ir_without_the_back_end() -> None:
    """Lowering writes every path (Op.path, BlockInstance.path): no back end is imported to learn them."""
    code = (
        "import sys; from resdsl.ir.pipeline import load_network; from resdsl.ir.paths import module_paths\n"
        f"ir = load_network({str(SPECS / 'resnet50d.rd')!r})\n"
        "print(sorted(p for p in module_paths(ir).values() if p.startswith('layer2.0.')))\n"
        "print(sorted(m for m in sys.modules if m.startswith('resdsl.backends')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.splitlines() == [
        "['layer2.0.bn1', 'layer2.0.bn2', 'layer2.0.bn3', 'layer2.0.conv1', 'layer2.0.conv2', 'layer2.0.conv3', "
        "'layer2.0.downsample.0', 'layer2.0.downsample.1', 'layer2.0.downsample.2']",
        "[]",
    ]
