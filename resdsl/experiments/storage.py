"""The sweep's database (`--join URL`, or `DIR/study.db`): the URL checked before Optuna sees it (its scheme,
host and port, an SQLite file that can be created), its driver found (or the package to install named), and
the time a worker waits for a lock or a server (`RESDSL_DB_TIMEOUT`, 60 s). No Optuna here; SQLAlchemy only
to find the driver."""

from __future__ import annotations

import importlib.util
import os
import re
from pathlib import Path
from typing import Any

from resdsl.diagnostics import InputError, UsageError

SCHEMES = ("sqlite", "postgresql", "mysql")
TIMEOUT_ENV = "RESDSL_DB_TIMEOUT"
TIMEOUT_S = 60.0  # a lock held or a server silent this long is an error, not an endless wait
USAGE = "use postgresql://USER:PASSWORD@HOST/DB, mysql+pymysql://... or sqlite:///PATH"

# The module of each driver -> how to install it.
PACKAGES = {
    "psycopg": "pip install 'resdsl[postgres]' (psycopg 3)",
    "psycopg2": "pip install psycopg2-binary",
    "pg8000": "pip install pg8000",
    "pymysql": "pip install pymysql",
    "MySQLdb": "pip install mysqlclient, or use mysql+pymysql://... with pip install pymysql",
    "mysql": "pip install mysql-connector-python",
}
_HOST = re.compile(r"^[A-Za-z0-9_]([A-Za-z0-9_.\-]*[A-Za-z0-9_])?$")
_IPV6 = re.compile(r"^[0-9A-Fa-f:.]+(%[A-Za-z0-9_.\-]+)?$")


def timeout_s() -> float:
    """Seconds a worker waits for the database (a lock, a connection): RESDSL_DB_TIMEOUT, else 60."""
    text = os.environ.get(TIMEOUT_ENV, "").strip()
    try:
        value = float(text) if text else TIMEOUT_S
    except ValueError:
        raise UsageError(f"{TIMEOUT_ENV}={text}: not a number of seconds") from None
    if not 0 < value <= 86400:
        raise UsageError(f"{TIMEOUT_ENV}={text}: give seconds from 0 to 86400")
    return value


def hide_password(url: str) -> str:
    """The URL with its password replaced by ***, even when it does not parse."""
    return re.sub(r"^([^:/]+://[^:/@]*):[^@/]*@", r"\1:***@", url)


def check_url(url: str, what: str = "--join") -> str:
    """The URL's database kind (sqlite, postgresql, mysql); a UsageError naming what is wrong with it."""
    shown = f"{what} {hide_password(url)}"
    scheme, sep, rest = url.partition("://")
    kind = scheme.split("+", 1)[0].lower()
    if not sep or kind not in SCHEMES or not re.fullmatch(r"[a-z0-9]+(\+[a-z0-9_]+)?", scheme.lower()):
        raise UsageError(f"{shown}: not a database URL; {USAGE}")
    netloc = rest.split("/", 1)[0].split("?", 1)[0]
    if kind == "sqlite":
        path = rest.split("?", 1)[0][1:] if rest.startswith("/") else ""
        if netloc:
            raise UsageError(
                f"{shown}: an SQLite URL names no host; use sqlite:///RELATIVE/PATH or sqlite:////ABSOLUTE"
            )
        if not path or path == ":memory:":
            raise UsageError(f"{shown}: names no database file; use sqlite:///PATH")
        return kind
    _check_host_port(netloc.rpartition("@")[2], shown)
    try:
        from sqlalchemy.engine import make_url

        make_url(url)
    except ImportError:
        pass
    except Exception as err:  # sqlalchemy's ArgumentError, ValueError
        raise UsageError(f"{shown}: not a database URL ({err}); {USAGE}") from None
    return kind


def _check_host_port(hostport: str, shown: str) -> None:
    if hostport.startswith("["):
        host, closed, rest = hostport[1:].partition("]")
        if not closed or not _IPV6.match(host) or (rest and not rest.startswith(":")):
            raise UsageError(f"{shown}: the host `{hostport.rsplit(']:', 1)[0]}` is not a host name or an IP address")
        port = rest[1:] if rest else None
    else:
        host, colon, port_text = hostport.partition(":")
        port = port_text if colon else None
        if host and not _HOST.match(host):
            raise UsageError(f"{shown}: the host `{host}` is not a host name or an IP address")
    if port is not None and not (port.isdigit() and port.isascii() and 1 <= int(port) <= 65535):
        raise UsageError(f"{shown}: the port `{port}` is not a number from 1 to 65535")


