"""Module names decided in the IR (resdsl/ir/naming.py inside blocks, resdsl/ir/paths.py for the network):
collisions are located errors at `check`.

Before, `bn name: "relu"` compiled (exit 0) into a module whose BN was the shared ReLU, a conv named
`downsample` replaced the projection shortcut, and `forward`, `training`, `__class__` passed `check`
and gave files that did not build.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from resdsl.cli.main import main
from resdsl.ir.modnames import MODULE_ATTRIBUTES, name_problem
from resdsl.ir.naming import decide_block_names
from resdsl.ir.pipeline import load_network
from resdsl.ir.template import OpItem, walk

CASES = [
    (
        "shared_relu",
        'block b(c) {\n    residual {\n        conv 3x3, c; bn name: "relu"; relu\n        conv 3x3, c; bn\n    }\n}\nnetwork t {\n    input 3x8x8\n    classes 2\n    stem { conv 3x3, 4; bn; relu }\n    stage s = b(4)\n    head { avgpool global; fc classes }\n}\n',
        'bad.rd:3:31: error: bad module name \'relu\': `relu` is the class\'s shared `relu` module\n    3 |         conv 3x3, c; bn name: "relu"; relu\n      |                               ^^^^^^\n  hint: choose another name, e.g. `name: "bn_a"`\n',
    ),
    (
        "downsample",
        'block b(c, stride = 1) {\n    residual(shortcut: B) {\n        conv 3x3, c, stride: stride, name: "downsample"; bn; relu\n        conv 3x3, c; bn\n    }\n}\nnetwork t {\n    input 3x8x8\n    classes 2\n    stem { conv 3x3, 4; bn; relu }\n    stage s = b(8, stride: 2)\n    head { avgpool global; fc classes }\n}\n',
        'bad.rd:3:44: error: bad module name \'downsample\': the generated class uses `downsample` for the residual\'s shortcut module (a projection or zero-padding, as torchvision names it)\n    3 |         conv 3x3, c, stride: stride, name: "downsample"; bn; relu\n      |                                            ^^^^^^^^^^^^\n  hint: choose another name, e.g. `name: "conv_a"`\n',
    ),
    (
        "auto_name",
        'block b(c) {\n    residual {\n        conv 3x3, c; bn; relu\n        conv 3x3, c, name: "conv1"; bn name: "bn_last"\n    }\n}\nnetwork t {\n    input 3x8x8\n    classes 2\n    stem { conv 3x3, 4; bn; relu }\n    stage s = b(4)\n    head { avgpool global; fc classes }\n}\n',
        'bad.rd:4:28: error: bad module name \'conv1\': `conv1` is the name resdsl gives the block\'s unnamed `conv` at line 3\n    4 |         conv 3x3, c, name: "conv1"; bn name: "bn_last"\n      |                            ^^^^^^^\n  hint: choose another name, e.g. `name: "conv_a"`\n',
    ),
    (
        "twice",
        'block b(c) {\n    residual {\n        conv 3x3, c, name: "a"; bn; relu\n        conv 3x3, c, name: "a"; bn\n    }\n}\nnetwork t {\n    input 3x8x8\n    classes 2\n    stem { conv 3x3, 4; bn; relu }\n    stage s = b(4)\n    head { avgpool global; fc classes }\n}\n',
        "bad.rd:4:28: error: two modules of one block are named 'a'\n    4 |         conv 3x3, c, name: \"a\"; bn\n      |                            ^^^\n  hint: the other is at line 3; names in the two branches of an `if` may repeat\n",
    ),
    (
        "inner_block",
        'block inner(c) { conv 3x3, c; bn }\nblock b(c) {\n    inner(c)\n    conv 1x1, c, name: "inner"\n}\nnetwork t {\n    input 3x8x8\n    classes 2\n    stem { conv 3x3, 4; bn; relu }\n    stage s = b(4)\n    head { avgpool global; fc classes }\n}\n',
        'bad.rd:4:24: error: bad module name \'inner\': `inner` is the attribute of the block `inner` used inside this one\n    4 |     conv 1x1, c, name: "inner"\n      |                        ^^^^^^^\n  hint: choose another name, e.g. `name: "conv_a"`\n',
    ),
    (
        "dunder",
        'block b(c) { conv 3x3, c, name: "__class__"; bn }\nnetwork t {\n    input 3x8x8\n    classes 2\n    stem { conv 3x3, 4; bn; relu }\n    stage s = b(4)\n    head { avgpool global; fc classes }\n}\n',
        "bad.rd:1:33: error: bad module name '__class__': a module name may not begin with an underscore (Python's and nn.Module's own attributes)\n    1 | block b(c) { conv 3x3, c, name: \"__class__\"; bn }\n      |                                 ^^^^^^^^^^^\n  hint: e.g. `bn name: \"norm1\"`\nbad.rd:6:15: note: in block `b` used here\n",
    ),
    (
        "training",
        'block b(c) { conv 3x3, c; bn name: "training" }\nnetwork t {\n    input 3x8x8\n    classes 2\n    stem { conv 3x3, 4; bn; relu }\n    stage s = b(4)\n    head { avgpool global; fc classes }\n}\n',
        'bad.rd:1:36: error: bad module name \'training\': `training` is an attribute of every nn.Module; a module of that name would break the class\n    1 | block b(c) { conv 3x3, c; bn name: "training" }\n      |                                    ^^^^^^^^^^\n  hint: e.g. `bn name: "norm1"`\nbad.rd:6:15: note: in block `b` used here\n',
    ),
    (
        "stem",
        'network t {\n    input 3x8x8\n    classes 2\n    stem { conv 3x3, 4, name: "features.forward"; bn; relu }\n    head { avgpool global; fc classes }\n}\n',
        'bad.rd:4:31: error: bad module name \'features.forward\': `forward` is an attribute of every nn.Module; a module of that name would break the class\n    4 |     stem { conv 3x3, 4, name: "features.forward"; bn; relu }\n      |                               ^^^^^^^^^^^^^^^^^^\n  hint: e.g. `name: "features.denseblock1.denselayer{n}"` or `name: "features.#"`\n',
    ),
    (
        "stem_takes_a_stage",
        'block b(c) {\n    residual {\n        conv 3x3, c; bn; relu\n        conv 3x3, c; bn\n    }\n}\nnetwork t {\n    input 3x8x8\n    classes 2\n    stem { conv 3x3, 4, name: "layer1"; bn; relu }\n    stage s = b(4)\n    head { avgpool global; fc classes }\n}\n',
        "bad.rd:11:15: error: `layer1` names both a module and a container of `layer1.0`\n   11 |     stage s = b(4)\n      |               ^^^^\n  hint: the module is the `conv` at line 10; give one of them another name\n",
    ),
    (
        "network_twice",
        'block b(c) {\n    residual {\n        conv 3x3, c; bn; relu\n        conv 3x3, c; bn\n    }\n}\nnetwork t {\n    input 3x8x8\n    classes 2\n    stem { conv 3x3, 4, name: "stem.0"; bn; relu }\n    stage s = b(4)\n    head { avgpool global; fc classes, name: "stem.0" }\n}\n',
        'bad.rd:12:46: error: two modules of the network are named `stem.0`\n   12 |     head { avgpool global; fc classes, name: "stem.0" }\n      |                                              ^^^^^^^^\n  hint: the module is the `conv` at line 10; give one of them another name (`name:`)\n',
    ),
]


@pytest.mark.parametrize(("name", "spec", "stderr"), CASES, ids=[c[0] for c in CASES])
def test_collision_is_a_located_error(
    name: str, spec: str, stderr: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "bad.rd").write_text(spec)
    monkeypatch.chdir(tmp_path)
    for command in (["check", "bad.rd"], ["compile", "bad.rd", "-o", "model.py"]):
        result = CliRunner().invoke(main, command)
        assert (result.exit_code, result.stderr) == (1, stderr)
    assert not (tmp_path / "model.py").exists()


def test_every_nn_module_attribute_is_refused() -> None:
    torch = pytest.importorskip("torch")
    attributes = set(dir(torch.nn.Module())) | set(vars(torch.nn.Module))
    assert {a for a in attributes if not a.startswith("_")} <= MODULE_ATTRIBUTES
    assert all(name_problem(a) is not None for a in attributes)


BRANCHES = """block b(c, t = 1) {
    if t != 1 {
        conv 1x1, c, name: "conv.0"; bn name: "conv.1"
    } else {
        conv 3x3, c, name: "conv.0"; bn name: "conv.1"
    }
    conv 1x1, c; bn; conv 1x1, c; maxpool 1x1
}
network t {
    input 3x8x8
    classes 2
    stem { conv 3x3, 4; bn; relu }
    stage s = b(4, t: 2)
    stage s2 = b(4)
    head { avgpool global; fc classes }
}
"""


def test_names_decided_in_the_ir_are_the_modules_names(tmp_path: Path) -> None:
    """Unnamed ops get torchvision's numbering in the template (conv1, bn1, maxpool); a name may
    repeat in the two branches of an `if`; the generated module has exactly those names."""
    torch = pytest.importorskip("torch")
    from resdsl.backends.pytorch.codegen import render_model
    from resdsl.backends.pytorch.verify import load_module

    (tmp_path / "ok.rd").write_text(BRANCHES)
    ir = load_network(tmp_path / "ok.rd")
    template = ir.blocks["b"]
    assert decide_block_names(template) == []
    assert [i.attr for i in walk(template.body) if isinstance(i, OpItem)] == [
        "conv.0", "conv.1", "conv.0", "conv.1", "conv1", "bn1", "conv2", "maxpool",
    ]  # fmt: skip
    model = load_module(render_model(ir, "ok.rd")).build_model()
    keys = {k.rsplit(".", 1)[0] for k in model.state_dict()}
    assert {"layer1.0.conv.0", "layer1.0.conv.1", "layer1.0.conv1", "layer1.0.bn1", "layer1.0.conv2"} <= keys
    assert sum(p.numel() for p in model.parameters()) == ir.totals.params
    assert model(torch.zeros(1, 3, 8, 8)).shape == (1, 2)
