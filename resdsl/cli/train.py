"""`resdsl train` and `resdsl plot`. Imports torch only inside the commands (tests/test_no_torch.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from resdsl.cli.common import set_option, spec_argument
from resdsl.diagnostics import UsageError
from resdsl.lang.recipe import DATASETS


@click.command("train")
@spec_argument
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), help="Run directory (default runs/SPEC-TIME).")
@click.option("--dataset", type=click.Choice(DATASETS), help="Data set (default: the spec's `dataset`).")
@click.option(
    "--data",
    type=click.Path(path_type=Path),
    help="CIFAR python directory or .npz file (default for CIFAR: ~/.cache/resdsl/data, downloaded if missing).",
)
@click.option("--iterations", type=int, help="Stop after N iterations (recipe: iterations).")
@click.option("--batch", type=int, help="Global batch size, split over processes (recipe: batch).")
@click.option("--lr", type=float, help="Base learning rate (recipe: lr).")
@click.option("--eval-every", type=int, help="Evaluate and log every N iterations.")
@click.option("--checkpoint-every", type=int, help="Save checkpoint.pt every N iterations.")
@click.option("--seed", type=int, help="Seed of the initialisation, data order and augmentation.")
@click.option("--device", help="cpu, cuda or cuda:N (default: cuda when available, else cpu).")
@click.option(
    "--amp",
    type=click.Choice(["auto", "bf16", "fp16", "off"]),
    default="auto",
    show_default=True,
    help="Mixed precision: auto is bf16 autocast on CUDA and off on the CPU; fp16 uses a GradScaler.",
)
@click.option("--compile", "use_compile", is_flag=True, help="torch.compile the model.")
@click.option(
    "--deterministic", is_flag=True, help="Deterministic kernels, no cudnn.benchmark (bitwise resume on CPU)."
)
@click.option("--channels-last/--no-channels-last", default=True, show_default=True, help="NHWC memory format.")
@click.option(
    "--resume", type=click.Path(path_type=Path), help="Continue a run: its directory or a checkpoint.pt file."
)
@click.option("--nproc", type=int, help="Launch N processes on this machine with torchrun (DDP).")
@click.option("-q", "--quiet", is_flag=True, help="Print nothing but errors.")
@click.option("--interrupt-at", type=int, hidden=True, help="Tests: act as if Ctrl-C came after iteration N.")
@set_option
def train(
    spec: Path,
    out: Path | None,
    dataset: str | None,
    data: Path | None,
    iterations: int | None,
    batch: int | None,
    lr: float | None,
    eval_every: int | None,
    checkpoint_every: int | None,
    seed: int | None,
    device: str | None,
    amp: str,
    use_compile: bool,
    deterministic: bool,
    channels_last: bool,
    resume: Path | None,
    nproc: int | None,
    quiet: bool,
    interrupt_at: int | None,
    sets: tuple[str, ...],
) -> None:
    """Train SPEC's generated model with its recipe; writes a run directory (see docs/training.md)."""
    if nproc is not None:
        if nproc < 1:
            raise UsageError("--nproc must be at least 1")
        _launch(nproc, out, spec)
        return
    from resdsl.train import runner

    given = dict(
        iterations=iterations, batch=batch, lr=lr, eval_every=eval_every, checkpoint_every=checkpoint_every, seed=seed
    )
    overrides = {name: value for name, value in given.items() if value is not None}
    opts = runner.Options(
        out=out,
        dataset=dataset,
        data=data,
        device=device,
        amp=amp,
        compile=use_compile,
        deterministic=deterministic,
        resume=resume,
        channels_last=channels_last,
        interrupt_at=interrupt_at,
        recipe_overrides=overrides,
        quiet=quiet,
    )
    try:
        runner.run(spec, sets, opts)
    except runner.Interrupted as stop:
        click.echo(str(stop), err=True)
        sys.exit(130)
    except KeyboardInterrupt:
        click.echo("interrupted (a second Ctrl-C): no checkpoint saved this time", err=True)
        sys.exit(130)


def _launch(nproc: int, out: Path | None, spec: Path) -> None:
    """Re-run this command under torchrun with N local processes (the same arguments, less --nproc)."""
    args = sys.argv[1:]
    cleaned, skip = [], False
    for a in args:
        if skip:
            skip = False
            continue
        if a == "--nproc":
            skip = True
            continue
        if a.startswith("--nproc="):
            continue
        cleaned.append(a)
    if out is None:  # every rank must agree on the run directory
        from resdsl.train.runner import default_run_dir

        cleaned += ["--out", str(default_run_dir(spec))]
    if cleaned and cleaned[0] != "train":
        cleaned = cleaned[cleaned.index("train") :]
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc_per_node={nproc}",
        "-m",
        "resdsl",
        *cleaned,
    ]
    import subprocess

    sys.exit(subprocess.call(command))


@click.command("plot")
@click.argument("runs", nargs=-1, required=True, type=click.Path(file_okay=False, exists=True, path_type=Path))
@click.option(
    "-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=Path("curves.png"), show_default=True
)
def plot(runs: tuple[Path, ...], output: Path) -> None:
    """Overlay runs' train (dashed) and test (solid) error against iterations, like the paper's Figure 6."""
    from resdsl.train.runner import plot_runs

    plot_runs(list(runs), output)
    click.echo(str(output))


COMMANDS = [train, plot]