def engine_url(url: str, what: str = "--join") -> str:
    """The URL SQLAlchemy is given: its driver named and importable. `postgresql://` takes psycopg 3, else
    psycopg2 (whichever is installed); an InputError names the package of a missing driver."""
    kind = check_url(url, what)
    shown = f"{what} {hide_password(url)}"
    scheme, _, rest = url.partition("://")
    if kind == "postgresql" and "+" not in scheme:
        found = next((m for m in ("psycopg", "psycopg2") if _installed(m)), None)
        if found is None:
            raise _missing(shown, "psycopg")
        url = f"postgresql+{found}://{rest}"
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import NoSuchModuleError

    parsed = make_url(url)
    try:
        dialect = parsed.get_dialect()
    except NoSuchModuleError:
        raise InputError(f"{shown}: SQLAlchemy has no driver `{parsed.get_driver_name()}` for {kind}") from None
    if getattr(dialect, "is_async", False):
        plain = f"{kind}://{rest}" if kind != "postgresql" else f"postgresql://{rest}"
        raise InputError(
            f"{shown}: {parsed.get_driver_name()} is an asyncio driver, which Optuna's storage cannot use\n"
            f"hint: use {hide_password(plain)}"
        )
    load = getattr(dialect, "import_dbapi", None) or dialect.dbapi
    try:
        load()
    except ImportError as err:
        raise _missing(shown, (err.name or parsed.get_driver_name()).split(".")[0]) from None
    return url


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def check_join(url: str) -> None:
    """Everything about a --join URL that can be known without connecting: its form, its driver, its file."""
    engine_url(url)
    check_sqlite_file(url)


def _missing(shown: str, module: str) -> InputError:
    return InputError(
        f"{shown}: the database driver `{module}` is not installed\nhint: {PACKAGES.get(module, f'pip install {module}')}"
    )


def sqlite_file(url: str) -> str | None:
    """The file of an SQLite URL (as SQLAlchemy reads it), None for a server."""
    scheme, _, rest = url.partition("://")
    if scheme.split("+", 1)[0].lower() != "sqlite":
        return None
    return rest.split("?", 1)[0][1:]


def check_sqlite_file(url: str, what: str = "--join") -> None:
    """An SQLite database file must be, or be creatable as, a regular file in a writable directory."""
    path = sqlite_file(url)
    if path is None:
        return
    shown = f"{what} {hide_password(url)}"
    file = Path(path)
    if file.exists() and not file.is_file():
        raise InputError(f"{shown}: {path} is not a regular file")
    folder = file.parent if str(file.parent) else Path(".")
    if not folder.is_dir():
        raise InputError(f"{shown}: the folder {folder} does not exist")
    probe = file if file.exists() else folder
    if not os.access(probe, os.W_OK) or not _can_create(folder):
        raise InputError(f"{shown}: cannot write {path} (no permission, or not a file system that holds files)")


def _can_create(folder: Path) -> bool:
    """Whether a file can be made in `folder` (SQLite needs its journal beside the database): /proc, a
    read-only mount or a folder of someone else's say no, whatever os.access answers."""
    import tempfile

    try:
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".resdsl-probe-"):
            return True
    except OSError:
        return False


def engine_kwargs(url: str) -> dict[str, Any]:
    """SQLAlchemy engine arguments: the lock or connection timeout of the driver, a pre-ping for servers."""
    seconds = timeout_s()
    scheme = url.partition("://")[0].lower()
    if scheme.startswith("sqlite"):
        return {"connect_args": {"timeout": seconds}}
    key = (
        "timeout" if scheme.endswith("pg8000") else "connection_timeout" if "connector" in scheme else "connect_timeout"
    )
    args: dict[str, Any] = {key: max(1, int(round(seconds)))}
    if scheme.startswith("postgresql+psycopg"):  # a table another session keeps locked: an error, not a wait
        args["options"] = f"-c lock_timeout={int(seconds * 1000)}"
    return {"pool_pre_ping": True, "connect_args": args}
