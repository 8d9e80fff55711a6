"""Training curves: a run's metrics.csv drawn as train (dashed) and test (solid) error against iterations, the
paper's Fig. 6 (`resdsl plot`, a run's curves.png, `resdsl report`). matplotlib is imported only when drawing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from resdsl.diagnostics import InputError, UsageError
from resdsl.train import rundir
from resdsl.train.rundir import read_metrics


def plot_formats() -> dict[str, str]:
    """The file formats matplotlib writes, by extension (ImportError without matplotlib)."""
    from matplotlib.backend_bases import FigureCanvasBase

    return dict(FigureCanvasBase.get_supported_filetypes())


def check_plot_output(output: Path) -> str:
    """The format of `-o FILE` from its extension; UsageError listing the formats when it has none matplotlib writes."""
    try:
        formats = plot_formats()
    except ImportError:
        raise InputError("resdsl plot needs matplotlib: pip install 'resdsl[plot]'") from None
    fmt = Path(output).suffix[1:].lower()
    if fmt not in formats:
        what = f"unknown format `{fmt}`" if fmt else "no extension to tell the format"
        raise UsageError(f"-o {output}: {what}; use one of {', '.join('.' + f for f in sorted(formats))}")
    return fmt


def read_curves(run_dir: Path) -> list[dict[str, float]]:
    """A run's metrics.csv rows, checked to hold the train and test error."""
    metrics = Path(run_dir) / rundir.METRICS
    rows = read_metrics(metrics)
    if not rows:
        raise InputError(f"{run_dir} has no metrics.csv rows; is it a resdsl run directory?")
    missing = [c for c in ("train_error", "test_error") if c not in rows[0]]
    if missing:
        raise InputError(f"{metrics}:1: no {' or '.join(missing)} column; is it a resdsl metrics.csv?")
    return rows


def pyplot() -> Any:
    """matplotlib's pyplot on the Agg back end (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def draw_error_curves(ax: Any, rows: list[dict[str, float]], colour: str, label: str) -> None:
    """One run's train error (dashed, thin) and test error (solid, bold) against iterations, in %."""
    its = [r["iteration"] for r in rows]
    ax.plot(its, [100 * r["train_error"] for r in rows], "--", color=colour, linewidth=1, label=f"{label} train")
    ax.plot(its, [100 * r["test_error"] for r in rows], "-", color=colour, linewidth=2, label=f"{label} test")


def save_figure(fig: Any, output: Path, fmt: str) -> None:
    """Write a figure atomically (its directory made) and close it."""
    plt = pyplot()
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    try:
        rundir.atomic_write(output, lambda f: fig.savefig(f, format=fmt, dpi=120))
    finally:
        plt.close(fig)


def plot_runs(runs: list[Path], output: Path) -> None:
    """Train (dashed) and test (solid) error against iterations, one colour per run (the paper's Fig. 6)."""
    fmt = check_plot_output(output)
    curves = [(Path(run_dir), read_curves(run_dir)) for run_dir in runs]
    fig, ax = pyplot().subplots(figsize=(7, 4.5))
    for i, (run_dir, rows) in enumerate(curves):
        draw_error_curves(ax, rows, f"C{i % 10}", _run_label(run_dir))
    ax.set_xlabel("iteration")
    ax.set_ylabel("error (%)")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title("train (dashed) and test (solid) error")
    fig.tight_layout()
    save_figure(fig, output, fmt)


def _run_label(run_dir: Path) -> str:
    try:
        recipe = json.loads((run_dir / "recipe.json").read_text())
        sets = " ".join(recipe.get("sets") or [])
        return f"{run_dir.name} ({recipe['network']}{' ' + sets if sets else ''})"
    except (OSError, ValueError, KeyError, TypeError, AttributeError):  # not a recipe.json resdsl wrote
        return run_dir.name
