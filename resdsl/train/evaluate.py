"""`resdsl eval`: top-1 and top-5 error of a trained network on an ImageNet-layout val/ folder, as the paper
tested: a single centre crop (shorter side 256, crop 224), the standard 10-crop (four corners and the centre,
and their flips), or fully-convolutional multi-scale testing (the whole image at each shorter side, scores
averaged over scales). Softmax scores are averaged over the crops or scales.

What is evaluated: a run directory (its model.py and checkpoint.pt, its spec, --set values and data), a
checkpoint.pt inside one, or a spec with --weights FILE (a state_dict, e.g. torchvision's published weights)
run through the spec's generated model.
"""

from __future__ import annotations

import json
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from resdsl.backends.pytorch.weights import load_weights
from resdsl.diagnostics import InputError, UsageError
from resdsl.files import shown
from resdsl.train import rundir
from resdsl.train.checkpoints import import_model, torch_load
from resdsl.train.trained import TrainedRun

EVAL_FILE = "eval.json"
PAPER_SCALES = (224, 256, 384, 480, 640)


@dataclass
class EvalOptions:
    target: Path  # a run directory, its checkpoint.pt, or a spec (with weights)
    data: Path | None = None
    crops: str | None = None  # center | 10
    scales: tuple[int, ...] = ()
    weights: Path | None = None
    sets: tuple[str, ...] = ()
    batch: int = 100
    device: str | None = None
    workers: int | None = None
    threads: int | None = None  # torch threads (default: threads.decide)
    limit: int | None = None  # evaluate only the first N images of each class (quick checks)
    quiet: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


def parse_scales(text: str | None) -> tuple[int, ...]:
    """`224,256,384` -> (224, 256, 384); `paper` is the paper's five scales. UsageError for anything else."""
    if not text:
        return ()
    if text == "paper":
        return PAPER_SCALES
    try:
        scales = tuple(int(s) for s in text.split(","))
    except ValueError:
        raise UsageError(
            f"--scales {text}: use sizes of the shorter side separated by commas, e.g. 224,256,384"
        ) from None
    if any(s < 1 for s in scales):
        raise UsageError(f"--scales {text}: sizes must be positive")
    return scales


def mode_name(crops: str, scales: tuple[int, ...]) -> str:
    if scales:
        return "multi-scale " + ",".join(map(str, scales))
    return "10-crop" if crops == "10" else "center crop"


# ---------------------------------------------------------------------------------------- what to evaluate


@dataclass
class Target:
    ir: Any
    run: TrainedRun | None  # the run (its model.py is built); None: a spec, whose generated model is built
    state: dict[str, Any]  # the state_dict to load
    normalize: dict[str, Any] | None  # {"mean", "std"} from the checkpoint; None: from the recipe
    data: Path | None
    source: str  # where the weights come from, for messages

    @property
    def run_dir(self) -> Path | None:
        return self.run.path if self.run is not None else None


def resolve(opts: EvalOptions) -> Target:
    """What `opts.target` names, opened: a spec (with --weights), or a run through `trained.open_trained`."""
    from resdsl.ir.pipeline import load_network
    from resdsl.lang.overrides import parse_sets
    from resdsl.train.trained import open_trained

    target = Path(opts.target)
    if target.suffix == ".rd":
        if opts.weights is None:
            raise UsageError(f"{target} is a spec: evaluate it with --weights FILE (a state_dict), or pass a run")
        ir = load_network(target, dict(parse_sets(opts.sets)))
        return Target(ir, None, _read_weights(opts.weights), None, opts.data, str(opts.weights))
    if opts.sets:
        raise UsageError(
            "--set applies to a spec; a run is evaluated with the spec and --set values it was trained with"
        )
    run = open_trained(target, with_checkpoint=opts.weights is None, doing="evaluating it")
    recipe = run.recipe
    data = opts.data or (Path(recipe["data"]) if recipe.get("data") and recipe.get("dataset") == "imagenet" else None)
    if opts.weights is not None:
        return Target(run.ir, run, _read_weights(opts.weights), None, data, str(opts.weights))
    return Target(run.ir, run, run.state["trainer"]["model"], run.normalize, data, str(run.checkpoint))


