"""resdsl sweep and resdsl report on scikit-learn's digits with a tiny network: every point a run, a sweep
stopped by SIGTERM resumes without repeating finished runs, a failing point is recorded, two workers on one
SQLite study split the runs, and the report's table holds the runs' own numbers."""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pytest

# resdsl sweep needs Optuna, the digits runs scikit-learn: looked up, not imported, at collection
pytestmark = pytest.mark.skipif(
    any(importlib.util.find_spec(m) is None for m in ("optuna", "sklearn")), reason="needs optuna and scikit-learn"
)

TINY = """\
import "std.rd"

param n = 1

network tiny {
    input 1x8x8
    classes 10
    shortcut A
    stem { conv 3x3, 4; bn; relu }
    stage s1 = basic(4) * n
    stage s2 = basic(8, stride: 2) * n
    head { avgpool global; fc classes }
    expect params < 5000
}

train {
    dataset digits
    batch 16
    optimizer sgd(lr: 0.05, momentum: 0.9, weight_decay: 1e-4)
    iterations 6
    augment pad: 1, crop: 8, flip: false
    eval_every 3
}
"""

ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def tiny_spec(tmp_path: Path) -> Path:
    spec = tmp_path / "tiny.rd"
    spec.write_text(TINY)
    return spec


def sweep(*args, cwd: Path, check: int | None = 0) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [sys.executable, "-m", "resdsl", "sweep", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=ENV,
        timeout=300,
    )
    if check is not None:
        assert result.returncode == check, result.stderr
    return result


def sweep_here(*args, check: int = 0):
    """`resdsl sweep ARGS` in this process (one torch thread: the one_thread fixture)."""
    from click.testing import CliRunner

    from resdsl.cli.main import main

    result = CliRunner().invoke(main, ["sweep", *map(str, args)], catch_exceptions=False)
    assert result.exit_code == check, result.output
    return result


def summaries(out: Path) -> dict[str, dict]:
    return {p.parent.name: json.loads(p.read_text()) for p in sorted((out / "runs").glob("*/summary.json"))}


def trials(out: Path) -> list:
    import optuna

    record = json.loads((out / "sweep.json").read_text())
    storage = optuna.storages.RDBStorage(f"sqlite:///{out / 'study.db'}")
    return optuna.load_study(study_name=record["study"], storage=storage).get_trials(deepcopy=False)


@pytest.mark.slow  # sweeps of several trainings
def test_sweep_runs_every_point_then_report(tmp_path: Path, one_thread) -> None:
    from resdsl.ir.pipeline import load_network

    spec = tiny_spec(tmp_path)
    out = tmp_path / "sw"
    sweep_here(spec, "--grid", "n=1,2", "--grid", "shortcut=A,none", "--parallel", "1", "--out", out)
    done = summaries(out)
    assert sorted(done) == [
        "n=1,shortcut=A,seed=0",
        "n=1,shortcut=none,seed=0",
        "n=2,shortcut=A,seed=0",
        "n=2,shortcut=none,seed=0",
    ]
    assert all(s["iterations"] == 6 for s in done.values())

    status = sweep_here("--status", out).output
    assert status.splitlines()[-1] == "4 done, 0 running, 0 failed, 0 stopped, 0 pending"
    for name, s in done.items():
        assert f"{name} done test error {100 * s['final_test_error']:.2f}%" in " ".join(status.split())

    again = sweep_here(spec, "--grid", "n=1,2", "--grid", "shortcut=A,none", "--parallel", "1", "--out", out)
    assert "training" not in again.output and "4 of 4 runs done" in again.output  # nothing runs twice

    from click.testing import CliRunner

    from resdsl.cli.main import main

    report = CliRunner().invoke(main, ["report", str(out), "-o", str(tmp_path / "rep")], catch_exceptions=False)
    assert report.exit_code == 0, report.output
    lines = {line.split()[1]: line.split() for line in report.output.splitlines()[2:6]}
    for n in (1, 2):
        for shortcut, method in (("A", "ResNet"), ("none", "plain")):
            ir = load_network(spec, {"n": n, "shortcut": shortcut})
            error = 100 * done[f"n={n},shortcut={shortcut},seed=0"]["final_test_error"]
            row = lines[f"{method}-{ir.totals.layers}"]
            assert row[2] == str(ir.totals.layers) == str(4 * n + 2)
            assert row[3] == f"{ir.totals.params / 1e3:.1f}K"
            assert row[5] == f"{error:.2f}"
    for name in ("fig6.png", "fig6.svg", "report.html"):
        assert (tmp_path / "rep" / name).stat().st_size > 5000
    assert "| digits | plain-6 | 6 |" in (tmp_path / "rep" / "table.md").read_text()
    html = (tmp_path / "rep" / "report.html").read_text()
    assert "data:image/png;base64,iVBOR" in html and "n=2,shortcut=none,seed=0" in html
    assert f"{100 * done['n=2,shortcut=A,seed=0']['final_test_error']:.2f}" in html
    assert not (tmp_path / "rep" / "fig4.png").exists()  # no ImageNet runs


