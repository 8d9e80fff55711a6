"""The `resdsl` console script: a result cache in front of the click CLI (resdsl.cli).

Starting Python takes ~15 ms here; importing networkx, lark and click takes ~400 ms more before any
work. `resdsl check` and `resdsl info` are pure functions of their inputs, so a repeated run replays
the stored output and exit code without importing any of them. This module therefore imports only
modules that Python has already loaded at start-up (os, sys, marshal, codecs) and the built-in
blake2b, and is kept small (it is compiled on every run where bytecode is not written); the miss
path (run, tee, store) lives in resdsl/_record.py.

An entry is found by a key over: the argv after the program name, the current directory, the Python
interpreter, the stdout/stderr encodings, the tool itself (path, size and mtime of every resdsl
module, grammar and bundled spec) and the directories on sys.path (installing or upgrading lark,
networkx or click changes site-packages' mtime). It is used only if every file the stored run
read (the spec and all its imports, as resolve.py recorded them) still has the same content, every
path resolves to the same file, and every import candidate that was absent (a file that would now
shadow a bundled spec) is still absent.

Only `check` and `info` runs that end with exit 0 or 1 are stored; never usage errors (2), `--help`,
`--version`, interrupted runs or runs whose output could not be written. `RESDSL_NO_CACHE=1` bypasses
the cache; `RESDSL_CACHE_DEBUG=1` says on stderr what it did. Entries live in
`$XDG_CACHE_HOME/resdsl/results/` (default `~/.cache/resdsl/results/`), the newest 256 are kept, each
written atomically; any problem reading one is a miss.
"""

import codecs
import marshal
import os
import sys

try:
    from _blake2 import blake2b  # built in: hashlib would load OpenSSL (~5 ms)
except ImportError:  # pragma: no cover
    from hashlib import blake2b

COMMANDS = ("check", "info")
NO_CACHE_FLAGS = ("-h", "--help", "--version")
MAX_ENTRIES = 256
_FORMAT = 1  # bump when the key or the entry layout changes
_DIGEST = 32
_PACKAGE = os.path.dirname(os.path.realpath(__file__))