def _read_weights(path: Path) -> dict[str, Any]:
    path = Path(path)
    if path.is_dir():
        raise InputError(f"--weights {path} is a directory, not a weights file")
    if not path.exists():
        raise InputError(f"--weights {path}: no such file")
    state = torch_load(path, f"cannot read --weights {path}: not a torch state_dict file")
    if isinstance(state, dict) and isinstance(state.get("trainer"), dict) and "model" in state["trainer"]:
        state = state["trainer"]["model"]  # a resdsl checkpoint
    if not isinstance(state, dict) or not all(isinstance(k, str) for k in state):
        raise InputError(f"--weights {path} holds no state_dict (a dict of parameter names to tensors)")
    return state


# ---------------------------------------------------------------------------------------- the evaluation


def evaluate(opts: EvalOptions) -> dict[str, Any]:
    """Evaluate, print the table, write RUN/eval.json; returns the result."""
    if opts.scales and opts.crops:
        raise UsageError("--crops and --scales are two testing modes: multi-scale testing uses whole images")
    crops = opts.crops or "center"
    from resdsl.train import threads as policy

    choice = policy.decide(opts.threads, loader=True, workers=opts.workers)
    policy.export_env(choice)  # before torch is imported, or it cannot act
    target = resolve(opts)
    import torch

    from resdsl.train import data as datasets
    from resdsl.train import imagefolder
    from resdsl.train.datafiles import DataError
    from resdsl.train.dist import Dist, pick_device

    ir = target.ir
    _, h, w = ir.input_shape
    if h != w:
        raise InputError(f"resdsl eval crops square images but {ir.name} takes {h}x{w} images")
    root = datasets.imagenet_dir(target.data)
    try:
        val = imagefolder.scan(root / "val")
        if len(val.classes) != ir.classes:
            raise DataError(f"{val.root} has {len(val.classes)} class folders but the network has {ir.classes} classes")
        if opts.limit:
            val = _first_of_each_class(val, opts.limit)
        mean, std = _normalizer(target, ir, root, h)
    except DataError as err:
        raise InputError(f"{err}; {getattr(err, 'hint', None) or imagefolder.LAYOUT}") from None

    device = pick_device(opts.device, Dist())
    model = _build(target, ir).to(device).eval()
    mean, std = mean.to(device), std.to(device)
    mode = "scales" if opts.scales else "ten" if crops == "10" else "center"
    dataset = imagefolder.TestImages(val, mode, h, opts.scales)
    loader = imagefolder.loader(dataset, 1 if mode == "scales" else opts.batch, choice.workers, device.type == "cuda")
    k = min(5, ir.classes)
    wrong1 = wrong5 = seen = 0
    if not opts.quiet:
        print(choice.line(), file=sys.stderr, flush=True)
    threads_before = policy.apply(choice)
    try:
        with torch.no_grad():
            for batch in imagefolder.items(loader, "validation"):
                x, y = imagefolder.checked(batch)
                scores = _scores(model, x, mode, mean, std, device, ir.name)
                y = torch.as_tensor(y, device=device).reshape(-1)
                w1, wk = wrong_counts(scores, y, k)
                wrong1, wrong5, seen = wrong1 + w1, wrong5 + wk, seen + int(y.shape[0])
    except DataError as err:
        raise InputError(f"{err}; {getattr(err, 'hint', None) or imagefolder.LAYOUT}") from None
    finally:
        torch.set_num_threads(threads_before)
    result = {
        "mode": mode_name(crops, opts.scales),
        "images": seen,
        "top1_error": wrong1 / seen,
        f"top{k}_error": wrong5 / seen,
        "weights": target.source,
        "data": str(val.root),
        "resize": imagefolder.test_size(h) if mode != "scales" else None,
        "crop": h if mode != "scales" else None,
        "scales": list(opts.scales) or None,
        "threads": choice.to_json(),
    }
    if target.run_dir is not None and opts.weights is None:
        results = rundir.read_json(target.run_dir / EVAL_FILE) or {}
        results[result["mode"]] = result
        rundir.atomic_write(target.run_dir / EVAL_FILE, json.dumps(results, indent=2) + "\n")
    if not opts.quiet:
        print(table(ir.name, result, k), file=sys.stdout, flush=True)
    return result


