"""What the benchmarks share: the machine's description, the command to run, and rewriting one section
of docs/benchmarks.md.

Imported by the scripts beside it (their folder is first on sys.path when they run).
"""

from __future__ import annotations

import os
import platform
import re
import sys
from collections.abc import Callable
from pathlib import Path

DOC = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"


def cpu_name() -> str:
    """The CPU's model name from /proc/cpuinfo, else what platform knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def nproc() -> int:
    """The CPUs this process may run on (what `nproc` prints), which a container or taskset may limit."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def load_average() -> str:
    """The load average now, 1, 5 and 15 minutes, as /proc/loadavg gives it (`1.52 0.98 0.61`)."""
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return " ".join(f"{v:.2f}" for v in os.getloadavg()) if hasattr(os, "getloadavg") else "unknown"


def machine() -> str:
    """`2 CPU cores (Intel(R) Xeon(R) Processor), nproc 2, Python 3.11.7, Linux, load average 1.52 0.98 0.61`:
    the machine and how busy it was when the figures were written (every benchmark records both)."""
    return (
        f"{os.cpu_count()} CPU cores ({cpu_name()}), nproc {nproc()}, Python {platform.python_version()}, "
        f"{platform.system()}, load average {load_average()} (1, 5, 15 min, /proc/loadavg)"
    )


def resdsl_command() -> list[str]:
    """The console script beside this interpreter, else `python -m resdsl`."""
    script = Path(sys.executable).parent / "resdsl"
    return [str(script)] if script.exists() else [sys.executable, "-m", "resdsl"]


def section_span(doc: str, title: str) -> re.Match[str] | None:
    """Where the section `## Title` of a markdown text runs, up to the next `## ` heading."""
    return re.compile(rf"^{re.escape(title)}\n.*?(?=^## |\Z)", re.S | re.M).search(doc)


def replace_section(title: str, text: str) -> None:
    """Replace the section `title` of docs/benchmarks.md with `text` (or append it); others stay."""
    doc = DOC.read_text() if DOC.exists() else "# Benchmarks\n\n"
    found = section_span(doc, title)
    if found:
        doc = doc[: found.start()] + text.rstrip("\n") + "\n\n" + doc[found.end() :]
    else:
        doc = doc.rstrip("\n") + "\n\n" + text
    DOC.write_text(doc.rstrip("\n") + "\n")


def report(text: str, write: bool, writer: Callable[[str], None]) -> None:
    """Print a benchmark's figures and, with --write, record them in docs/benchmarks.md through `writer`."""
    print(text)
    if write:
        writer(text)
        print(f"written to {DOC.relative_to(DOC.parent.parent)}")
