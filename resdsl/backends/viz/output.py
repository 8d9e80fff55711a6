"""Writing a diagram: svg, png, pdf (Graphviz's `dot`) or the DOT source."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import graphviz

from resdsl.backends.viz.style import (
    FORMATS,
    INSTALL_HINT,
)
from resdsl.diagnostics import ResdslError, UsageError


class GraphvizMissing(ResdslError):
    """The `dot` program is needed for svg/png/pdf and is not installed."""

    def render(self) -> str:
        return f"error: {self}"


class RenderError(ResdslError):
    """Graphviz could not lay out or write the diagram."""

    def render(self) -> str:
        return f"error: {self}"


# ---------------------------------------------------------------- output


def output_format(path: Path) -> str:
    """svg / png / pdf / dot from a file name; anything else is a usage error."""
    fmt = path.suffix.lower().lstrip(".")
    if fmt == "gv":
        fmt = "dot"
    if fmt not in FORMATS:
        shown = f"`{path.suffix}`" if path.suffix else "no extension"
        raise UsageError(f"-o {path}: {shown} is not a diagram format; use .svg, .png, .pdf or .dot")
    return fmt


def render(g: graphviz.Digraph, path: Path, fmt: str | None = None) -> Path:
    """Write the diagram; dot source needs no Graphviz, the other formats need its `dot` program."""
    data = diagram(g, path, fmt)
    try:
        path.write_bytes(data)
    except OSError as err:
        raise RenderError(f"cannot write {path}: {err.strerror or err}") from None
    return path


def diagram(g: graphviz.Digraph, path: Path, fmt: str | None = None) -> bytes:
    """The bytes of the diagram file `path` (its format from its extension unless `fmt` is given)."""
    fmt = fmt or output_format(path)
    if fmt == "dot":
        data = g.source.encode()
    else:
        if shutil.which("dot") is None:
            raise GraphvizMissing(
                f"writing {path} needs Graphviz's `dot` program, which is not installed; {INSTALL_HINT}"
            )
        if fmt == "png":
            g = g.copy()
            g.attr(dpi="110")
        try:
            data = g.pipe(format=fmt, quiet=True)
        except graphviz.ExecutableNotFound as err:
            raise GraphvizMissing(f"writing {path} needs Graphviz's `dot` program: {err}; {INSTALL_HINT}") from None
        except (graphviz.CalledProcessError, subprocess.CalledProcessError) as err:
            stderr = getattr(err, "stderr", b"") or b""
            raise RenderError(f"Graphviz failed to draw {path}: {stderr.decode(errors='replace').strip()}") from None
    return data
