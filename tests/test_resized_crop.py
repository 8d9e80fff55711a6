"""torchvision's RandomResizedCrop recipe (`augment area: [0.08, 1], ratio: [3/4, 4/3]`): the box sampling against
a reference written from torchvision's rule on fixed seeds, the crop + resize + flip against Pillow, the
recipe's syntax and errors, and a short training run on a folder of real photographs (tests/conftest.py)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from resdsl.cli.main import main
from resdsl.diagnostics import SpecError
from resdsl.ir.pipeline import load_network

if TYPE_CHECKING:
    import torch

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py
ROOT = Path(__file__).resolve().parent.parent
TORCHVISION = {"area_min": 0.08, "area_max": 1.0, "ratio_min": 3 / 4, "ratio_max": 4 / 3, "flip": True}

TINY = """\
import "std.rd"

network tiny_resnet {
    input 3x48x48
    classes 4
    stem { conv 3x3, 16, stride: 2; bn; relu }
    stage conv2 = basic(16) * 1
    head { avgpool global; fc classes }
}

train {
    dataset imagenet
    batch 16
    AUGMENT
    normalize torchvision
    iterations 3
    eval_every 3
}
"""


def reference_box(height: int, width: int, scale, ratio, gen: torch.Generator):
    """torchvision.transforms.RandomResizedCrop.get_params, rewritten from torchvision's source with `gen`
    in place of torch's global generator."""
    import torch

    area = height * width
    log_ratio = torch.log(torch.tensor(ratio))
    for _ in range(10):
        target_area = area * torch.empty(1).uniform_(scale[0], scale[1], generator=gen).item()
        aspect_ratio = torch.exp(torch.empty(1).uniform_(log_ratio[0], log_ratio[1], generator=gen)).item()
        w = int(round(math.sqrt(target_area * aspect_ratio)))
        h = int(round(math.sqrt(target_area / aspect_ratio)))
        if 0 < w <= width and 0 < h <= height:
            i = torch.randint(0, height - h + 1, size=(1,), generator=gen).item()
            j = torch.randint(0, width - w + 1, size=(1,), generator=gen).item()
            return i, j, h, w
    in_ratio = float(width) / float(height)
    if in_ratio < min(ratio):
        w = width
        h = int(round(w / min(ratio)))
    elif in_ratio > max(ratio):
        h = height
        w = int(round(h * max(ratio)))
    else:
        w = width
        h = height
    return (height - h) // 2, (width - w) // 2, h, w


