"""The wheel: built from the checkout, installed into a fresh venv outside it (without torch),
it runs `resdsl check`, `resdsl info` and `resdsl compile` on a spec that imports the bundled std.rd."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# What check and info need at run time, without torch (installed from the configured index).
RUNTIME = [
    "lark>=1.1.9",
    "networkx>=3.0",
    "click>=8.1",
    "jinja2>=3.1",
    "graphviz>=0.20",
    "rich>=13",
    "numpy>=1.24",
    "ruff>=0.9",
]

SPEC = """\
# A CIFAR ResNet-20 written outside the checkout: std.rd must come from the installed wheel.
import "std.rd"

param n = 3

network outside {
    input 3x32x32
    classes 10
    shortcut A
    stem { conv 3x3, 16; bn; relu }
    stage conv2 = basic(16) * n
    stage conv3 = basic(32, stride: 2) * n
    stage conv4 = basic(64, stride: 2) * n
    head { avgpool global; fc classes }
    expect layers == 6*n + 2
}
"""


def run(cmd: list[str], cwd: Path, timeout: int = 300) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{cmd}\n{proc.stdout}\n{proc.stderr}"
    return proc


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    # No build isolation: hatchling comes from the dev extra, so this works offline.
    run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out), str(ROOT)],
        cwd=out,
    )
    (built,) = out.glob("resdsl-*.whl")
    return built


@pytest.mark.slow
def test_wheel_bundles_grammar_stdlib_and_templates(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "resdsl/lang/grammars/resdsl.lark" in names
    assert "resdsl/lang/stdlib/std.rd" in names
    assert "resdsl/backends/pytorch/templates/model.py.j2" in names
    assert "resdsl/backends/pytorch/templates/train_script.py.j2" in names
    assert "resdsl/cli/main.py" in names
    for page in ("index.html", "app.js", "editor.js", "style.css"):  # resdsl serve's page
        assert f"resdsl/serve/static/{page}" in names
    assert "resdsl/serve/example.rd" in names
    assert not any(n.startswith(("tests/", "grammars/", "templates/", "specs/")) for n in names)
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    assert "resdsl = resdsl.cli.main:main" in zipfile.ZipFile(wheel).read(entry_points).decode()


@pytest.mark.slow
def test_installed_wheel_runs_check_and_info(wheel: Path, tmp_path: Path) -> None:
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True, system_site_packages=False).create(env_dir)
    python, resdsl = env_dir / "bin" / "python", env_dir / "bin" / "resdsl"
    run([str(python), "-m", "pip", "install", "-q", "--no-deps", str(wheel)], cwd=tmp_path)
    run([str(python), "-m", "pip", "install", "-q", *RUNTIME], cwd=tmp_path)

    work = tmp_path / "work"
    work.mkdir()
    (work / "outside.rd").write_text(SPEC)

    where = run(
        [str(python), "-c", "import resdsl, importlib.util as u; print(resdsl.__file__, u.find_spec('torch'))"],
        cwd=work,
    )
    location, torch = where.stdout.split()
    assert Path(location).is_relative_to(env_dir), location  # the wheel, not the checkout
    assert torch == "None"  # check and info must work without torch

    check = run([str(resdsl), "check", "outside.rd"], cwd=work)
    assert check.stdout == "outside.rd: ok: outside, 20 layers, 269,722 params, 40,551,040 FLOPs\n"

    info = json.loads(run([str(resdsl), "info", "outside.rd", "--json", "--set", "shortcut=B"], cwd=work).stdout)
    assert (info["name"], info["params"], info["layers"]) == ("outside", 272_474, 20)

    table = run([str(resdsl), "info", "outside.rd"], cwd=work).stdout
    assert "layers 20   params 269,722" in table

    bad = work / "bad.rd"
    bad.write_text(SPEC.replace("basic(16)", "basik(16)"))
    proc = subprocess.run([str(resdsl), "check", "bad.rd"], cwd=work, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    assert proc.stderr.startswith("bad.rd:11:19: error: unknown block `basik`\n")
    assert "Traceback" not in proc.stderr

    compiled = run([str(resdsl), "compile", "outside.rd", "-o", "model.py"], cwd=work)  # templates from the wheel
    assert compiled.stderr == "wrote model.py: outside, 20 layers, 269,722 params\n"
    assert "class Outside(nn.Module):" in (work / "model.py").read_text()

    bundled = run([str(python), "-c", "from resdsl.lang.imports import STDLIB; print(STDLIB)"], cwd=work)
    stdlib = Path(bundled.stdout.strip())
    assert stdlib.is_relative_to(env_dir)
    run([str(resdsl), "check", str(stdlib / "std.rd")], cwd=work)
