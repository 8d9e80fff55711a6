"""Files the commands write: never onto a file they read, whole or not at all; and stdout failures.

`compile -o p.rd` used to replace the spec with Python; `info > /dev/full` ended in a traceback.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from resdsl.cli.main import main

SPECS = Path(__file__).resolve().parent.parent / "specs"
ROOT = SPECS.parent
LIB = "block b(w) { conv 3x3, w; bn; relu }\n"
NET = 'import "lib.rd"\nnetwork n {\n    input 3x8x8\n    classes 2\n    stage s = b(4)\n    head { avgpool global; fc classes }\n}\n'


@pytest.fixture
def work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    shutil.copy(SPECS / "cifar20.rd", tmp_path / "p.rd")
    (tmp_path / "lib.rd").write_text(LIB)
    (tmp_path / "net.rd").write_text(NET)
    (tmp_path / "link.rd").symlink_to("p.rd")
    shutil.copy(SPECS / "cifar20.rd", tmp_path / "net.dot")
    shutil.copy(SPECS / "cifar20.rd", tmp_path / "net.svg")
    monkeypatch.chdir(tmp_path)
    return tmp_path


OVERWRITES = [
    ("spec", ["compile", "p.rd", "-o", "p.rd"], "error: -o p.rd would overwrite the spec p.rd; choose another file\n"),
    (
        "spec_through_a_symlink",
        ["compile", "p.rd", "-o", "link.rd"],
        "error: -o link.rd would overwrite the spec p.rd; choose another file\n",
    ),
    (
        "spec_by_its_link",
        ["compile", "link.rd", "-o", "./p.rd"],
        "error: -o p.rd would overwrite the spec link.rd; choose another file\n",
    ),
    (
        "spec_with_the_train_script",
        ["compile", "p.rd", "-o", "m.py", "--train-script", "p.rd"],
        "error: --train-script p.rd would overwrite the spec p.rd; choose another file\n",
    ),
    (
        "an_imported_file",
        ["compile", "net.rd", "-o", "lib.rd"],
        "error: -o lib.rd would overwrite the imported file lib.rd; choose another file\n",
    ),
    (
        "one_output_with_another",
        ["compile", "p.rd", "-o", "x.py", "--train-script", "./x.py"],
        "error: --train-script x.py and -o x.py are the same file; choose two names\n",
    ),
    (
        "viz_spec",
        ["viz", "net.dot", "-o", "net.dot"],
        "error: -o net.dot would overwrite the spec net.dot; choose another file\n",
    ),
    (
        "viz_default_output",
        ["viz", "net.svg"],
        "error: the default output net.svg would overwrite the spec net.svg; name the diagram with -o\n",
    ),
    (
        "viz_imported_file",
        ["viz", "net.rd", "p.rd", "-o", "lib.dot"],
        None,  # lib.dot is not imported: this one works
    ),
]


@pytest.mark.parametrize("args, stderr", [c[1:] for c in OVERWRITES], ids=[c[0] for c in OVERWRITES])
def test_no_output_overwrites_an_input(work: Path, args: list[str], stderr: str | None) -> None:
    before = {p.name: p.read_bytes() for p in work.iterdir() if p.is_file()}
    result = CliRunner().invoke(main, args)
    if stderr is None:
        assert result.exit_code == 0, result.output
        return
    assert result.exit_code == 2, result.output
    assert result.stderr == stderr
    assert {p.name: p.read_bytes() for p in work.iterdir() if p.is_file()} == before
    assert (work / "link.rd").is_symlink()


def test_an_import_as_diagram_output_is_refused(work: Path) -> None:
    (work / "lib.dot").write_text(LIB)
    (work / "net2.rd").write_text(NET.replace("lib.rd", "lib.dot"))
    result = CliRunner().invoke(main, ["viz", "net2.rd", "-o", "lib.dot"])
    assert result.exit_code == 2
    assert result.stderr == "error: -o lib.dot would overwrite the imported file lib.dot; choose another file\n"
    assert (work / "lib.dot").read_text() == LIB


def test_a_failed_write_leaves_the_old_files(work: Path) -> None:
    """Both files are written whole or not at all: the model is not replaced when the train script
    cannot be written."""
    (work / "model.py").write_text("# mine\n")
    (work / "blocker").write_text("a file, not a folder\n")
    result = CliRunner().invoke(main, ["compile", "p.rd", "-o", "model.py", "--train-script", "blocker/train.py"])
    assert result.exit_code == 1
    assert result.stderr == "error: cannot write blocker/train.py: Not a directory\n"
    assert (work / "model.py").read_text() == "# mine\n"
    assert sorted(p.name for p in work.iterdir() if p.name.startswith(".")) == []  # no temporary files left


def test_writing_through_a_symlink_keeps_the_link_and_the_mode(work: Path) -> None:
    (work / "real.py").write_text("# old\n")
    os.chmod(work / "real.py", 0o640)
    (work / "model.py").symlink_to("real.py")
    result = CliRunner().invoke(main, ["compile", "p.rd", "-o", "model.py"])
    assert result.exit_code == 0, result.output
    assert (work / "model.py").is_symlink()
    assert "class CifarResNet20(nn.Module):" in (work / "real.py").read_text()
    assert (work / "real.py").stat().st_mode & 0o777 == 0o640


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
@pytest.mark.parametrize(
    "args, stderr",
    [
        (["info", "specs/cifar20.rd"], "error: cannot write the output: No space left on device\n"),
        (["compile", "specs/cifar20.rd"], "error: cannot write the output: No space left on device\n"),
        (["check", "specs/cifar20.rd"], "error: cannot write the output: No space left on device\n"),
        (
            ["compile", "specs/cifar20.rd", "-o", "/dev/full"],
            "error: cannot write /dev/full: No space left on device\n",
        ),
    ],
    ids=["info", "compile_stdout", "check", "compile_o"],
)
def test_a_full_disk_is_one_line_and_exit_1(args: list[str], stderr: str) -> None:
    """Was a traceback from click.echo (and, with a buffered stdout, Python's flush at exit)."""
    with open("/dev/full", "w") as full:
        proc = subprocess.run(
            [sys.executable, "-m", "resdsl", *args],
            cwd=ROOT,
            stdout=full,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
        )
    assert (proc.returncode, proc.stderr) == (1, stderr)
    assert Path("/dev/full").is_char_device()


def test_train_never_writes_a_run_file_over_its_spec(work: Path) -> None:
    """`--resume DIR` writes DIR/model.py, recipe.json, ...: a spec kept there under one of those names is
    refused before anything is read or written (also through a symlink)."""
    run = work / "run"
    run.mkdir()
    shutil.copy(work / "p.rd", run / "model.py")
    (run / "recipe.json").symlink_to(work / "p.rd")
    result = CliRunner().invoke(main, ["train", "run/model.py", "--dataset", "synthetic", "--resume", "run"])
    assert (result.exit_code, result.stderr) == (
        2,
        "error: the run's model.py run/model.py would overwrite the spec run/model.py; "
        "keep the run directory for the files resdsl writes\n",
    )
    result = CliRunner().invoke(main, ["train", "p.rd", "--dataset", "synthetic", "--resume", "run"])
    assert (result.exit_code, result.stderr) == (
        2,
        "error: the run's recipe.json run/recipe.json would overwrite the spec p.rd; "
        "keep the run directory for the files resdsl writes\n",
    )
    assert (run / "model.py").read_bytes() == (work / "p.rd").read_bytes()
