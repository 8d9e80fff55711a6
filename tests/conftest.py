"""What several test modules share: one intra-op thread for in-process trainings, and the probe
that runs the CLI in a fresh interpreter with heavy modules made unimportable."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

HEAVY = ("torch", "numpy", "jinja2", "graphviz")  # what check and info must never load

# Runs the CLI in-process with the BLOCKED modules unimportable, then asserts none got loaded; the
# CLI's own exit code is printed last on stderr (`exit N`), the probe's is 0 unless one was loaded.
_PROBE = textwrap.dedent(
    """
    import sys

    BLOCKED = {blocked!r}

    class Blocker:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                raise ImportError("resdsl imported " + name)
            return None

    sys.meta_path.insert(0, Blocker())
    {preload}
    from resdsl.cli.main import main

    try:
        main(sys.argv[1:], prog_name="resdsl")
    except SystemExit as exit:
        code = exit.code or 0
    else:
        code = 0
    assert not [m for m in BLOCKED if m in sys.modules], "a blocked module was imported"
    print("exit", code, file=sys.stderr)
    """
)


def run_without(*args: str, blocked: tuple[str, ...] = HEAVY, preload: str = "") -> subprocess.CompletedProcess:
    """`resdsl ARGS` in a fresh interpreter where `blocked` cannot be imported; `preload` is imported
    before the CLI (to show the probe catches it)."""
    code = _PROBE.format(blocked=blocked, preload=f"import {preload}" if preload else "")
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120, cwd=ROOT)


@pytest.fixture
def one_thread() -> Iterator[None]:
    """One intra-op thread for in-process trainings: on a 2-core machine that other jobs share, two
    OpenMP threads waiting for each other made the digits run 4x slower (docs/training.md)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
