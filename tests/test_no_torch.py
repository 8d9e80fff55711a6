"""`import resdsl`, `resdsl check` and `resdsl info` never import torch (1.7 s here), nor numpy,
jinja2 or graphviz (what compile, viz and train need).

Each check runs in a fresh interpreter, because this test process may have imported torch
already (the codegen and training tests do).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from conftest import HEAVY, run_without

ROOT = Path(__file__).resolve().parent.parent
SPECS = ROOT / "specs"


def run_without_torch(*args: str) -> subprocess.CompletedProcess:
    return run_without(*args)


@pytest.mark.parametrize(
    "args",
    [
        ["info", "specs/resnet50.rd"],
        ["info", "specs/cifar110.rd", "--json", "--set", "shortcut=B"],
        ["info", "specs/preact_resnet164.rd", "--ir"],
        ["info", "specs/wrn28_10.rd", "--batch", "64"],
        ["check", "specs/stochdepth110.rd", "specs/densenet40.rd", "specs/std.rd"],
    ],
    ids=["info", "info-json", "info-ir", "info-batch", "check"],
)
def test_commands_do_not_import_torch(args: list[str]) -> None:
    proc = run_without_torch(*args)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.strip().endswith("exit 0"), proc.stderr
    assert proc.stdout


def test_errors_do_not_import_torch(tmp_path: Path) -> None:
    bad = tmp_path / "bad.rd"
    bad.write_text("network x {\n    input 3x32x32\n    classes 10\n    stem { conv 3x3 16 }\n}\n")
    proc = run_without_torch("check", str(bad))
    assert proc.returncode == 0, proc.stderr  # the probe itself; the CLI's exit code is printed
    assert "error: unexpected `16`" in proc.stderr
    assert proc.stderr.strip().endswith("exit 1")


def test_every_command_registers_without_torch() -> None:
    """compile, viz, train, plot (added beside their stages) must import torch lazily."""
    proc = run_without_torch("--help")
    assert proc.returncode == 0, proc.stderr
    assert "check" in proc.stdout and "info" in proc.stdout
    commands = [line.split()[0] for line in proc.stdout.split("Commands:")[1].splitlines() if line.startswith("  ")]
    for command in commands:
        sub = run_without_torch(command, "--help")
        assert sub.returncode == 0, (command, sub.stderr)
        assert sub.stderr.strip().endswith("exit 0"), (command, sub.stderr)


def test_import_resdsl_modules_without_torch() -> None:
    code = (
        "import sys, resdsl, resdsl.cli.main, resdsl.ir.pipeline, resdsl.backends.report, resdsl.lang.recipe; "
        "assert 'torch' not in sys.modules, sorted(m for m in sys.modules if m.startswith('torch'))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("heavy", HEAVY)
def test_probe_detects_heavy_modules(heavy: str) -> None:
    """The probe must fail when something does import one (else the tests above prove nothing)."""
    proc = run_without("--help", preload=heavy)
    assert proc.returncode != 0
    assert f"resdsl imported {heavy}" in proc.stderr
