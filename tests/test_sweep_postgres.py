"""`resdsl sweep --join postgresql://...` against a real PostgreSQL server (a throwaway cluster, tests/pgserver.py):
two workers split a grid with no point run twice; a worker SIGKILLed mid-run on another "machine" (its own
hostname, through a UTS namespace) has its point re-run by the other once its heartbeat stops; and the results
equal a single-worker sweep's. Runs in CI (.ci/run installs Debian's postgresql); skipped elsewhere when no
server is installed."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from pgserver import Server, cluster, server_bin

pytest.importorskip("optuna")
pytest.importorskip("sklearn")
pytest.importorskip("psycopg")

if server_bin() is None:
    if os.environ.get("CI"):
        pytest.fail("CI must run the PostgreSQL tests: .ci/run installs Debian's postgresql", pytrace=False)
    pytest.skip("no PostgreSQL server (apt-get install postgresql)", allow_module_level=True)

pytestmark = pytest.mark.slow

SPEC = """\
import "std.rd"

param n = 1

network tiny {
    input 1x8x8
    classes 10
    shortcut A
    stem { conv 3x3, 4; bn; relu }
    stage s1 = basic(4) * n
    head { avgpool global; fc classes }
}

train {
    dataset digits
    batch 16
    optimizer sgd(lr: 0.05, momentum: 0.9, weight_decay: 1e-4)
    augment pad: 1, crop: 8, flip: false
}
"""
GRID = ["--grid", "n=1,2", "--grid", "shortcut=A,none", "--parallel", "1"]
GRACE = 6  # RESDSL_SWEEP_GRACE: a heartbeat every second, a worker silent for 6 s is lost
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "RESDSL_SWEEP_GRACE": str(GRACE)}


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    with cluster() as s:
        yield s


@pytest.fixture(scope="module")
def spec(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("spec") / "tiny.rd"
    path.write_text(SPEC)
    return path


def start(spec: Path, out: Path, *extra: str, host: str | None = None) -> subprocess.Popen:
    """A worker: `resdsl sweep` in its own process group; `host`: under that hostname (another machine)."""
    cmd = [sys.executable, "-m", "resdsl", "sweep", str(spec), *GRID, "--out", str(out), *extra]
    if host is not None:
        cmd = ["unshare", "--uts", "sh", "-c", f'hostname {host} && exec "$@"', "sh", *cmd]
    return subprocess.Popen(cmd, cwd=out.parent, env=ENV, stderr=subprocess.PIPE, text=True, start_new_session=True)


def finish(worker: subprocess.Popen) -> str:
    _, err = worker.communicate(timeout=300)
    assert worker.returncode == 0, err
    return err


def errors(out: Path) -> dict[str, float]:
    return {p.parent.name: json.loads(p.read_text())["final_test_error"] for p in (out / "runs").glob("*/summary.json")}


def trials(url: str, out: Path) -> list:
    import optuna

    study = json.loads((out / "sweep.json").read_text())["study"]
    storage = optuna.storages.RDBStorage(url.replace("postgresql://", "postgresql+psycopg://"))
    return optuna.load_study(study_name=study, storage=storage).get_trials(deepcopy=False)


def ran(url: str, out: Path) -> list:
    """The trials that trained (not the pruned duplicates, not the ones that never started)."""
    return [t for t in trials(url, out) if "duplicate_of" not in t.user_attrs and "run" in t.user_attrs]


@pytest.fixture(scope="module")
def single(spec: Path) -> dict[str, float]:
    """The same sweep by one worker on its own SQLite study: the results the others must reproduce."""
    out = spec.parent / "single"
    finish(start(spec, out, "--iterations", "40", "--eval-every", "20"))
    return errors(out)


def test_two_workers_split_the_grid_and_match_one(server: Server, spec: Path, single: dict[str, float]) -> None:
    url = server.database("split")
    out = spec.parent / "split"
    workers = [start(spec, out, "--iterations", "40", "--eval-every", "20", "--join", url) for _ in range(2)]
    for w in workers:
        finish(w)
    assert len(single) == 4
    assert errors(out) == single
    done = ran(url, out)
    assert all(t.state.name == "COMPLETE" for t in done)
    assert sorted(t.user_attrs["run"] for t in done) == sorted(single)  # every point once, none twice
    assert {t.user_attrs["pid"] for t in done} == {w.pid for w in workers}  # both trained
    for log in (out / "logs").glob("*.log"):
        assert log.read_text().count("training tiny") == 1, log
    status = subprocess.run(
        [sys.executable, "-m", "resdsl", "sweep", "--status", str(out)], capture_output=True, text=True, env=ENV
    )
    assert status.returncode == 0, status.stderr  # sweep.json's storage (no password): read without --join
    assert status.stdout.splitlines()[-1] == "4 done, 0 running, 0 failed, 0 stopped, 0 pending"

    import psycopg

    with psycopg.connect(url) as holder:  # another session keeps the study table locked: an error, not a wait
        holder.execute("LOCK TABLE studies IN ACCESS EXCLUSIVE MODE")
        locked = subprocess.run(
            [sys.executable, "-m", "resdsl", "sweep", "--status", str(out)],
            capture_output=True,
            text=True,
            env={**ENV, "RESDSL_DB_TIMEOUT": "2"},
            timeout=120,
        )
    assert locked.returncode == 1, locked.stderr
    assert locked.stderr == (
        f"error: cannot open the sweep's database {url}: another session held a lock for 2 s "
        "(canceling statement due to lock timeout)\nhint: set RESDSL_DB_TIMEOUT=SECONDS\n"
    )


def test_a_killed_worker_has_its_point_rerun_by_the_other(server: Server, spec: Path, single: dict[str, float]) -> None:
    # Another machine: the killed worker under its own hostname (a UTS namespace, as root), so that only its
    # silence tells (Optuna's heartbeat); without unshare, on this host, where its dead pid tells at once.
    uts = shutil.which("unshare") is not None and subprocess.run(["unshare", "--uts", "true"]).returncode == 0
    host = "lost-machine" if uts else None
    url = server.database("killed")
    out = spec.parent / "killed"
    args = ["--iterations", "40", "--eval-every", "20", "--checkpoint-every", "2", "--join", url]
    lost = start(spec, out, *args, host=host)
    deadline = time.time() + 120
    while time.time() < deadline and not list((out / "runs").glob("*/checkpoint.pt")):
        time.sleep(0.02)
    os.killpg(lost.pid, signal.SIGKILL)  # mid-run, after a checkpoint: no chance to tell the study anything
    lost.communicate(timeout=30)
    (killed,) = [p.parent.name for p in (out / "runs").glob("*/checkpoint.pt")]
    assert killed not in errors(out)

    other = start(spec, out, *args)
    err = finish(other)
    assert errors(out) == single  # the resumed point too: bit for bit what one uninterrupted worker got
    done = ran(url, out)
    by_point = {t.user_attrs["run"]: t for t in done if t.state.name == "COMPLETE"}
    assert sorted(by_point) == sorted(single)
    assert by_point[killed].user_attrs["pid"] == other.pid
    (stale,) = [t for t in done if t.state.name == "FAIL"]  # the killed worker's trial, failed by its silence
    assert stale.user_attrs["run"] == killed and stale.user_attrs["pid"] == lost.pid
    if host is not None:
        assert stale.user_attrs["host"] == host != by_point[killed].user_attrs["host"]
    log = (out / "logs" / f"{killed}.log").read_text()
    assert "resuming" in log and log.count("training tiny") == 2, log
    assert f"{killed}: training" in err


def test_a_server_lost_mid_sweep_is_one_line(spec: Path) -> None:
    """The database stops while a worker trains: the worker ends with one error line, exit 1, no traceback."""
    with cluster() as own:
        url = own.database("lost")
        out = spec.parent / "lost"
        worker = start(spec, out, "--iterations", "40", "--eval-every", "20", "--checkpoint-every", "2", "--join", url)
        deadline = time.time() + 120
        while time.time() < deadline and not list((out / "runs").glob("*/checkpoint.pt")):
            time.sleep(0.02)
    _, err = worker.communicate(timeout=300)  # the cluster is stopped (and deleted) by now
    assert worker.returncode == 1, err
    assert "Traceback" not in err
    (line,) = [x for x in err.splitlines() if x.startswith("error:")]
    assert line.startswith(f"error: the sweep's database {url} failed: "), err
