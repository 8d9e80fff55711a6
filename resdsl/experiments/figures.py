"""Writing the analysis figures: the output format from the file's extension, checked before any work, and an
atomic write (a temporary file renamed over the target)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from resdsl.diagnostics import InputError, UsageError
from resdsl.train import rundir


def check_output(output: Path, command: str) -> str:
    """The format of `-o FILE` (png, svg, pdf, ...); InputError without matplotlib, UsageError for an extension
    matplotlib does not write."""
    try:
        from matplotlib.backend_bases import FigureCanvasBase
    except ImportError:
        raise InputError(f"resdsl {command} -o needs matplotlib: pip install 'resdsl[plot]'") from None
    formats = FigureCanvasBase.get_supported_filetypes()
    fmt = Path(output).suffix[1:].lower()
    if fmt not in formats:
        what = f"unknown format `{fmt}`" if fmt else "no extension to tell the format"
        raise UsageError(f"-o {output}: {what}; use one of {', '.join('.' + f for f in sorted(formats))}")
    return fmt


def pyplot():
    """matplotlib.pyplot on the Agg back end (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save(fig: Any, output: Path, fmt: str, dpi: int = 120) -> None:
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    try:
        rundir.atomic_write(output, lambda f: fig.savefig(f, format=fmt, dpi=dpi))
    finally:
        pyplot().close(fig)