@pytest.mark.slow  # sweeps of several trainings
def test_sweep_stopped_by_sigterm_resumes_without_repeating(tmp_path: Path) -> None:
    spec = tiny_spec(tmp_path)
    out = tmp_path / "sw"
    args = [spec, "--seeds", "2", "--parallel", "1", "--out", out]
    args += ["--iterations", "300", "--eval-every", "100", "--checkpoint-every", "10"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "resdsl", "sweep", *map(str, args)],
        cwd=tmp_path,
        env=ENV,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.time() + 240
    while time.time() < deadline:  # the first run finished and the second has a checkpoint: stop mid-way
        finished = summaries(out)
        started = [p for p in (out / "runs").glob("*/checkpoint.pt") if p.parent.name not in finished]
        if finished and started:
            break
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err
    finished = summaries(out)
    assert len(finished) == 1
    (first,) = finished
    first_mtime = (out / "runs" / first / "summary.json").stat().st_mtime_ns
    status = sweep("--status", out, cwd=tmp_path).stdout
    assert "1 done, 0 running, 0 failed, 1 stopped, 0 pending" in status
    (stopped,) = [line.split()[0] for line in status.splitlines() if "  stopped " in line]

    import torch

    at = torch.load(out / "runs" / stopped / "checkpoint.pt", weights_only=True)["trainer"]["iteration"]
    assert 0 < at < 300
    sweep(*args, cwd=tmp_path)
    assert (out / "runs" / first / "summary.json").stat().st_mtime_ns == first_mtime  # not run again
    assert len(summaries(out)) == 2
    log = (out / "logs" / f"{stopped}.log").read_text()
    assert f"resuming {out / 'runs' / stopped} at iteration {at} of 300" in log
    assert log.count("training tiny") == 2  # started once, resumed once
    first_log = (out / "logs" / f"{first}.log").read_text()
    assert first_log.count("training tiny") == 1
    complete = [t for t in trials(out) if t.state.name == "COMPLETE"]
    assert sorted(t.user_attrs["run"] for t in complete) == sorted(summaries(out))


@pytest.mark.slow  # sweeps of several trainings
def test_failing_point_is_recorded_and_the_others_finish(tmp_path: Path, one_thread) -> None:
    spec = tiny_spec(tmp_path)
    out = tmp_path / "sw"
    result = sweep_here(spec, "--grid", "n=1,4", "--parallel", "1", "--out", out, check=1)
    assert "1 of 2 runs done, 1 failed" in result.output
    assert sorted(summaries(out)) == ["n=1,seed=0"]
    status = sweep_here("--status", out).output
    line = next(line for line in status.splitlines() if line.startswith("n=4,seed=0"))
    assert "failed" in line and "expect" in line and "params < 5000" in line
    # a second sweep does not try the failed point again
    again = sweep_here(spec, "--grid", "n=1,4", "--parallel", "1", "--out", out, check=1)
    assert "training" not in again.output


