"""What `resdsl sweep` is given that is wrong: a --join URL that does not parse, a driver that is missing or
asynchronous, an SQLite file that cannot be, a lock held or a server that does not answer (a timeout, not an
endless wait), a sweep.json with wrongly typed fields, a grid too big to list. Each is one `error:` line (and
a hint), exit 1 (2 for the command line), never a traceback; the exact texts are docs/reliability.md's."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

import pytest
from conftest import run_without
from test_sweep import tiny_spec

pytest.importorskip("optuna")


def sweep(*args, env: dict[str, str] | None = None):
    from click.testing import CliRunner

    from resdsl.cli.main import main

    return CliRunner(env=env).invoke(main, ["sweep", *map(str, args)])


def fails(result, code: int, text: str) -> None:
    assert result.exit_code == code, result.output
    assert result.stderr == text + "\n"
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("postgresql://u@host:abc/db", "the port `abc` is not a number from 1 to 65535"),
        ("postgresql://u@host:99999/db", "the port `99999` is not a number from 1 to 65535"),
        ("postgresql://u:secret@ho st/db", "the host `ho st` is not a host name or an IP address"),
        ("mysql+pymysql://u@[::1/db", "the host `[::1` is not a host name or an IP address"),
        ("sqlite://", "names no database file; use sqlite:///PATH"),
        ("sqlite://host/x.db", "an SQLite URL names no host; use sqlite:///RELATIVE/PATH or sqlite:////ABSOLUTE"),
    ],
)
def test_a_malformed_url_is_a_usage_error_before_optuna(tmp_path: Path, url: str, message: str) -> None:
    shown = url.replace(":secret@", ":***@")
    fails(sweep(tiny_spec(tmp_path), "--grid", "n=1,2", "--join", url, "--out", tmp_path / "sw"), 2,
          f"error: --join {shown}: {message}")  # fmt: skip
    assert not (tmp_path / "sw").exists()


def test_a_missing_driver_names_its_package(tmp_path: Path) -> None:
    spec, out = tiny_spec(tmp_path), tmp_path / "sw"
    fails(
        sweep(spec, "--grid", "n=1,2", "--join", "mysql+pymysql://u@db.example.org/x", "--out", out),
        1,
        "error: --join mysql+pymysql://u@db.example.org/x: the database driver `pymysql` is not installed\n"
        "hint: pip install pymysql",
    )
    fails(
        sweep(spec, "--grid", "n=1,2", "--join", "postgresql+pg8000://u@db.example.org/x", "--out", out),
        1,
        "error: --join postgresql+pg8000://u@db.example.org/x: the database driver `pg8000` is not installed\n"
        "hint: pip install pg8000",
    )
    fails(
        sweep(spec, "--grid", "n=1,2", "--join", "sqlite+aiosqlite:///x.db", "--out", out),
        1,
        "error: --join sqlite+aiosqlite:///x.db: aiosqlite is an asyncio driver, which Optuna's storage cannot use\n"
        "hint: use sqlite:///x.db",
    )
    assert not out.exists()
    # a machine without psycopg (nor psycopg2): `postgresql://` names the extra that brings it
    args = ["sweep", str(spec), "--grid", "n=1,2", "--join", "postgresql://u:pw@db.example.org/x", "--out", str(out)]
    result = run_without(*args, blocked=("psycopg", "psycopg2"))
    assert result.stderr == (
        "error: --join postgresql://u:***@db.example.org/x: the database driver `psycopg` is not installed\n"
        "hint: pip install 'resdsl[postgres]' (psycopg 3)\nexit 1\n"
    )


def test_an_sqlite_file_that_cannot_be_is_refused_at_once(tmp_path: Path) -> None:
    started = time.monotonic()
    fails(
        sweep(tiny_spec(tmp_path), "--grid", "n=1,2", "--join", "sqlite:////proc/self/x.db", "--out", tmp_path / "s"),
        1,
        "error: --join sqlite:////proc/self/x.db: cannot write /proc/self/x.db "
        "(no permission, or not a file system that holds files)",
    )
    assert time.monotonic() - started < 10  # it retried its lock forever


def test_a_held_lock_and_a_silent_server_time_out(tmp_path: Path) -> None:
    from filelock import FileLock

    spec, env = tiny_spec(tmp_path), {"RESDSL_DB_TIMEOUT": "1"}
    db = tmp_path / "x.db"
    with FileLock(f"{db}.lock"):  # another process creating the tables, stuck
        fails(
            sweep(spec, "--grid", "n=1,2", "--join", f"sqlite:///{db}", "--out", tmp_path / "a", env=env),
            1,
            f"error: cannot open the sweep's database sqlite:///{db}: its lock {db}.lock is held by another "
            f"process and was not released in 1 s\nhint: wait for it, or set RESDSL_DB_TIMEOUT=SECONDS",
        )
    pytest.importorskip("psycopg")
    with socket.socket() as silent:  # accepts connections, never says a word
        silent.bind(("127.0.0.1", 0))
        silent.listen(4)
        port = silent.getsockname()[1]
        url = f"postgresql://u:pw@127.0.0.1:{port}/db"
        result = sweep(spec, "--grid", "n=1,2", "--join", url, "--out", tmp_path / "b", env=env)
    assert result.exit_code == 1, result.output
    assert result.stderr.startswith(
        f"error: cannot open the sweep's database postgresql://u:***@127.0.0.1:{port}/db: "
        "the server did not answer in 1 s ("
    )
    assert result.stderr.endswith(")\nhint: set RESDSL_DB_TIMEOUT=SECONDS\n")
    fails(sweep(spec, "--grid", "n=1,2", "--out", tmp_path / "c", env={"RESDSL_DB_TIMEOUT": "soon"}), 2,
          "error: RESDSL_DB_TIMEOUT=soon: not a number of seconds")  # fmt: skip
    assert not (tmp_path / "c").exists()


def test_grids_past_the_limit_are_refused_before_allocating(tmp_path: Path) -> None:
    spec = tiny_spec(tmp_path)
    started = time.monotonic()
    fails(sweep(spec, "--seeds", "100000000"), 2,
          "error: the grid has 100,000,000 points (seed 100,000,000), more than the limit of 10,000; "
          "split it into several sweeps")  # fmt: skip
    big = ",".join(str(i) for i in range(200))
    fails(sweep(spec, "--grid", f"n={big}", "--grid", f"batch={big}"), 2,
          "error: the grid has 40,000 points (n 200 x batch 200 x seed 1), more than the limit of 10,000; "
          "split it into several sweeps")  # fmt: skip
    assert time.monotonic() - started < 10


def _sweep_dir(tmp_path: Path, one_thread) -> Path:
    """A finished two-point sweep whose study is in another folder's SQLite file (--join sqlite:///...)."""
    spec, out = tiny_spec(tmp_path), tmp_path / "sw"
    (tmp_path / "db").mkdir()
    url = f"sqlite:///{tmp_path / 'db' / 'shared.db'}"
    result = sweep(spec, "--grid", "n=1,2", "--iterations", "2", "--eval-every", "1", "--join", url, "--out", out)
    assert result.exit_code == 0, result.output
    return out


