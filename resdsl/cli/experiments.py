"""`resdsl sweep` and `resdsl report` (docs/experiments.md). Import Optuna, torch and matplotlib only inside
the commands."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from resdsl.cli.common import need_paths, run_set_option, set_option
from resdsl.cli.train import AMP_HELP
from resdsl.diagnostics import InputError, UsageError
from resdsl.lang.recipe import DATASETS

POSITIVE = click.IntRange(min=1)


def _need_optuna() -> None:
    import importlib.util

    if importlib.util.find_spec("optuna") is None:
        raise InputError("resdsl sweep needs Optuna: pip install 'resdsl[sweep]'")


@click.command("sweep")
@click.argument("spec", required=False, type=click.Path(path_type=Path))
@click.option("--grid", "grids", multiple=True, metavar="NAME=V1,V2,...", help="An axis of the grid (repeatable).")
@click.option("--seeds", type=POSITIVE, default=1, show_default=True, help="Runs per point, seeds 0..S-1.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), help="Sweep directory (default sweeps/SPEC).")
@click.option(
    "--parallel", type=POSITIVE, help="Runs at once on this machine (default: one per GPU; on a CPU, cores / 4)."
)
@click.option(
    "--join",
    metavar="URL",
    help="The study's database, shared by workers on many machines: postgresql://..., mysql+pymysql://..., "
    "sqlite:///PATH (default: DIR/study.db).",
)
@click.option("--status", "show_status", is_flag=True, help="Show each run's state (SPEC is then the sweep directory).")
@click.option("--dataset", type=click.Choice(DATASETS), help="Data set (default: the spec's `dataset`).")
@click.option("--data", type=click.Path(path_type=Path), help="CIFAR python directory, .npz file or ImageNet folder.")
@click.option("--iterations", type=POSITIVE, help="Iterations of every run (recipe: iterations).")
@click.option("--batch", type=POSITIVE, help="Batch size (recipe: batch).")
@click.option("--lr", type=click.FloatRange(min=0), help="Base learning rate (recipe: lr).")
@click.option("--eval-every", type=POSITIVE, help="Evaluate and log every N iterations.")
@click.option("--checkpoint-every", type=POSITIVE, help="Save checkpoint.pt every N iterations.")
@click.option("--device", help="cpu, cuda or cuda:N (default: cuda when available, else cpu).")
@click.option(
    "--amp", type=click.Choice(["auto", "bf16", "fp16", "off"]), default="auto", show_default=True, help=AMP_HELP
)
@click.option(
    "--threads",
    type=POSITIVE,
    help="torch threads per run (default: the free cores, measured when the sweep starts, shared by the runs).",
)
@click.option("-q", "--quiet", is_flag=True, help="Print nothing but errors.")
@set_option
def sweep_command(
    spec: Path | None,
    grids: tuple[str, ...],
    seeds: int,
    out: Path | None,
    parallel: int | None,
    join: str | None,
    show_status: bool,
    dataset: str | None,
    data: Path | None,
    iterations: int | None,
    batch: int | None,
    lr: float | None,
    eval_every: int | None,
    checkpoint_every: int | None,
    device: str | None,
    amp: str,
    threads: int | None,
    quiet: bool,
    sets: tuple[str, ...],
) -> None:
    """Train SPEC at every point of a grid (x seeds), each an ordinary run directory, as an Optuna study that
    workers on many machines may share; a stopped sweep continues where it stopped."""
    _need_optuna()
    from resdsl.experiments import sweep
    from resdsl.experiments.grid import parse_grid
    from resdsl.train import threads as policy
    from resdsl.train.dist import check_device_name

    if show_status:
        if spec is None:
            raise UsageError("--status takes the sweep directory: resdsl sweep --status DIR")
        click.echo(sweep.status_table(sweep.status(spec, join)))
        return
    if spec is None:
        raise UsageError("missing SPEC: resdsl sweep SPEC --grid NAME=V1,V2 ...")
    if spec.is_dir():
        raise InputError(f"{spec} is a directory, not a spec; for a sweep's state use resdsl sweep --status {spec}")
    if not grids and seeds == 1:
        raise UsageError("nothing to sweep: give --grid NAME=V1,V2,... (and/or --seeds S)")
    check_device_name(device)
    axes = parse_grid(grids, seeds)
    given = dict(iterations=iterations, batch=batch, lr=lr, eval_every=eval_every, checkpoint_every=checkpoint_every)
    cfg = sweep.SweepConfig(
        spec=str(spec),
        spec_sha256=sweep.spec_digest(spec),
        axes=axes,
        sets=list(sets),
        dataset=dataset,
        data=str(data) if data is not None else None,
        train={k: v for k, v in given.items() if v is not None},
        amp=amp,
    )
    out = out or Path("sweeps") / spec.stem
    choice = policy.decide(threads)  # for the machine: --threads, OMP_NUM_THREADS, or the free cores now
    policy.export_env(choice)  # OpenMP's wait policy, while torch is not imported yet
    if parallel is None:
        parallel, _ = sweep.default_parallel(device)
    if threads is None and not os.environ.get("OMP_NUM_THREADS", "").strip().isdigit():
        choice = policy.share(choice, parallel)  # --threads and OMP_NUM_THREADS are per run
    machine = sweep.Machine(
        out=out,
        url=sweep.storage_url(out, join),
        device=device,
        parallel=parallel,
        threads=choice.threads,
        quiet=quiet,
        threads_reason=None if threads is not None else choice.reason,
        wait_policy=choice.wait_policy,
        threads_line=f"{choice.line()} per run, {parallel} run{'s' if parallel > 1 else ''} at once",
    )
    code = sweep.run(cfg, machine)
    if code:
        sys.exit(code)


@click.command("report")
@click.argument("dirs", nargs=-1, required=True, type=click.Path(path_type=Path), metavar="DIR...")
@click.option(
    "-o",
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    help="Directory of the tables, figures and report.html (default: DIR/report for one sweep, else report/).",
)
@run_set_option
def report_command(dirs: tuple[Path, ...], out: Path | None) -> None:
    """Sweeps or run directories -> Table 6 (layers, params, test error mean ± std over seeds, the paper's
    values), Fig. 6 (plain | residual), Fig. 4 for ImageNet runs, as PNG, SVG and one self-contained HTML page."""
    from resdsl.experiments import report

    need_paths(dirs, "sweep or run directory", directory=True)
    if out is None:
        out = dirs[0] / "report" if len(dirs) == 1 else Path("report")
    written = report.write(list(dirs), out)
    click.echo(written.table_text)
    for path in written.files:
        click.echo(str(path))


COMMANDS = [sweep_command, report_command]
