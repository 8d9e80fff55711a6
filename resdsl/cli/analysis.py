"""`resdsl responses` and `resdsl maps`: looking inside trained runs (He et al. 2015 Fig. 7; NIN's category
confidence maps). Imports torch only inside the commands (tests/test_no_torch.py)."""

from __future__ import annotations

from pathlib import Path

import click

from resdsl.cli.common import need_paths, run_set_option
from resdsl.lang.recipe import DATASETS

_RUN = click.Path(path_type=Path)  # checked by the command: a missing run is exit 1, not click's usage error


def _data_options(f):
    f = click.option(
        "--data",
        type=click.Path(path_type=Path),
        help="CIFAR python directory or .npz file of the test set (default: the run's).",
    )(f)
    return click.option(
        "--dataset", type=click.Choice(DATASETS), help="Test set (default: the data set the run trained on)."
    )(f)


def _device_option(f):
    return click.option("--device", help="cpu, cuda or cuda:N (default: cuda when available, else cpu).")(f)


@click.command("responses")
@click.argument("runs", nargs=-1, required=True, type=_RUN, metavar="RUN...")
@_data_options
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="Figure (png, svg, pdf).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--batch", type=click.IntRange(min=1), default=500, show_default=True, help="Images per forward pass.")
@_device_option
@run_set_option
def responses_command(
    runs: tuple[Path, ...],
    dataset: str | None,
    data: Path | None,
    output: Path | None,
    as_json: bool,
    batch: int,
    device: str | None,
) -> None:
    """Std of each 3x3 layer's response (after BN, before ReLU/addition) over the test set, per layer in network
    order and sorted (the ResNet paper's Fig. 7); -o draws both for all RUNs on one figure."""
    from resdsl.experiments import figures
    from resdsl.train.dist import check_device_name

    need_paths(runs, "run directory")
    check_device_name(device)
    fmt = figures.check_output(output, "responses") if output else None
    from resdsl.experiments import responses

    results = responses.responses(list(runs), dataset, data, batch, device)
    if as_json:
        import json

        payload = {"definition": responses.DEFINITION, "runs": [r.to_json() for r in results]}
        click.echo(json.dumps(payload, indent=2))
    else:
        click.echo("\n\n".join(responses.table(r) for r in results))
    if output:
        figures.save(responses.figure(results), output, fmt)
        if not as_json:
            click.echo(f"wrote {output}")


@click.command("maps")
@click.argument("run", type=_RUN)
@click.option("--images", type=click.IntRange(min=1), default=4, show_default=True, help="Test images to show.")
@_data_options
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Figure (png, svg, pdf; default: RUN/maps.png).",
)
@_device_option
@run_set_option
def maps_command(
    run: Path, images: int, dataset: str | None, data: Path | None, output: Path | None, device: str | None
) -> None:
    """Category confidence maps (NIN, Fig. 4): for the first test images, each class's feature map entering the
    global average pool, the predicted class framed."""
    from resdsl.experiments import figures
    from resdsl.train.dist import check_device_name

    need_paths([run], "run directory")
    check_device_name(device)
    output = output or (run.parent if run.is_file() else run) / "maps.png"
    fmt = figures.check_output(output, "maps")
    from resdsl.experiments import maps

    result = maps.maps(run, images, dataset, data, device)
    figures.save(maps.figure(result), output, fmt)
    right = sum(int(a) == int(b) for a, b in zip(result.labels, result.predicted))
    click.echo(f"wrote {output}: {images} images x {result.maps.shape[1]} class maps ({right} of {images} right)")


COMMANDS = [responses_command, maps_command]
