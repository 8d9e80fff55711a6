"""A throwaway PostgreSQL cluster for the tests: Debian's server binaries (/usr/lib/postgresql/*/bin, the
`postgresql` package that .ci/run installs), initdb into a fresh folder, pg_ctl start on a free port of
127.0.0.1 with trust authentication, one database, stopped and deleted afterwards. PostgreSQL refuses to run
as root, so as root the cluster belongs to the `postgres` user the package creates (runuser)."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def server_bin() -> Path | None:
    """The newest installed PostgreSQL's bin folder, or None."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parent.parent.name))
    return Path(found[-1]).parent if found else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, port: int) -> None:
        self.port = port

    def database(self, name: str) -> str:
        """A new database; its URL (user resdsl, no password)."""
        import psycopg

        with psycopg.connect(f"host=127.0.0.1 port={self.port} user=resdsl dbname=postgres", autocommit=True) as c:
            c.execute(f"CREATE DATABASE {name}")
        return f"postgresql://resdsl@127.0.0.1:{self.port}/{name}"


@contextmanager
def cluster() -> Iterator[Server]:
    """Start a cluster and yield it; stop and delete it afterwards."""
    bindir = server_bin()
    assert bindir is not None, "no PostgreSQL server: apt-get install postgresql"
    home = Path(tempfile.mkdtemp(prefix="resdsl-pg-"))
    prefix: list[str] = []
    if os.geteuid() == 0:
        owner = pwd.getpwnam("postgres")
        os.chown(home, owner.pw_uid, owner.pw_gid)
        prefix = ["runuser", "-u", "postgres", "--"]
    data, port = home / "data", _free_port()

    def run(*args: str) -> None:
        subprocess.run([*prefix, *args], check=True, capture_output=True, text=True, timeout=120)

    try:
        run(str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "resdsl", "-E", "UTF8", "--no-sync")
        options = f"-p {port} -k {home} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=40"
        run(str(bindir / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(home / "log"), "-w", "start")
        try:
            yield Server(port)
        finally:
            run(str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop")
    finally:
        shutil.rmtree(home, ignore_errors=True)
