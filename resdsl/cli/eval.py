"""`resdsl eval`: top-1/top-5 error of a run or of a state_dict on an ImageNet-layout val/ folder.
Imports torch only inside the command (tests/test_no_torch.py)."""

from __future__ import annotations

from pathlib import Path

import click

from resdsl.cli.common import need_paths, set_option


@click.command("eval")
@click.argument("target", type=click.Path(path_type=Path), metavar="RUN|CHECKPOINT|SPEC")
@click.option(
    "--data",
    type=click.Path(path_type=Path),
    help="ImageNet folder with val/<class>/*.JPEG (default: the run's --data, else ~/.cache/resdsl/data/imagenet).",
)
@click.option(
    "--crops",
    type=click.Choice(["center", "10"]),
    help="center: shorter side 256, one 224 crop (default); 10: four corners and centre, and their flips.",
)
@click.option(
    "--scales",
    metavar="S1,S2,...",
    help="Fully-convolutional multi-scale testing: whole images at these shorter sides, scores averaged "
    "(`paper`: 224,256,384,480,640).",
)
@click.option(
    "--weights",
    type=click.Path(path_type=Path),
    help="A state_dict file (e.g. torchvision's published weights) run through the spec's generated model.",
)
@click.option("--batch", type=click.IntRange(min=1), default=100, show_default=True, help="Images per forward pass.")
@click.option("--device", help="cpu, cuda or cuda:N (default: cuda when available, else cpu).")
@click.option(
    "--workers", type=click.IntRange(min=0), help="DataLoader processes decoding images (default: CPUs, at most 8)."
)
@click.option(
    "--threads",
    type=click.IntRange(min=1),
    help="torch threads (default: chosen from the free cores and logged; see docs/training.md).",
)
@click.option("--limit", type=click.IntRange(min=1), help="Only the first N images of each class (a quick check).")
@set_option
def eval_command(
    target: Path,
    data: Path | None,
    crops: str | None,
    scales: str | None,
    weights: Path | None,
    batch: int,
    device: str | None,
    workers: int | None,
    threads: int | None,
    limit: int | None,
    sets: tuple[str, ...],
) -> None:
    """Top-1 and top-5 error of a run (its directory or checkpoint.pt), or of SPEC with --weights FILE, on the
    val/ folder of an ImageNet-layout DATA; printed as a table and written to RUN/eval.json."""
    from resdsl.train import evaluate
    from resdsl.train.dist import check_device_name

    need_paths([target], "run directory, checkpoint or spec")
    check_device_name(device)
    opts = evaluate.EvalOptions(
        target=target,
        data=data,
        crops=crops,
        scales=evaluate.parse_scales(scales),
        weights=weights,
        sets=sets,
        batch=batch,
        device=device,
        workers=workers,
        threads=threads,
        limit=limit,
    )
    evaluate.evaluate(opts)


COMMANDS = [eval_command]
