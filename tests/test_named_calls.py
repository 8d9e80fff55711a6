"""`name:` on a block used inside a block (`squeeze_excite(name: "block.2")`): its module is an
attribute or a position of the calling class's containers, so that torchvision's MobileNetV3 keys
(`features.4.block.2.fc1.weight`) load; its misuse is a located error at `check`."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from resdsl.cli.main import main
from resdsl.ir.pipeline import load_network

GATE = "block g { gate { avgpool global; conv 1x1, in.channels, bias: true; sigmoid } }\n"
NET = """network t {
    input 3x8x8
    classes 2
    stem { conv 3x3, 4; bn; relu }
    stage s = b(4)
    head { avgpool global; fc classes }
}
"""

CASES = [
    (
        "not_a_position",
        GATE + 'block b(c) {\n    conv 3x3, c; bn\n    g(name: "block.2.x")\n}\n' + NET,
        "bad.rd:4:13: error: bad module name 'block.2.x': a name inside a block is one attribute, or a container "
        "and positions in it (`conv.0.1`)\n"
        '    4 |     g(name: "block.2.x")\n'
        "      |             ^^^^^^^^^^^\n"
        '  hint: e.g. `bn name: "norm1"`\n'
        "bad.rd:10:15: note: in block `b` used here\n",
    ),
    (
        "generated_name",
        GATE + 'block b(c) {\n    conv 3x3, c; bn\n    g(name: "conv1")\n}\n' + NET,
        "bad.rd:4:13: error: bad module name 'conv1': `conv1` is the name resdsl gives the block's unnamed "
        "`conv` at line 3\n"
        '    4 |     g(name: "conv1")\n'
        "      |             ^^^^^^^\n"
        '  hint: choose another name, e.g. `name: "g_a"`\n',
    ),
    (
        "taken_position",
        GATE + 'block b(c) {\n    conv 3x3, c, name: "block.0"; bn name: "block.1"\n    g(name: "block.1")\n}\n' + NET,
        "bad.rd:4:13: error: two modules of one block are named 'block.1'\n"
        '    4 |     g(name: "block.1")\n'
        "      |             ^^^^^^^^^\n"
        "  hint: the other is at line 3; names in the two branches of an `if` may repeat\n",
    ),
    (
        "in_a_head",
        GATE + "block b(c) { conv 3x3, c; bn }\n" + NET.replace("head { avgpool", 'head { g(name: "se"); avgpool'),
        "bad.rd:8:14: error: `name:` of a block use is for a block used inside a block, not in a head\n"
        '    8 |     head { g(name: "se"); avgpool global; fc classes }\n'
        "      |              ^^^^^^^^^^\n"
        "  hint: name the ops inside `g` instead\n",
    ),
    (
        "in_a_stage",
        "block b(c) { conv 3x3, c; bn }\n" + NET.replace("b(4)", 'b(4, name: "x")'),
        "bad.rd:6:20: error: block `b` has no argument `name`\n"
        '    6 |     stage s = b(4, name: "x")\n'
        "      |                    ^^^^^^^^^\n"
        '  hint: its arguments: c; a stage names its blocks\' modules: `stage NAME(name: "features.#") = ...`\n',
    ),
]


@pytest.mark.parametrize(("name", "spec", "stderr"), CASES, ids=[c[0] for c in CASES])
def test_misnamed_call_is_a_located_error(
    name: str, spec: str, stderr: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "bad.rd").write_text(spec)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["check", "bad.rd"])
    assert (result.exit_code, result.stderr) == (1, stderr)


NAMED = (
    GATE
    + """block b(c, t = 2) {
    residual {
        conv 1x1, c * t, name: "block.0.0"; bn name: "block.0.1"
        if t > 1 { relu name: "block.0.2" } else { hardswish name: "block.0.2" }
        g(name: "block.1")
        conv 1x1, c, name: "block.2.0"; bn name: "block.2.1"
    }
}
"""
    + NET
)


def test_a_named_call_is_a_position_of_the_container(tmp_path: Path) -> None:
    """The gate's class sits at `block.1` (its keys `layer1.0.block.1.conv1.*`), between the
    container's other positions, and the next conv reads its width; a name repeats in the two branches of an `if`
    inside a container filled before it."""
    torch = pytest.importorskip("torch")
    from resdsl.backends.pytorch.codegen import render_model
    from resdsl.backends.pytorch.verify import load_module

    (tmp_path / "ok.rd").write_text(NAMED)
    ir = load_network(tmp_path / "ok.rd")
    source = render_model(ir, "ok.rd")
    assert "(block_1 := GBlock(" in source
    model = load_module(source).build_model()
    keys = [k for k in model.state_dict() if k.startswith("layer1.0.")]
    assert keys[:2] == ["layer1.0.block.0.0.weight", "layer1.0.block.0.1.weight"]
    assert "layer1.0.block.1.conv1.weight" in keys and keys[-1] == "layer1.0.block.2.1.num_batches_tracked"
    assert sum(p.numel() for p in model.parameters()) == ir.totals.params
    assert model(torch.zeros(1, 3, 8, 8)).shape == (1, 2)


def test_a_block_with_a_parameter_called_name_gets_it(tmp_path: Path) -> None:
    """`name` stays an argument where the block used has a parameter of that name."""
    spec = "block g(name = 2) { conv 1x1, in.channels * name; bn }\nblock b(c) { g(name: 1) }\n" + NET
    (tmp_path / "ok.rd").write_text(spec)
    assert load_network(tmp_path / "ok.rd").totals.params == 108 + 8 + 16 + 8 + 10  # g's conv: 4 -> 4 channels