@pytest.mark.slow  # sweeps of several trainings
def test_two_workers_on_one_sqlite_study_split_the_runs(tmp_path: Path) -> None:
    spec = tiny_spec(tmp_path)
    out = tmp_path / "sw"
    args = [spec, "--grid", "n=1,2", "--grid", "shortcut=A,none", "--seeds", "2", "--parallel", "1", "--out", out]
    args += ["--iterations", "60", "--eval-every", "30"]
    workers = [
        subprocess.Popen(
            [sys.executable, "-m", "resdsl", "sweep", *map(str, args)],
            cwd=tmp_path,
            env=ENV,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    errs = [w.communicate(timeout=300)[1] for w in workers]
    assert [w.returncode for w in workers] == [0, 0], errs
    assert len(summaries(out)) == 8
    ran = [t for t in trials(out) if "duplicate_of" not in t.user_attrs]
    assert all(t.state.name == "COMPLETE" for t in ran)
    assert sorted(t.user_attrs["run"] for t in ran) == sorted(summaries(out))  # each point once
    assert {t.user_attrs["pid"] for t in ran} == {w.pid for w in workers}  # both workers trained
    for log in (out / "logs").glob("*.log"):
        assert log.read_text().count("training tiny") == 1, log


@pytest.mark.slow  # sweeps of several trainings
def test_usage_errors(tmp_path: Path) -> None:
    spec = tiny_spec(tmp_path)
    out = tmp_path / "sw"
    bad = sweep(spec, "--grid", "n=1,2", "--join", "http://x", "--out", out, cwd=tmp_path, check=2)
    assert bad.stderr.startswith("error: --join http://x: not a database URL; use postgresql://")
    bad = sweep(spec, "--grid", "n=1/2", cwd=tmp_path, check=2)
    assert "--grid n=1/2: the value `1/2` cannot name a run directory" in bad.stderr
    bad = sweep(spec, "--grid", "m=1,2", "--out", out, cwd=tmp_path, check=2)
    assert bad.stderr.startswith("error: --grid m=1,seed=0: --set m: no such param or setting")
    assert not out.exists()
    bad = sweep(spec, cwd=tmp_path, check=2)
    assert "nothing to sweep" in bad.stderr


def test_report_of_run_directories_over_seeds(tmp_path: Path) -> None:
    """Two seeds of one setting: best (mean±std) of the summaries' errors; the paper's Table 6 beside a
    CIFAR-10 ResNet-20 (recipe.json and summary.json written as the runner writes them)."""
    from resdsl.experiments import report

    errors = [0.0931, 0.0875, 0.0899]
    for seed, error in enumerate(errors):
        run = tmp_path / f"r20-{seed}"
        run.mkdir()
        recipe = {"network": "cifar_resnet20", "spec": "specs/cifar20.rd", "sets": [], "recipe": {"seed": seed}}
        recipe |= {"dataset": "cifar10", "model_params": 269722, "model_layers": 20, "model_shortcut": "A"}
        (run / "recipe.json").write_text(json.dumps(recipe))
        (run / "summary.json").write_text(json.dumps({"final_test_error": error, "iterations": 100}))
        (run / "metrics.csv").write_text(
            f"iteration,lr,train_loss,train_error,test_loss,test_error\n50,0.1,1,0.5,1,0.4\n100,0.1,1,0.2,1,{error}\n"
        )
    written = report.write([tmp_path], tmp_path / "rep")
    pct = [100 * e for e in errors]
    expected = f"{min(pct):.2f} ({statistics.mean(pct):.2f}±{statistics.stdev(pct):.2f})"
    assert expected == "8.75 (9.02±0.28)"
    row = written.table_text.splitlines()[2].split("  ")
    assert [c.strip() for c in row if c.strip()] == [
        "cifar10",
        "ResNet-20",
        "20",
        "269.7K",
        "3",
        expected,
        "8.75 (Table 6)",
    ]
    html = (tmp_path / "rep" / "report.html").read_text()
    assert "Table 6: He et al. 2015, Table 6" in html


def test_paper_values() -> None:
    from resdsl.experiments.paper import lookup

    assert [r.text for r in lookup("cifar10", False, 110, "A")] == ["6.43 (6.61±0.16)"]
    assert [r.text for r in lookup("cifar10", False, 1202, "A")] == ["7.93"]
    assert lookup("cifar10", True, 20, "none") == [] and lookup("digits", False, 20, "A") == []
    assert [(r.table, r.text) for r in lookup("imagenet", False, 34, "A")] == [
        ("Table 2", "top-1 25.03"),
        ("Table 3", "top-1 25.03, top-5 7.76"),
    ]
    assert [r.text for r in lookup("imagenet", True, 18, "none")] == ["top-1 27.94"]
    assert [r.text for r in lookup("imagenet", False, 152, "B")] == ["top-1 21.43, top-5 5.71"]