def wrong_counts(scores, labels, k: int = 5) -> tuple[int, int]:
    """How many labels are not the top score (top-1 wrong), and not among the k top scores (top-k wrong)."""
    top = scores.topk(k, dim=1).indices
    return int((top[:, 0] != labels).sum()), int((top != labels[:, None]).all(1).sum())


def table(network: str, result: dict[str, Any], k: int = 5) -> str:
    if result["scales"]:
        how = f"whole images, shorter side {', '.join(map(str, result['scales']))}, scores averaged"
    else:
        how = f"shorter side {result['resize']}, {result['crop']}x{result['crop']}"
    mode = result["mode"]
    width = max(len(mode), len("mode"))
    return "\n".join(
        [
            f"{network} on {shown(result['data'])} ({result['images']:,} images; {how})",
            f"{'mode':<{width}}  top-1 error  top-{k} error",
            f"{mode:<{width}}  {100 * result['top1_error']:10.2f}%  {100 * result[f'top{k}_error']:10.2f}%",
        ]
    )


def _first_of_each_class(folder, n: int):
    from resdsl.train.imagefolder import Folder

    counts: dict[int, int] = {}
    keep = []
    for i, label in enumerate(folder.labels):
        counts[label] = counts.get(label, 0) + 1
        if counts[label] <= n:
            keep.append(i)
    return Folder(folder.root, folder.classes, [folder.paths[i] for i in keep], [folder.labels[i] for i in keep])


def _normalizer(target: Target, ir, root: Path, crop: int):
    import torch

    from resdsl.train import imagefolder

    if target.normalize is not None:
        return target.normalize["mean"].float(), target.normalize["std"].float()
    mode = ir.recipe.normalize
    if mode in ("none", "torchvision"):
        return imagefolder.normalizer(None, mode, crop)  # type: ignore[arg-type]
    train = imagefolder.scan(root / "train")  # the per-pixel or per-channel mean comes from the training images
    mean, std = imagefolder.normalizer(train, mode, crop, seed=int(ir.recipe.seed))
    return mean, torch.as_tensor(std)


def _build(target: Target, ir):
    """The model with the weights loaded: the run's model.py, or one generated from the spec."""
    if target.run is not None:
        return target.run.build(target.state, target.source)
    from resdsl.backends.pytorch.codegen import render_model

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.py"
        path.write_text(render_model(ir, ir.name))
        module = import_model(path)
    model = module.build_model()
    load_weights(model, target.state, target.source, "the generated model")
    return model


def _scores(model, x, mode: str, mean, std, device, name: str):
    """Softmax scores averaged over the crops or scales: N x classes."""
    import torch

    from resdsl.train.imagefolder import at_size

    def run(batch):
        batch = batch.to(device).float() / 255.0
        h, w = batch.shape[-2:]
        batch = (batch - at_size(mean, h, w)) / at_size(std, h, w)
        try:
            return torch.softmax(model(batch).float(), dim=1)
        except RuntimeError as err:
            raise InputError(
                f"{name} cannot run on {h}x{w} images ({str(err).splitlines()[0][:120]}); multi-scale testing needs "
                f"a fully-convolutional network whose head pools globally (`avgpool global`)"
            ) from None

    if mode == "scales":
        return torch.stack([run(image[None]) for image in x]).mean(0)
    if mode == "ten":
        n = x.shape[0]
        return run(x.flatten(0, 1)).reshape(n, 10, -1).mean(1)
    return run(x)
