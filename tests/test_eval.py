"""`resdsl eval`: centre crop, 10-crop and multi-scale testing against direct references, top-k errors,
eval.json, and --weights (a state_dict through the spec's generated model) with its errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from resdsl.cli.main import main
from resdsl.train.checkpoints import import_model

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def run_cli(*args) -> object:
    result = CliRunner().invoke(main, [*map(str, args)])
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


@pytest.fixture(scope="module")
def trained(image_folder: Path, tmp_path_factory) -> tuple[Path, Path]:
    """(spec, run directory) of a short training of the reduced-input ResNet of tests/test_imagenet.py."""
    import torch
    from test_imagenet import TINY

    root = tmp_path_factory.mktemp("eval")
    spec = root / "tiny.rd"
    spec.write_text(TINY)
    out = root / "run"
    torch.set_num_threads(1)
    result = run_cli("train", spec, "--data", image_folder, "--workers", "0", "--iterations", "40", "--out", out)
    assert result.exit_code == 0, result.output
    return spec, out


def _model(run: Path):
    import torch

    model = import_model(run / "model.py").build_model()
    ckpt = torch.load(run / "checkpoint.pt", map_location="cpu", weights_only=True)
    model.load_state_dict(ckpt["trainer"]["model"])
    return model.eval(), ckpt["normalize"]["mean"], ckpt["normalize"]["std"]


def test_ten_crop_is_four_corners_and_the_centre_then_flipped() -> None:
    import torch

    from resdsl.train import imagefolder

    image = torch.arange(3 * 7 * 9, dtype=torch.uint8).reshape(3, 7, 9)
    crops = imagefolder.ten_crop(image, 4)
    reference = [image[:, :4, :4], image[:, :4, 5:], image[:, 3:, :4], image[:, 3:, 5:], image[:, 1:5, 2:6]]
    reference += [c.flip(-1) for c in reference]
    assert torch.equal(crops, torch.stack(reference))


def test_top_k_errors_against_a_direct_count() -> None:
    import torch

    from resdsl.train import evaluate

    g = torch.Generator().manual_seed(0)
    scores = torch.rand(200, 10, generator=g)
    labels = torch.randint(0, 10, (200,), generator=g)
    wrong1, wrong5 = evaluate.wrong_counts(scores, labels, 5)
    order = [sorted(range(10), key=lambda c: -float(row[c])) for row in scores]
    assert wrong1 == sum(o[0] != int(y) for o, y in zip(order, labels))
    assert wrong5 == sum(int(y) not in o[:5] for o, y in zip(order, labels))
    assert 0 < wrong5 < wrong1


def test_center_crop_eval_equals_the_training_runs_test_error(trained) -> None:
    spec, run = trained
    result = run_cli("eval", run, "--workers", "0")
    assert result.exit_code == 0, result.output
    summary = json.loads((run / "summary.json").read_text())
    saved = json.loads((run / "eval.json").read_text())["center crop"]
    assert saved["top1_error"] == pytest.approx(summary["final_test_error"])
    assert (saved["images"], saved["resize"], saved["crop"]) == (16, 55, 48)
    assert saved["top4_error"] == 0.0  # 4 classes: the label is always among the top 4
    lines = result.stdout.splitlines()
    assert lines[0] == f"tiny_resnet on {saved['data']} (16 images; shorter side 55, 48x48)"
    assert lines[1].split() == ["mode", "top-1", "error", "top-4", "error"]
    assert lines[2].split()[:2] == ["center", "crop"]
    assert lines[2].split()[2] == f"{100 * saved['top1_error']:.2f}%"


def test_a_run_whose_spec_was_edited_is_refused(trained, image_folder: Path, tmp_path: Path) -> None:
    """The spec a run records is checked against the network it trained: the checkpoint's fingerprint, or
    recipe.json's when other --weights are evaluated."""
    spec, run = trained
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    (copy / "eval.json").unlink(missing_ok=True)  # written by the tests before
    edited = tmp_path / "edited.rd"
    edited.write_text(spec.read_text().replace("basic(16) * 1", "basic(16) * 2"))
    recipe = json.loads((copy / "recipe.json").read_text())
    (copy / "recipe.json").write_text(json.dumps({**recipe, "spec": str(edited)}))
    result = CliRunner().invoke(main, ["eval", str(copy), "--data", str(image_folder), "--workers", "0"])
    assert (result.exit_code, result.stderr) == (
        1,
        f"error: {edited} no longer describes the network trained in {copy}: stage conv2 has 2 blocks here, "
        "1 in the run (the run: tiny_resnet, 6 layers, 19,796 params; here: tiny_resnet, 8 layers, 24,468 params)\n"
        "  hint: put back the spec the run was trained with, or train the edited network as a new run\n",
    )
    assert result.exception is None or isinstance(result.exception, SystemExit)  # no traceback
    args = ["eval", str(copy / "checkpoint.pt"), "--weights", str(run / "checkpoint.pt"), "--data", str(image_folder)]
    result = CliRunner().invoke(main, args)
    assert (result.exit_code, result.stderr) == (
        1,
        f"error: {edited} no longer describes the network trained in {copy}: another network fingerprint "
        "(the run: tiny_resnet, 6 layers, 19,796 params; here: tiny_resnet, 8 layers, 24,468 params)\n"
        "  hint: put back the spec the run was trained with, or train the edited network as a new run\n",
    )
    assert not (copy / "eval.json").exists()


