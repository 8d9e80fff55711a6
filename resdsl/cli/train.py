"""`resdsl train` and `resdsl plot`. Imports torch only inside the commands (tests/test_no_torch.py)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from resdsl.cli.common import need_paths, run_set_option, set_option, spec_argument
from resdsl.diagnostics import ResdslError, UsageError
from resdsl.lang.recipe import DATASETS

POSITIVE = click.IntRange(min=1)
AMP_HELP = "Mixed precision: auto is bf16 autocast on CUDA and off on the CPU; fp16 uses a GradScaler."


@click.command("train")
@spec_argument
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), help="Run directory (default runs/SPEC-TIME).")
@click.option("--dataset", type=click.Choice(DATASETS), help="Data set (default: the spec's `dataset`).")
@click.option(
    "--data",
    type=click.Path(path_type=Path),
    help="CIFAR python directory, MNIST idx or SVHN .mat folder, .npz file or ImageNet folder "
    "(train/<class>/*.JPEG, val/<class>/*.JPEG); default for CIFAR, MNIST, SVHN: ~/.cache/resdsl/data, "
    "downloaded if missing.",
)
@click.option("--iterations", type=POSITIVE, help="Stop after N iterations (recipe: iterations).")
@click.option("--batch", type=POSITIVE, help="Global batch size, split over processes (recipe: batch).")
@click.option("--lr", type=click.FloatRange(min=0), help="Base learning rate (recipe: lr).")
@click.option("--eval-every", type=POSITIVE, help="Evaluate and log every N iterations.")
@click.option("--checkpoint-every", type=POSITIVE, help="Save checkpoint.pt every N iterations.")
@click.option("--seed", type=click.IntRange(min=0), help="Seed of the initialisation, data order and augmentation.")
@click.option("--device", help="cpu, cuda or cuda:N (default: cuda when available, else cpu).")
@click.option(
    "--amp",
    type=click.Choice(["auto", "bf16", "fp16", "off"]),
    default="auto",
    show_default=True,
    help=AMP_HELP,
)
@click.option("--compile", "use_compile", is_flag=True, help="torch.compile the model.")
@click.option(
    "--deterministic", is_flag=True, help="Deterministic kernels, no cudnn.benchmark (bitwise resume on CPU)."
)
@click.option("--channels-last/--no-channels-last", default=True, show_default=True, help="NHWC memory format.")
@click.option(
    "--resume", type=click.Path(path_type=Path), help="Continue a run: its directory or a checkpoint.pt file."
)
@click.option(
    "--workers",
    type=click.IntRange(min=0),
    help="DataLoader processes decoding ImageNet's images, per training process (default: CPUs, at most 8).",
)
@click.option(
    "--threads",
    type=POSITIVE,
    help="torch threads per training process (default: chosen from the free cores and logged; see docs/training.md).",
)
@click.option("--nproc", type=POSITIVE, help="Launch N processes on this machine with torchrun (DDP).")
@click.option("-q", "--quiet", is_flag=True, help="Print nothing but errors.")
@click.option("--interrupt-at", type=int, hidden=True, help="Tests: act as if Ctrl-C came after iteration N.")
@click.option("--threads-reason", hidden=True, help="--nproc: why each process has its --threads.")
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
    workers: int | None,
    threads: int | None,
    nproc: int | None,
    quiet: bool,
    interrupt_at: int | None,
    threads_reason: str | None,
    sets: tuple[str, ...],
) -> None:
    """Train SPEC's generated model with its recipe; writes a run directory (see docs/training.md)."""
    from resdsl.train import session  # imports no torch: options and the spec are checked first
    from resdsl.train.console import Interrupted
    from resdsl.train.dist import LAUNCHED
    from resdsl.train.plan import Options

    given = dict(
        iterations=iterations, batch=batch, lr=lr, eval_every=eval_every, checkpoint_every=checkpoint_every, seed=seed
    )
    overrides = {name: value for name, value in given.items() if value is not None}
    opts = Options(
        out=out,
        dataset=dataset,
        data=data,
        device=device,
        amp=amp,
        compile=use_compile,
        deterministic=deterministic,
        resume=resume,
        channels_last=channels_last,
        workers=workers,
        threads=threads,
        threads_reason=threads_reason if threads is not None else None,
        interrupt_at=interrupt_at,
        recipe_overrides=overrides,
        quiet=quiet,
    )
    if nproc is not None:
        _launch(nproc, spec, sets, opts)
        return
    try:
        session.run(spec, sets, opts)
    except Interrupted as stop:
        if stop.report:
            click.echo(str(stop), err=True)
        sys.exit(stop.code)
    except KeyboardInterrupt as stop:
        click.echo("stopped at once: no checkpoint saved this time (an earlier one is kept)", err=True)
        sys.exit(getattr(stop, "code", 130))
    except ResdslError as err:
        if os.environ.get(LAUNCHED) and os.environ.get("RANK", "0") != "0":
            sys.exit(2 if isinstance(err, UsageError) else 1)  # the same error: rank 0 prints it
        raise


