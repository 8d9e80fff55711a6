"""One exit-code rule for every command: a missing or unreadable input (a spec, weights, a run or sweep directory)
is `error: ...` and exit 1, a bad command line exit 2; the top-level help's summaries are whole; the README's
own digits command trains without a note and writes nothing into docs/."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from resdsl.cli.main import SUMMARIES, WEIGHTS_SUMMARIES, main

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def cli(*args):
    result = CliRunner().invoke(main, [*map(str, args)])
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def fails(result, code: int, text: str) -> None:
    assert (result.exit_code, result.stderr) == (code, text + "\n"), result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["eval", "{x}"], "{x}: no such run directory, checkpoint or spec"),
        (["plot", "{x}"], "{x}: no such run directory"),
        (["report", "{x}"], "{x}: no such sweep or run directory"),
        (["responses", "{x}"], "{x}: no such run directory"),
        (["maps", "{x}"], "{x}: no such run directory"),
        (["sweep", "--status", "{x}"], "{x}: no such sweep directory"),
        (["check", "{x}"], "cannot read spec `{x}`: no such file"),
    ],
)
def test_a_missing_input_is_exit_1(tmp_path: Path, args: list[str], message: str) -> None:
    x = str(tmp_path / "nosuch")
    fails(cli(*(a.format(x=x) for a in args)), 1, "error: " + message.format(x=x))


@pytest.mark.parametrize("command", ["check", "info", "compile", "viz", "train"])
def test_a_directory_given_as_a_spec_is_exit_1(tmp_path: Path, command: str) -> None:
    fails(cli(command, tmp_path), 1, f"error: cannot read spec `{tmp_path}`: not a regular file")


def test_directories_and_files_in_each_others_place(tmp_path: Path) -> None:
    spec = tmp_path / "a.rd"
    spec.write_text(
        "network a {\n input 1x8x8\n classes 2\n stem { conv 3x3, 2 }\n head { avgpool global; fc classes }\n}\n"
    )
    fails(
        cli("eval", spec, "--weights", tmp_path), 1, f"error: --weights {tmp_path} is a directory, not a weights file"
    )
    for command in (
        ["weights", "check", spec, tmp_path],
        ["weights", "rename", spec, tmp_path, "-o", tmp_path / "o.pt"],
    ):
        fails(
            cli(*command),
            1,
            f"error: cannot read weights {tmp_path}: {tmp_path} is not a regular file: it is a directory",
        )
    assert not (tmp_path / "o.pt").exists()
    assert cli("compile", spec, "-o", tmp_path / "a_model.py").exit_code == 0
    import importlib.util

    import torch

    module_spec = importlib.util.spec_from_file_location("a_model", tmp_path / "a_model.py")
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    torch.save(module.build_model().state_dict(), tmp_path / "w.pt")
    fails(cli("weights", "check", spec, tmp_path / "w.pt", "--reference", tmp_path), 1,
          f"error: cannot read reference {tmp_path}: {tmp_path} is not a regular file: it is a directory")  # fmt: skip
    fails(cli("plot", spec), 1, f"error: {spec} is not a directory (a run directory is one)")
    fails(cli("report", spec), 1, f"error: {spec} is not a directory (a sweep or run directory is one)")
    pytest.importorskip("optuna")
    fails(cli("sweep", tmp_path, "--grid", "n=1,2"), 1,
          f"error: {tmp_path} is a directory, not a spec; for a sweep's state use resdsl sweep --status {tmp_path}")  # fmt: skip


@pytest.mark.parametrize("command", ["plot", "report", "responses", "maps"])
def test_set_on_a_command_that_reads_runs_says_why_not(tmp_path: Path, command: str) -> None:
    fails(cli(command, tmp_path, "--set", "n=3"), 2,
          f"error: --set n=3: {command} reads runs, each rebuilt with the spec and the --set values it was trained "
          "with (its recipe.json); retrain with --set to change a network")  # fmt: skip


def test_every_command_takes_set_and_has_whole_help() -> None:
    text = cli("--help").output
    listed = dict(re.findall(r"^  (\w+)\s{2,}(.+)$", text.split("Commands:")[1], re.M))
    assert listed == SUMMARIES  # each whole, none cut with "..." (or at "Fig.")
    assert all(len(f"  {name:<9}  {text}") <= 78 for name, text in SUMMARIES.items())  # one line each
    text = cli("weights", "--help").output
    assert dict(re.findall(r"^  (\w+)\s{2,}(.+)$", text.split("Commands:")[1], re.M)) == WEIGHTS_SUMMARIES
    for name, command in main.commands.items():
        if name != "weights":
            assert any("--set" in p.opts for p in command.params), name
        options = [p for p in command.params if isinstance(p, click.Option) and not p.hidden]
        assert all(p.help for p in options), [f"{name} {p.name}" for p in options if not p.help]


def _readme_command(start: str) -> list[str]:
    """A `$ resdsl ...` command of the README, its continuation lines joined."""
    block = re.search(rf"^\$ {re.escape(start)}.*?(?<!\\)$", README, re.M | re.S)
    assert block is not None, start
    return shlex.split(block.group(0)[2:].replace("\\\n", " "))


def test_the_readme_digits_command_prints_no_note_and_says_1_iteration(tmp_path: Path, one_thread) -> None:
    args = _readme_command("resdsl train specs/cifar20.rd --dataset digits")
    args[args.index("--iterations") + 1] = "1"
    args[args.index("--eval-every") + 1] = "1"
    args[args.index("--out") + 1] = str(tmp_path / "digits")
    args = [str(ROOT / a) if a.startswith("specs/") else a for a in args[1:]]
    result = cli(*args)
    assert result.exit_code == 0, result.output
    assert "note:" not in result.stderr, result.stderr
    assert ", 1 iteration of batch 64 -> " in result.stderr


def _readme_commands() -> list[str]:
    """Every resdsl command of the README's code blocks, continuation lines joined, comments dropped."""
    blocks = re.findall(r"^```\n(.*?)^```", README, re.M | re.S)
    lines = [line.split("#")[0] for b in blocks for line in b.replace("\\\n", " ").splitlines()]
    return [line for line in lines if "resdsl " in line]


def test_no_readme_command_writes_into_docs() -> None:
    commands = _readme_commands()
    assert len(commands) > 15
    assert not [c for c in commands if re.search(r"(-o|--out|--output)\s+docs/", c)]


def test_what_the_readme_commands_write_is_git_ignored() -> None:
    import shutil
    import subprocess

    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    written = set()
    for line in _readme_commands():
        written |= set(re.findall(r"(?:-o|--out|--output|--train-script)\s+(\S+)", line))
    written.add("resnet34.svg")  # viz's default: the spec's name in the current directory
    assert {"model.py", "curves.png", "sweeps/digits", "report/digits", "responses_digits.png"} <= written
    ignored = subprocess.run(["git", "check-ignore", *sorted(written)], cwd=ROOT, capture_output=True, text=True)
    assert sorted(ignored.stdout.split()) == sorted(written)