def test_ten_crop_and_multi_scale_scores_against_a_direct_reference(trained, image_folder: Path) -> None:
    import torch

    from resdsl.train import evaluate, imagefolder

    spec, run = trained
    model, mean, std = _model(run)
    val = imagefolder.scan(image_folder / "val")
    for path in val.paths[::5]:
        image = imagefolder.decode(path)
        resized = imagefolder.resize_shorter(image, 55)
        crops = imagefolder.ten_crop(resized, 48)
        ours = evaluate._scores(model, crops[None], "ten", mean, std, "cpu", "tiny")
        with torch.no_grad():
            each = [torch.softmax(model(((c.float() / 255 - mean) / std)[None]), 1) for c in crops]
        assert torch.allclose(ours, torch.stack(each).mean(0), atol=1e-5)

        scales = (48, 64, 80)
        images = [imagefolder.resize_shorter(image, s).contiguous() for s in scales]
        ours = evaluate._scores(model, images, "scales", mean, std, "cpu", "tiny")
        channel_mean, channel_std = mean.mean((1, 2))[:, None, None], std.mean((1, 2))[:, None, None]
        reference = []
        for s in scales:  # Pillow's resize, then the whole image through the network
            h, w = image.shape[1:]
            th, tw = (s, int(s * w / h)) if h <= w else (int(s * h / w), s)
            array = np.asarray(Image.fromarray(image.permute(1, 2, 0).numpy()).resize((tw, th), Image.BILINEAR))
            x = torch.from_numpy(array.copy()).permute(2, 0, 1).float() / 255
            with torch.no_grad():
                reference.append(torch.softmax(model(((x - channel_mean) / channel_std)[None]), 1))
        assert torch.allclose(ours, torch.stack(reference).mean(0), atol=2e-2)  # resizers differ by a level


def test_ten_crop_and_multi_scale_from_the_command_line(trained) -> None:
    spec, run = trained
    assert run_cli("eval", run / "checkpoint.pt", "--crops", "10", "--workers", "0").exit_code == 0
    assert run_cli("eval", run, "--scales", "48,64,80", "--workers", "0").exit_code == 0
    saved = json.loads((run / "eval.json").read_text())
    assert {"10-crop", "multi-scale 48,64,80"} <= set(saved)
    assert saved["multi-scale 48,64,80"]["scales"] == [48, 64, 80]
    for result in saved.values():
        assert result["top1_error"] <= 0.5  # 4 classes: chance is 75% error
    both = run_cli("eval", run, "--crops", "10", "--scales", "224")
    assert (both.exit_code, both.stderr) == (
        2,
        "error: --crops and --scales are two testing modes: multi-scale testing uses whole images\n",
    )
    bad = run_cli("eval", run, "--scales", "224,big")
    assert (
        bad.stderr == "error: --scales 224,big: use sizes of the shorter side separated by commas, e.g. 224,256,384\n"
    )


def test_weights_through_the_specs_generated_model(trained, image_folder: Path, tmp_path: Path) -> None:
    import torch

    spec, run = trained
    model, _, _ = _model(run)
    weights = tmp_path / "weights.pth"
    torch.save(model.state_dict(), weights)
    assert run_cli("eval", run, "--workers", "0").exit_code == 0
    center = json.loads((run / "eval.json").read_text())["center crop"]
    result = run_cli("eval", spec, "--weights", weights, "--data", image_folder, "--workers", "0")
    assert result.exit_code == 0, result.output
    # the per-pixel mean is computed again from train/, with the run's seed: the same error
    assert result.stdout.splitlines()[2].split()[2] == f"{100 * center['top1_error']:.2f}%"

    state = model.state_dict()
    broken = {k: v for k, v in state.items() if k != "fc.bias"}
    broken["head.extra.weight"] = torch.zeros(1)
    broken["fc.weight"] = torch.zeros(10, 32)
    torch.save(broken, weights)
    result = run_cli("eval", spec, "--weights", weights, "--data", image_folder, "--workers", "0")
    assert result.exit_code == 1
    assert result.stderr == (
        f"error: {weights} does not fit the generated model: 1 missing key, 1 unexpected, 1 shape mismatch\n"
        "  missing: fc.bias\n"
        "  unexpected: head.extra.weight\n"
        "  shape: fc.weight is [10, 32] in the file, [4, 32] in the model\n"
    )
    result = run_cli("eval", spec, "--data", image_folder)
    assert (result.exit_code, result.stderr) == (
        2,
        f"error: {spec} is a spec: evaluate it with --weights FILE (a state_dict), or pass a run\n",
    )
    (tmp_path / "junk.pth").write_bytes(b"not a torch file")
    result = run_cli("eval", spec, "--weights", tmp_path / "junk.pth", "--data", image_folder)
    assert result.exit_code == 1
    assert result.stderr.startswith(f"error: cannot read --weights {tmp_path}/junk.pth: not a torch state_dict file (")