@pytest.mark.parametrize(
    "size,scale,ratio",
    [
        ((375, 500), (0.08, 1.0), (3 / 4, 4 / 3)),
        ((500, 333), (0.08, 1.0), (3 / 4, 4 / 3)),
        ((64, 64), (0.5, 1.0), (0.5, 2.0)),
        ((20, 600), (0.08, 1.0), (3 / 4, 4 / 3)),  # too wide for most tries: the fallback's centre crop
        ((600, 20), (0.9, 1.0), (3 / 4, 4 / 3)),  # too tall for every try
        ((100, 120), (1.0, 1.0), (1.2, 1.2)),  # exactly the image's ratio and area
    ],
)
def test_box_sampling_matches_torchvisions_rule(size, scale, ratio) -> None:
    import torch

    from resdsl.train import imagefolder

    fallbacks = 0
    for seed in range(300):
        ours = imagefolder.resized_crop_box(*size, scale, ratio, torch.Generator().manual_seed(seed))
        theirs = reference_box(*size, scale, ratio, torch.Generator().manual_seed(seed))
        assert ours == theirs, seed
        top, left, h, w = ours
        assert 0 <= top and top + h <= size[0] and 0 <= left and left + w <= size[1] and h > 0 and w > 0
        fallbacks += (top, left) == ((size[0] - h) // 2, (size[1] - w) // 2)
    if size == (600, 20):
        assert fallbacks == 300  # the centre crop of the ratio clamped to 3/4: 20 wide, 27 tall
        assert ours == (286, 0, 27, 20)


def test_box_areas_and_ratios_follow_the_distribution() -> None:
    """On a 400x400 image every try fits when the box is at most the image: area fractions uniform in
    [0.08, 1] (mean 0.54) and log aspect ratios uniform in [log 3/4, log 4/3] (mean 0), before the rejections."""
    import torch

    from resdsl.train import imagefolder

    boxes = [
        imagefolder.resized_crop_box(400, 400, (0.08, 0.5), (3 / 4, 4 / 3), torch.Generator().manual_seed(s))
        for s in range(2000)
    ]
    areas = np.array([h * w / 160000 for _, _, h, w in boxes])
    logs = np.array([math.log(w / h) for _, _, h, w in boxes])
    assert areas.min() > 0.07 and areas.max() < 0.52 and abs(areas.mean() - 0.29) < 0.01
    assert logs.min() > math.log(3 / 4) - 0.02 and logs.max() < math.log(4 / 3) + 0.02 and abs(logs.mean()) < 0.01


def test_resized_crop_and_flip_match_pillow(image_folder: Path) -> None:
    """The worker's uint8 path (box, antialiased bilinear resize on channels-last, flip) against Pillow's crop
    then resize, which is what torchvision's F.resized_crop does to a PIL image, on the same drawn box."""
    import torch

    from resdsl.train import imagefolder

    train, _ = imagefolder.scan_imagenet(image_folder, 4)
    params = imagefolder.draw_params(16, TORCHVISION, 48, torch.Generator().manual_seed(5))
    assert len(set(params[:, 7].tolist())) == 16 and 3 < int(params[:, 3].sum()) < 13
    for path, p in zip(train.paths[::3], params):
        image = imagefolder.decode(path)
        ours = imagefolder.augment_image(image, p, 48, TORCHVISION)
        gen = torch.Generator().manual_seed(int(p[7]))
        top, left, h, w = reference_box(*image.shape[1:], (0.08, 1.0), (3 / 4, 4 / 3), gen)
        pil = Image.fromarray(image.permute(1, 2, 0).numpy())
        theirs = np.asarray(pil.crop((left, top, left + w, top + h)).resize((48, 48), Image.Resampling.BILINEAR))
        if p[3]:
            theirs = theirs[:, ::-1]
        diff = np.abs(ours.permute(1, 2, 0).numpy().astype(int) - theirs.astype(int))
        assert tuple(ours.shape) == (3, 48, 48) and diff.max() <= 3 and diff.mean() < 0.5


def test_the_paper_recipe_draws_are_unchanged_by_the_seed_column() -> None:
    """The box seed is drawn after everything else: the scale recipe's draws are what they were."""
    import torch

    from resdsl.train import imagefolder

    paper = {"scale_min": 48, "scale_max": 72, "flip": True, "lighting": 0.1}
    a = imagefolder.draw_params(8, paper, 48, torch.Generator().manual_seed(1))
    b = imagefolder.draw_params(8, {**paper, **TORCHVISION}, 48, torch.Generator().manual_seed(1))
    assert torch.equal(a[:, :7], b[:, :7]) and not a[:, 7].any() and b[:, 7].all()


def spec_with(tmp_path: Path, augment: str) -> Path:
    spec = tmp_path / "tiny.rd"
    spec.write_text(TINY.replace("AUGMENT", augment))
    return spec


def test_recipe_syntax_and_errors(tmp_path: Path) -> None:
    ir = load_network(spec_with(tmp_path, "augment area: [0.08, 1], ratio: [3/4, 4/3], crop: 48, flip: true"), {})
    r = ir.recipe
    assert (r.area_min, r.area_max, r.ratio_min, r.ratio_max, r.crop, r.flip) == (0.08, 1.0, 0.75, 4 / 3, 48, True)
    r = load_network(spec_with(tmp_path, "augment area: [0.25, 1], flip: true"), {}).recipe
    assert (r.area_min, r.ratio_min, r.ratio_max) == (0.25, 0.75, 4 / 3)  # torchvision's ratios by default
    bad = {
        "augment area: [0, 1]": "`area` must be [min, max], fractions of the image's area, 0 < min <= max <= 1, "
        "got [0, 1]",
        "augment area: [0.5, 1.5]": "`area` must be [min, max], fractions of the image's area, 0 < min <= max <= 1, "
        "got [0.5, 1.5]",
        "augment area: [0.1, 1], ratio: [2, 1]": "`ratio` must be [min, max], aspect ratios w/h, 0 < min <= max, "
        "got [2, 1]",
        "augment area: [0.1, 1], scale: [48, 64]": "`augment` takes `scale` (the paper's) or `area` "
        "(RandomResizedCrop's), not both",
    }
    for augment, message in bad.items():
        with pytest.raises(SpecError) as err:
            load_network(spec_with(tmp_path, augment), {})
        assert message in str(err.value), str(err.value)


def run_cli(*args):
    result = CliRunner().invoke(main, [*map(str, args)])
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def test_trains_with_the_torchvision_recipe_and_refuses_mixed_ones(tmp_path: Path, image_folder: Path) -> None:
    spec = spec_with(tmp_path, "augment area: [0.08, 1], crop: 48, flip: true")
    out = tmp_path / "run"
    r = run_cli("train", spec, "--data", image_folder, "--workers", 1, "--out", out)
    assert r.exit_code == 0, r.output
    assert (out / "summary.json").exists()
    r = run_cli("train", spec, "--data", image_folder, "--set", "scale_min=48", "--set", "scale_max=64")
    assert r.exit_code == 1
    assert r.stderr == (
        "error: the recipe has both scale [48, 64] and area [0.08, 1]: the paper's scale augmentation or "
        "RandomResizedCrop, not both (--set scale_min=0 --set scale_max=0, or --set area_min=0)\n"
    )
    r = run_cli("train", ROOT / "specs" / "cifar20.rd", "--dataset", "digits", "--set", "area_min=0.08")
    assert r.exit_code == 1
    assert r.stderr == (
        "error: the recipe's `augment area` (RandomResizedCrop) is for image folders (--dataset imagenet), "
        "not digits: use --set area_min=0\n"
    )