def _rank_arguments(spec: Path, sets: tuple[str, ...], opts, out: Path) -> list[str]:
    """The `resdsl train` arguments each process gets: the options given, with --out fixed, less --nproc."""
    args = ["train", str(spec), "--out", str(out)]
    if opts.resume is not None:
        args += ["--resume", str(opts.resume)]
    if opts.dataset:
        args += ["--dataset", opts.dataset]
    if opts.data is not None:
        args += ["--data", str(opts.data)]
    for key, value in opts.recipe_overrides.items():
        args += [f"--{key.replace('_', '-')}", str(value)]
    if opts.device:
        args += ["--device", opts.device]
    args += ["--amp", opts.amp]
    args += ["--compile"] if opts.compile else []
    args += ["--deterministic"] if opts.deterministic else []
    args += ["--channels-last" if opts.channels_last else "--no-channels-last"]
    args += ["-q"] if opts.quiet else []
    args += ["--workers", str(opts.workers)] if opts.workers is not None else []
    if opts.threads is not None:
        args += ["--threads", str(opts.threads)]
        args += ["--threads-reason", opts.threads_reason] if opts.threads_reason else []
    if opts.interrupt_at is not None:
        args += ["--interrupt-at", str(opts.interrupt_at)]
    for s in sets:
        args += ["--set", s]
    return args


def _launch(nproc: int, spec: Path, sets: tuple[str, ...], opts) -> None:
    """Run this command in N local processes under torchrun (in this process, so that a failing process
    ends the command with its own one-line error and exit code, not torchrun's traceback)."""
    import dataclasses
    import logging

    from resdsl.train import threads as policy
    from resdsl.train.dist import LAUNCHED
    from resdsl.train.plan import default_run_dir, prepare

    # The cores are shared out once, here: each process gets its part of the threads chosen for the machine
    # (--threads and OMP_NUM_THREADS are per process, as with torchrun). OpenMP's settings go to the processes
    # through the environment, before they import torch.
    choice = policy.decide(opts.threads)
    if opts.threads is None and not os.environ.get("OMP_NUM_THREADS", "").strip().isdigit():
        choice = policy.share(choice, nproc)
        opts = dataclasses.replace(opts, threads=choice.threads, threads_reason=choice.reason)
    os.environ.update(policy.child_env(choice))
    # What can be checked before any process starts is checked once, here (a batch that does not split).
    plan = prepare(spec, sets, opts, world=nproc, lock=False)
    out = plan.out or default_run_dir(spec)  # every rank must agree on the run directory
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import parse_args
    from torch.distributed.run import run as torchrun

    os.environ[LAUNCHED] = str(nproc)
    logging.getLogger("torch.distributed.elastic").setLevel(logging.CRITICAL)  # the processes say what failed
    args = ["--standalone", f"--nproc_per_node={nproc}", "-m", "resdsl", *_rank_arguments(spec, sets, opts, out)]
    try:
        torchrun(parse_args(args))
    except ChildFailedError as err:
        rank, failure = err.get_first_failure()  # the root cause; torchrun then stops the others
        code = failure.exitcode
        if code < 0:  # killed by a signal
            click.echo(f"error: training process {rank} died of signal {-code}", err=True)
            code = 128 - code
        sys.exit(code)
    except SignalException as err:
        sys.exit(128 + int(err.sigval))


@click.command("plot")
@click.argument("runs", nargs=-1, required=True, type=click.Path(path_type=Path), metavar="RUN...")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("curves.png"),
    show_default=True,
    help="The picture; its extension picks the format (png, svg, pdf, ...).",
)
@run_set_option
def plot(runs: tuple[Path, ...], output: Path) -> None:
    """Overlay runs' train (dashed) and test (solid) error against iterations, like the paper's Figure 6."""
    from resdsl.train.plots import check_plot_output, plot_runs

    need_paths(runs, "run directory", directory=True)
    check_plot_output(output)
    plot_runs(list(runs), output)
    click.echo(str(output))


COMMANDS = [train, plot]
