"""resdsl responses (the ResNet paper's Fig. 7) and resdsl maps (NIN's class confidence maps) on tiny nets
trained for a few iterations on scikit-learn's digits (offline). The responses are checked against a direct
computation written here: every module hooked, each 3x3 conv paired with the BN that receives its output
tensor, the std taken over the whole test set at once."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from resdsl.cli.main import main
from resdsl.experiments import maps, responses
from resdsl.experiments.trained import held_out, open_run
from resdsl.train.checkpoints import import_model
from resdsl.train.plan import Options
from resdsl.train.session import run as train_run

TINY = """import "std.rd"

network tiny {
    input 3x8x8
    classes 10
    shortcut A

    stem { conv 3x3, 8; bn; relu }
    stage a = basic(8) * 2
    stage b = basic(16, stride: 2, shortcut: none)
    head { avgpool global; fc classes }
}
"""

TINY_NIN = """import "std.rd"

network tinynin {
    input 3x8x8
    classes 10
    shortcut none

    stage m1 = mlpconv(3, 16, 16, 16)
    stage m2 = mlpconv(3, 16, 16, classes)
    head { avgpool global }
}
"""

RECIPE = ("flip=false", "pad=0", "crop=8")


def _train(root: Path, name: str, text: str, sets: tuple[str, ...] = ()) -> Path:
    spec = root / f"{name}.rd"
    spec.write_text(text)
    out = root / name
    opts = Options(
        out=out, dataset="digits", quiet=True, recipe_overrides={"iterations": 12, "batch": 32, "eval_every": 12}
    )
    train_run(spec, RECIPE + sets, opts)
    return out


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        root = tmp_path_factory.mktemp("runs")
        return {
            "mixed": _train(root, "mixed", TINY),  # residual stage a, plain stage b
            "plain": _train(root, "plain", TINY, ("shortcut=none",)),
            "nin": _train(root, "nin", TINY_NIN),
        }
    finally:
        torch.set_num_threads(threads)


pytestmark = pytest.mark.usefixtures("one_thread")


def cli(*args) -> object:
    return CliRunner().invoke(main, [*map(str, args)])


# ---------------------------------------------------------------------------------------- responses


def direct_stds(run_dir: Path) -> list[float]:
    """Independently of resdsl's IR: the run's model.py and checkpoint, every 3x3 Conv2d and BatchNorm2d hooked,
    a BN paired with the conv whose output tensor it receives (else the conv itself is the response), the
    population std per channel over the whole test set in one pass, averaged over channels."""
    import torch

    from resdsl.train.data import digits

    state = torch.load(run_dir / "checkpoint.pt", map_location="cpu", weights_only=True)
    model = import_model(run_dir / "model.py").build_model()
    model.load_state_dict(state["trainer"]["model"])
    model.eval()
    x = digits((3, 8, 8))["x_test"].float() / 255.0
    x = (x - state["normalize"]["mean"]) / state["normalize"]["std"]
    calls: list[tuple[torch.nn.Module, torch.Tensor, torch.Tensor, torch.Tensor]] = []
    hooks = [  # the output itself (to pair tensors) and a copy (an in-place ReLU changes it afterwards)
        m.register_forward_hook(lambda m, i, o: calls.append((m, i[0], o, o.clone())))
        for m in model.modules()
        if isinstance(m, torch.nn.BatchNorm2d) or (isinstance(m, torch.nn.Conv2d) and m.kernel_size == (3, 3))
    ]
    with torch.no_grad():
        model(x)
    for h in hooks:
        h.remove()
    out = []
    for k, (m, _, o, value) in enumerate(calls):
        if isinstance(m, torch.nn.Conv2d):
            after = (bv for bm, bi, _, bv in calls[k + 1 :] if isinstance(bm, torch.nn.BatchNorm2d) and bi is o)
            y = next(after, value)
            out.append(float(y.double().transpose(0, 1).flatten(1).std(dim=1, unbiased=False).mean()))
    return out


@pytest.mark.parametrize("which", ["mixed", "plain", "nin"])
def test_responses_equal_a_direct_computation(runs, which: str) -> None:
    [result] = responses.responses([runs[which]], batch=100)  # 360 test images: 4 batches merged
    want = direct_stds(runs[which])
    assert result.images == 360
    assert len(result.stds) == len(want) == {"mixed": 7, "plain": 7, "nin": 2}[which]
    assert result.stds == pytest.approx(want, rel=1e-5)
    assert len(set(result.stds)) == len(result.stds)  # trained weights: no two layers alike


def test_layers_come_from_the_ir(runs) -> None:
    [result] = responses.responses([runs["mixed"]])
    got = [(r.layer.where, r.module, r.layer.after, r.layer.shape) for r in result.layers]
    assert got == [
        ("stem", "bn1", "bn", (8, 8, 8)),
        ("a block 1", "layer1.0.bn1", "bn", (8, 8, 8)),
        ("a block 1", "layer1.0.bn2", "bn", (8, 8, 8)),
        ("a block 2", "layer1.1.bn1", "bn", (8, 8, 8)),
        ("a block 2", "layer1.1.bn2", "bn", (8, 8, 8)),
        ("b block 1", "layer2.0.bn1", "bn", (16, 4, 4)),
        ("b block 1", "layer2.0.bn2", "bn", (16, 4, 4)),
    ]
    [nin] = responses.responses([runs["nin"]])
    assert [(r.module, r.layer.after) for r in nin.layers] == [("layer1.0.conv1", "conv"), ("layer2.0.conv1", "conv")]


def test_json_table_and_figure(runs, tmp_path: Path) -> None:
    png = tmp_path / "fig7.png"
    r = cli("responses", runs["mixed"], runs["plain"], "--json", "-o", png)
    assert r.exit_code == 0, r.output
    payload = json.loads(r.output)
    assert [run["label"] for run in payload["runs"]] == [
        "mixed (tiny)",
        "plain (tiny shortcut=none)",
    ]
    for run in payload["runs"]:
        stds = [layer["std"] for layer in run["layers"]]
        assert run["sorted"] == sorted(stds, reverse=True) and run["sorted"] != stds
        assert [layer["index"] for layer in run["layers"]] == list(range(1, 8))
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    results = responses.responses([runs["mixed"], runs["plain"]])
    fig = responses.figure(results)
    top, bottom = fig.axes
    for k, result in enumerate(results):  # top: network order; bottom: sorted by magnitude, descending
        assert list(top.lines[k].get_ydata()) == result.stds
        assert list(bottom.lines[k].get_ydata()) == sorted(result.stds, reverse=True)
        assert list(bottom.lines[k].get_xdata()) == list(range(1, 8))

    text = cli("responses", runs["mixed"]).output
    assert text.splitlines()[0] == "mixed (tiny): 7 3x3 layers, digits test set (360 images)"
    assert "    6  b block 1  layer2.0.bn1  bn     " in text


def test_a_run_without_a_checkpoint_is_refused(runs, tmp_path: Path) -> None:
    stopped = tmp_path / "stopped"
    stopped.mkdir()
    shutil.copy(runs["mixed"] / "recipe.json", stopped / "recipe.json")
    r = cli("responses", stopped)
    assert r.exit_code == 1
    assert r.output == (
        f"error: {stopped} has no checkpoint.pt: the run stopped before its first checkpoint; "
        f"train it (resdsl train --resume {stopped}) before analysing it\n"
    )
    r = cli("responses", tmp_path)
    assert r.exit_code == 1
    assert r.output == f"error: {tmp_path} is not a resdsl run directory (no recipe.json)\n"


def test_an_edited_spec_is_refused(runs, tmp_path: Path) -> None:
    copy = tmp_path / "mixed"
    shutil.copytree(runs["mixed"], copy)
    recipe = json.loads((copy / "recipe.json").read_text())
    spec = tmp_path / "changed.rd"
    spec.write_text(TINY.replace("basic(8) * 2", "basic(8) * 3"))
    (copy / "recipe.json").write_text(json.dumps({**recipe, "spec": str(spec)}))
    expected = (
        f"error: {spec} no longer describes the network trained in {copy}: stage a has 3 blocks here, 2 in the run "
        "(the run: tiny, 8 layers, 6,290 params; here: tiny, 10 layers, 7,474 params)\n"
        "  hint: put back the spec the run was trained with, or train the edited network as a new run\n"
    )
    for command in (["responses", copy], ["maps", copy, "--images", 2]):
        r = cli(*command)
        assert (r.exit_code, r.output) == (1, expected), command
        assert r.exception is None or isinstance(r.exception, SystemExit)  # an error message, not a traceback


# ---------------------------------------------------------------------------------------- maps


def test_maps_figure_has_the_image_and_a_map_per_class(runs, tmp_path: Path) -> None:
    import torch

    run = open_run(runs["nin"])
    x, y = held_out(run)
    result = maps.compute(run, x, y, 3)
    assert tuple(result.maps.shape) == (3, 10, 8, 8)
    # The network's scores are the maps' means (global average pooling): the maps are the right tensor.
    with torch.no_grad():
        logits = run.model((x[:3].float() / 255.0 - run.mean) / run.std)
    assert torch.allclose(result.maps.mean((2, 3)), logits, atol=1e-5)
    assert result.predicted.tolist() == logits.argmax(1).tolist()
    fig = maps.figure(result)
    assert len(fig.axes) == 3 * 11
    assert fig.axes[0].get_images()[0].get_array().shape == (8, 8, 3)  # the image
    assert fig.axes[1].get_images()[0].get_array().shape == (8, 8)  # class 0's map

    png = tmp_path / "maps.png"
    r = cli("maps", runs["nin"], "--images", 2, "-o", png)
    assert r.exit_code == 0, r.output
    assert r.output.startswith(f"wrote {png}: 2 images x 10 class maps (")
    from PIL import Image

    with Image.open(png) as image:  # figsize (1.15 * 11, 1.3 * 2 + 0.5) inches at 120 dpi
        assert image.size == (round(1.15 * 11 * 120), round((1.3 * 2 + 0.5) * 120))


def test_maps_needs_a_class_map_head(runs) -> None:
    r = cli("maps", runs["mixed"], "--images", 2)
    assert r.exit_code == 1
    assert r.output == (
        "error: tiny's global average pool takes 16 channels and is followed by 1 layer with weights (fc): "
        "maps needs a network whose head is global average pooling over one feature map per class "
        "(as NIN's: the last conv makes `classes` channels, then `avgpool global`)\n"
    )
    r = cli("maps", runs["nin"], "--images", 361)
    assert r.output == "error: --images 361: the test set has 360 images\n"
