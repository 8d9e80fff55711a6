"""The CPU threading policy (resdsl/train/threads.py): the pure choice for given cores and load, what a real
training logs and writes into summary.json, `--threads` on train, eval and sweep, and the copy of the policy
that the standalone train.py carries."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from test_sweep import tiny_spec
from test_train import CIFAR20, SMALL, SPECS, write_cifar_dir

from resdsl.cli.main import main
from resdsl.train import threads
from resdsl.train.threads import Threading, choose


@pytest.fixture(scope="module")
def cifar_dir(tmp_path_factory) -> Path:
    return write_cifar_dir(tmp_path_factory.mktemp("cifar") / "cifar-10-batches-py")


# ---------------------------------------------------------------------------------------- the policy


@pytest.mark.parametrize(
    "cores, others, expected, reason",
    [
        (2, 0.0, 2, "2 cores, 0.0 busy with other processes"),  # idle: every core
        (2, 0.3, 2, "2 cores, 0.3 busy with other processes"),  # a little background
        (2, 0.5, 1, "2 cores, 0.5 busy with other processes"),  # rounded half up: a core is taken
        (2, 1.0, 1, "2 cores, 1.0 busy with other processes"),
        (2, 2.0, 1, "2 cores, 2.0 busy with other processes: oversubscribed"),
        (2, 3.9, 1, "2 cores, 3.9 busy with other processes: oversubscribed"),
        (1, 0.0, 1, "1 core, 0.0 busy with other processes"),
        (8, 2.6, 5, "8 cores, 2.6 busy with other processes"),
        (16, 0.2, 16, "16 cores, 0.2 busy with other processes"),
        (4, -0.1, 4, "4 cores, 0.0 busy with other processes"),  # a measurement below zero is none
    ],
)
def test_threads_follow_the_free_cores(cores: int, others: float, expected: int, reason: str) -> None:
    choice = choose(cores, others)
    assert (choice.threads, choice.reason, choice.workers) == (expected, reason, 0)
    assert choice.wait_policy == ("active" if int(max(0, others) + 0.5) == 0 else "passive")


def test_requested_and_environment_win_over_the_load() -> None:
    assert choose(2, 3.9, requested=2) == Threading(2, 0, "passive", "--threads 2", 2, 1)
    assert choose(2, 0.0, requested=1).reason == "--threads 1"
    assert choose(2, 0.0, requested=1).wait_policy == "active"
    assert choose(2, 0.0, requested=4).wait_policy == "passive"  # more threads than cores
    assert choose(2, 3.9, env_threads="2") == Threading(2, 0, "passive", "OMP_NUM_THREADS=2", 2, 1)
    assert choose(2, 3.9, requested=2, env_threads="1").threads == 2  # --threads over OMP_NUM_THREADS
    for junk in ("", "0", "-1", "two", "1.5"):
        assert choose(2, 3.9, env_threads=junk).threads == 1, junk  # ignored: the load decides
    assert choose(2, 0.0, requested=1, reason="a sweep's share").reason == "a sweep's share"


def test_log_line_and_load_in_the_reason() -> None:
    choice = choose(2, 2.0, load=3.94)
    assert (
        choice.line()
        == "threads: 1 (2 cores, 2.0 busy with other processes: oversubscribed, load 3.9; --threads to override)"
    )
    assert choice.to_json() == {
        "threads": 1,
        "workers": 0,
        "wait_policy": "passive",
        "reason": "2 cores, 2.0 busy with other processes: oversubscribed, load 3.9",
        "cores": 2,
        "free": 1,
    }


def test_loader_workers_and_sharing() -> None:
    assert choose(8, 2.6, loader=True).workers == 5  # the free cores
    assert choose(16, 0.0, loader=True).workers == 8  # at most 8
    assert choose(2, 3.9, loader=True).workers == 1  # at least 1
    assert choose(2, 0.0, workers=0).workers == 0  # --workers 0: in the training process
    assert choose(2, 0.0).line() == "threads: 2 (2 cores, 0.0 busy with other processes; --threads to override)"
    assert choose(2, 0.0, loader=True).line().startswith("threads: 2, 2 DataLoader workers (2 cores")
    shared = threads.share(choose(8, 0.0), 3)
    assert (shared.threads, shared.reason) == (2, "8 cores, 0.0 busy with other processes, shared by 3 runs at once")
    assert threads.share(choose(2, 2.0), 2).threads == 1
    assert threads.share(choose(2, 0.0), 1) == choose(2, 0.0)


def test_measuring_the_machine(monkeypatch) -> None:
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    cpus = threads.usable_cores()
    assert cpus and len(cpus) <= (threads.os.cpu_count() or 1)
    others, _ = threads.measure_others(cpus, seconds=0.05)
    assert 0.0 <= others <= len(cpus) + 0.5
    assert threads.decide(3).reason == "--threads 3"  # nothing measured
    assert threads.decide(environ={"OMP_NUM_THREADS": "1"}).reason == "OMP_NUM_THREADS=1"
    monkeypatch.setattr(threads, "usable_cores", lambda: [0, 1])
    monkeypatch.setattr(threads, "measure_others", lambda cpus: (2.0, 3.9))
    assert threads.decide().line() == choose(2, 2.0, load=3.9).line()


def test_child_env_keeps_what_the_user_set() -> None:
    env = threads.child_env(choose(2, 2.0), {"PATH": "/bin"})
    assert env == {"PATH": "/bin", "OMP_NUM_THREADS": "1", "OMP_WAIT_POLICY": "PASSIVE", "KMP_BLOCKTIME": "0"}
    env = threads.child_env(choose(2, 0.0), {"OMP_WAIT_POLICY": "ACTIVE", "OMP_NUM_THREADS": "2"})
    assert env == {"OMP_WAIT_POLICY": "ACTIVE", "OMP_NUM_THREADS": "2"}
    assert threads.export_env(choose(2, 2.0)) is False  # torch is imported here: too late for OpenMP


# ---------------------------------------------------------------------------------------- the commands


def train(*args) -> object:
    result = CliRunner().invoke(main, ["train", *map(str, args)])
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def test_threads_in_the_log_and_summary(tmp_path: Path, cifar_dir: Path, one_thread, monkeypatch) -> None:
    out = tmp_path / "one"
    r = train(CIFAR20, "--data", cifar_dir, *SMALL, "--iterations", 2, "--threads", 1, "--out", out)
    assert r.exit_code == 0, r.output
    assert "threads: 1 (--threads 1; --threads to override)" in r.output.splitlines()
    summary = json.loads((out / "summary.json").read_text())
    assert summary["threads"]["threads"] == 1 and summary["threads"]["reason"] == "--threads 1"
    assert json.loads((out / "recipe.json").read_text())["threads"] == 1

    # no --threads and no OMP_NUM_THREADS: the measurement decides (here made a busy machine)
    monkeypatch.delenv("OMP_NUM_THREADS")
    monkeypatch.setattr(threads, "usable_cores", lambda: [0, 1])
    monkeypatch.setattr(threads, "measure_others", lambda cpus: (2.0, 3.9))
    import torch

    torch.set_num_threads(2)
    out = tmp_path / "auto"
    r = train(CIFAR20, "--data", cifar_dir, *SMALL, "--iterations", 2, "--out", out)
    assert r.exit_code == 0, r.output
    line = "threads: 1 (2 cores, 2.0 busy with other processes: oversubscribed, load 3.9; --threads to override)"
    assert line in r.output.splitlines()
    assert json.loads((out / "summary.json").read_text())["threads"]["wait_policy"] == "passive"
    assert torch.get_num_threads() == 2  # restored after the run


@pytest.mark.slow
def test_deterministic_resume_keeps_the_thread_count(tmp_path: Path, cifar_dir: Path, one_thread) -> None:
    out = tmp_path / "run"
    common = [CIFAR20, "--data", cifar_dir, *SMALL, "--deterministic"]
    r = train(*common, "--iterations", 2, "--threads", 2, "--out", out)
    assert r.exit_code == 0, r.output
    r = train(*common, "--iterations", 4, "--resume", out)
    assert r.exit_code == 0, r.output
    assert "threads: 2 (the run's 2: --deterministic resumes with the count it started with;" in r.output


BAD_THREADS = "Error: Invalid value for '--threads': 0 is not in the range x>=1."


@pytest.mark.parametrize(
    "command",
    [
        ["train", CIFAR20],
        ["eval", CIFAR20],
        ["sweep", CIFAR20, "--grid", "n=1,2"],
    ],
)
def test_bad_threads_is_a_usage_error(command: list[str]) -> None:
    r = CliRunner().invoke(main, [*command, "--threads", "0"])
    assert r.exit_code == 2
    assert r.output.splitlines()[-1] == BAD_THREADS
    r = CliRunner().invoke(main, [*command, "--threads", "many"])
    assert r.exit_code == 2
    assert r.output.splitlines()[-1] == "Error: Invalid value for '--threads': 'many' is not a valid integer range."


def test_sweep_passes_its_threads_to_every_run(tmp_path: Path, one_thread, monkeypatch) -> None:
    pytest.importorskip("optuna")
    spec = tiny_spec(tmp_path)
    out = tmp_path / "sw"
    r = CliRunner().invoke(main, ["sweep", str(spec), "--seeds", "2", "--threads", "1", "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert "threads: 1 (--threads 1; --threads to override) per run, 1 run at once" in r.output
    runs = sorted((out / "runs").glob("*/summary.json"))
    assert len(runs) == 2
    assert all(json.loads(p.read_text())["threads"]["reason"] == "--threads 1" for p in runs)
    assert "threads: 1 (--threads 1;" in (out / "logs" / f"{runs[0].parent.name}.log").read_text()


# ---------------------------------------------------------------------------------------- train.py


def _script_functions(script: str) -> dict:
    """The policy functions of a generated train.py, executed without running the script (or torch)."""
    tree = ast.parse(script)
    names = {"choose_threads", "busy_cores", "pick_threads"}
    body = [node for node in tree.body if isinstance(node, ast.FunctionDef) and node.name in names]
    assert {node.name for node in body} == names
    namespace: dict = {"os": threads.os, "time": threads.time}
    exec(compile(ast.Module(body=body, type_ignores=[]), "train.py", "exec"), namespace)
    return namespace


def test_the_standalone_script_carries_the_same_policy() -> None:
    from resdsl.ir.pipeline import load_network
    from resdsl.train.script import render_train_script

    script = render_train_script(load_network(SPECS / "cifar20.rd", {"n": 1}))
    assert '"--threads"' in script and "torch.set_num_threads(threads)" in script
    fns = _script_functions(script)
    for cores in (1, 2, 3, 8):
        for others in (-0.2, 0.0, 0.3, 0.5, 0.9, 1.5, 2.0, 3.9, 7.6):
            for load in (None, 3.9):
                mine = choose(cores, others, load=load)
                assert fns["choose_threads"](cores, others, None, None, load) == (mine.threads, mine.reason)
    for requested, env in ((1, None), (None, "2"), (None, "0"), (3, "1")):
        mine = choose(2, 2.0, requested=requested, env_threads=env)
        assert fns["choose_threads"](2, 2.0, requested, env) == (mine.threads, mine.reason)
    others = fns["busy_cores"](threads.usable_cores(), 0.05)
    assert others is not None and others >= 0.0
    assert fns["pick_threads"](2) == (2, "--threads 2")