def cache_root() -> str:
    """`$XDG_CACHE_HOME/resdsl`, else `~/.cache/resdsl`: the LALR tables (parse.py) and the results."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "resdsl")


def main() -> None:
    """Console script and `python -m resdsl`."""
    sys.exit(run(sys.argv[1:]))


def run(args: list[str]) -> int | str | None:
    """Run `resdsl ARGS`; returns the exit code (SystemExit's argument) instead of exiting."""
    reason = _bypass(args)
    if reason:
        if reason != "not cacheable":
            _debug(f"bypass ({reason})")
        return _plain(args)
    try:
        cache = _Cache(args)
        hit = cache.lookup()
    except Exception as err:  # noqa: BLE001 - the cache must never break the tool
        _debug(f"bypass ({type(err).__name__}: {err})")
        return _plain(args)
    if hit is not None:
        _debug("hit")
        return _replay(*hit)
    _debug(f"miss ({cache.why})")
    return cache.record()


def _plain(args: list[str]) -> int | str | None:
    from .cli import main as cli_main

    try:
        cli_main(args)
    except SystemExit as exc:
        return exc.code
    return 0


def _bypass(args: list[str]) -> str:
    if not args or args[0] not in COMMANDS or any(a in NO_CACHE_FLAGS for a in args):
        return "not cacheable"
    if os.environ.get("RESDSL_NO_CACHE", "") not in ("", "0"):
        return "RESDSL_NO_CACHE"
    for stream in (sys.stdout, sys.stderr):
        encoding = getattr(stream, "encoding", None)
        try:  # click rewraps streams it finds misconfigured as ASCII; leave those runs alone
            if not encoding or codecs.lookup(encoding).name == "ascii":
                return "stream encoding"
        except LookupError:
            return "stream encoding"
    return ""


def _debug(message: str) -> None:
    if os.environ.get("RESDSL_CACHE_DEBUG", "") not in ("", "0"):
        sys.stderr.write(f"resdsl cache: {message}\n")
        sys.stderr.flush()


def _hash(data: bytes) -> bytes:
    return blake2b(data, digest_size=_DIGEST).digest()


def tool_fingerprint() -> list[tuple]:
    """(path, size, mtime_ns) of every resdsl module, grammar and bundled spec, and the mtime of every
    sys.path directory: what decides the output besides the spec files themselves."""
    files: list[tuple] = []
    _walk(_PACKAGE, files, py_only=True)
    for name in ("grammars", "specs"):  # as resources.resource_dir resolves them: wheel, else checkout
        bundled = os.path.join(_PACKAGE, name)
        _walk(bundled if os.path.isdir(bundled) else os.path.join(os.path.dirname(_PACKAGE), name), files, False)
    for entry in sys.path:
        try:
            files.append((entry, os.stat(entry or ".").st_mtime_ns))
        except OSError:
            files.append((entry, None))
    return files


def _walk(folder: str, out: list[tuple], py_only: bool) -> None:
    try:
        with os.scandir(folder) as it:
            entries = sorted(it, key=lambda e: e.name)
    except OSError:
        out.append((folder, None))
        return
    for entry in entries:
        if entry.name == "__pycache__":
            continue
        if entry.is_dir():
            _walk(entry.path, out, py_only)
        elif not py_only or entry.name.endswith(".py"):
            st = entry.stat()
            out.append((entry.path, st.st_size, st.st_mtime_ns))


def _holds(dep: tuple) -> bool:
    """Whether one recorded input is unchanged."""
    kind, path, value = dep
    if kind == "read":
        try:
            with open(path, "rb") as f:
                return _hash(f.read()) == value
        except OSError:
            return False
    if kind == "absent":
        return not os.path.exists(path)
    if kind == "resolves":
        return os.path.realpath(path) == value
    return False


class _Cache:
    def __init__(self, args: list[str]) -> None:
        self.args = list(args)
        self.folder = os.path.join(cache_root(), "results")
        self.key = self._key()
        self.path = os.path.join(self.folder, self.key)

    def _key(self) -> str:
        streams = tuple((getattr(s, "encoding", None), getattr(s, "errors", None)) for s in (sys.stdout, sys.stderr))
        material = (
            _FORMAT,
            sys.executable,
            sys.version,
            sys.flags.optimize,
            os.getcwd(),
            self.args,
            streams,
            tool_fingerprint(),
        )
        return blake2b(repr(material).encode("utf-8", "backslashreplace"), digest_size=20).hexdigest()

    def lookup(self) -> tuple[list, int] | None:
        """The stored (chunks, exit code), or None (and why, in self.why)."""
        self.why = "no entry"
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except OSError:
            return None
        try:
            if hasattr(os, "getuid") and os.fstat(fd).st_uid != os.getuid():
                self.why = "entry owned by another user"
                return None  # only trust entries this user wrote
            with open(fd, "rb", closefd=False) as f:
                blob = f.read()
        finally:
            os.close(fd)
        digest, payload = blob[:_DIGEST], blob[_DIGEST:]
        if len(digest) != _DIGEST or _hash(payload) != digest:
            self.why = "corrupt entry"
            return None  # truncated or damaged: never hand it to marshal
        deps, chunks, code = marshal.loads(payload)
        for dep in deps:
            if not _holds(dep):
                self.why = f"{dep[0]} {dep[1]} changed"
                return None
        try:
            os.utime(self.path)  # recently used entries survive pruning
        except OSError:
            pass
        return chunks, code

    def record(self) -> int | str | None:
        from ._record import record  # the miss path: its imports and code cost nothing on a hit

        return record(self)


def _replay(chunks: list, code: int) -> int:
    try:
        for tag, text in chunks:
            stream = sys.stdout if tag == 1 else sys.stderr
            stream.write(text)
            stream.flush()
    except BrokenPipeError:  # as click does: `resdsl info x | head -1` ends quietly
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
    return code