def test_status_reads_the_storage_sweep_json_names(tmp_path: Path, one_thread) -> None:
    out = _sweep_dir(tmp_path, one_thread)
    record = json.loads((out / "sweep.json").read_text())
    assert record["storage"] == f"sqlite:///{tmp_path / 'db' / 'shared.db'}"
    result = sweep("--status", out)  # no --join: sweep.json says where the study is
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[-1] == "2 done, 0 running, 0 failed, 0 stopped, 0 pending"
    shared = record["storage"]
    import sqlite3

    holder = sqlite3.connect(tmp_path / "db" / "shared.db", isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")  # another process in the middle of a long write
    try:
        fails(sweep("--status", out, env={"RESDSL_DB_TIMEOUT": "1"}), 1,
              f"error: cannot open the sweep's database {shared}: it stayed locked by another process for 1 s\n"
              "hint: set RESDSL_DB_TIMEOUT=SECONDS")  # fmt: skip
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    again = sweep(tiny_spec(tmp_path), "--grid", "n=1,2", "--iterations", "2", "--eval-every", "1", "--out", out)
    fails(again, 1, f"error: {out}'s study is in {shared}, not sqlite:///{out.resolve() / 'study.db'}; "
          "pass --join with that URL, or use another --out")  # fmt: skip
    record["storage"] = "postgresql://resdsl:***@db.example.org/sweeps"
    (out / "sweep.json").write_text(json.dumps(record))
    fails(sweep("--status", out), 1,
          f"error: {out}'s study is in postgresql://resdsl:***@db.example.org/sweeps: pass --join URL "
          "(with its password)")  # fmt: skip
    record["storage"] = f"sqlite:///{tmp_path / 'gone.db'}"
    (out / "sweep.json").write_text(json.dumps(record))
    fails(sweep("--status", out), 1,
          f"error: {out}'s study is in sqlite:///{tmp_path / 'gone.db'}, which does not exist; "
          "pass --join URL if it moved")  # fmt: skip


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda r: r["config"].update(axes="n=1,2"), '`config.axes` must be an object of lists of values, not "n=1,2"'),
        (lambda r: r["config"]["axes"].update(n=[1, 2]), "`config.axes.n` must be a list of values (strings that "
         "can name a run directory), not [1, 2]"),
        (lambda r: r["config"].update(train={"batch": "64"}), '`config.train.batch` must be a whole number >= 1, '
         'not "64"'),
        (lambda r: r["config"].update(train={"lr": True}), "`config.train.lr` must be a number >= 0, not true"),
        (lambda r: r["config"].update(sets="n=3"), '`config.sets` must be a list of strings, not "n=3"'),
        (lambda r: r["config"].update(amp=1), "`config.amp` must be one of auto, bf16, fp16, off, not 1"),
        (lambda r: r["config"].update(spec_sha256=None), "`config.spec_sha256` must be a SHA-256, not null"),
        (lambda r: r["config"].update(colour="red"), "`config.colour` is not a field of a sweep"),
        (lambda r: r["config"].pop("spec"), "`config.spec` is missing"),
        (lambda r: r["config"]["axes"].update(seed=[str(i) for i in range(20000)]), "`config.axes`: the grid has "
         "40,000 points (n 2 x seed 20,000), more than the limit of 10,000; split it into several sweeps"),
        (lambda r: r.update(storage="bogus"), "`storage` bogus: not a database URL; use "
         "postgresql://USER:PASSWORD@HOST/DB, mysql+pymysql://... or sqlite:///PATH"),
        (lambda r: r.update(storage="postgresql://h:x/db"), "`storage` postgresql://h:x/db: the port `x` is not a "
         "number from 1 to 65535"),
        (lambda r: r.update(storage=5), "`storage` must be a database URL, not 5"),
        (lambda r: r.update(format="resdsl-sweep-9"), '`format` must be "resdsl-sweep-1", not "resdsl-sweep-9"'),
        (lambda r: r.update(study=["x"]), '`study` must be a study name, not ["x"]'),
    ],
)  # fmt: skip
def test_sweep_json_is_checked_field_by_field(tmp_path: Path, change, message: str) -> None:
    from resdsl.experiments.sweepfile import FORMAT

    out = tmp_path / "sw"
    out.mkdir()
    record = {
        "format": FORMAT,
        "config": {"spec": "tiny.rd", "spec_sha256": "0" * 64, "axes": {"n": ["1", "2"], "seed": ["0"]}},
        "study": "resdsl-tiny-000000000000",
        "storage": f"sqlite:///{out / 'study.db'}",
    }
    change(record)
    (out / "sweep.json").write_text(json.dumps(record))
    fails(sweep("--status", out), 1, f"error: {out / 'sweep.json'}: {message}")


def test_status_of_what_is_no_sweep(tmp_path: Path) -> None:
    fails(sweep("--status", tmp_path / "nosuch"), 1, f"error: {tmp_path / 'nosuch'}: no such sweep directory")
    fails(sweep("--status", tmp_path), 1, f"error: {tmp_path} is no sweep directory (no sweep.json)")
    (tmp_path / "sweep.json").write_bytes(b"\xff{")
    fails(sweep("--status", tmp_path), 1,
          f"error: {tmp_path / 'sweep.json'}: not JSON; it is not a sweep.json resdsl wrote")  # fmt: skip


def test_a_sweep_into_a_directory_with_a_bad_sweep_json_names_the_field(tmp_path: Path) -> None:
    from resdsl.experiments.sweepfile import FORMAT

    out = tmp_path / "sw"
    out.mkdir()
    config = {"spec": "tiny.rd", "spec_sha256": "0" * 64, "axes": {"n": ["1", "2"]}, "train": {"batch": "64"}}
    (out / "sweep.json").write_text(json.dumps({"format": FORMAT, "config": config, "study": "s", "storage": None}))
    fails(sweep(tiny_spec(tmp_path), "--grid", "n=1,2", "--out", out), 1,
          f'error: {out / "sweep.json"}: `config.train.batch` must be a whole number >= 1, not "64"; use another --out')  # fmt: skip
