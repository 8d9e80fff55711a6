"""`resdsl serve`'s HTTP server (the standard library's ThreadingHTTPServer, on 127.0.0.1 only): the page
and its files from package data, and a JSON API whose answers come from worker processes.

    GET  /                 the page (static/index.html; app.js and style.css under /static/)
    GET  /api/spec         the served spec: its path, text and the --set values it was served with
    POST /api/check        {spec, sets}                 -> errors | summary, params, report
    POST /api/diagram      {spec, sets, view, block}    -> errors | svg
    POST /api/model        {spec, sets}                 -> errors | filename, source (model.py)

Bounds: a request body of at most MAX_BODY bytes (the spec itself: the CLI's MAX_SPEC_BYTES), a socket
timeout for slow clients, a time limit per analysis (worker.py), a Host header naming this server (no
DNS rebinding) and JSON bodies only (no cross-site form posts)."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib.resources import files
from pathlib import Path
from typing import Any

from resdsl.lang.imports import MAX_SPEC_BYTES
from resdsl.serve import analyze
from resdsl.serve.worker import Busy, Runner, TimeLimit, WorkerFailed

MAX_BODY = 2 * MAX_SPEC_BYTES + 65_536  # the spec as JSON (quotes and newlines escaped) and the overrides
MAX_SETS = 100  # overrides in one request
SOCKET_SECONDS = 20  # a client that sends its request slower than this is dropped
STATIC = {  # the page's files: a fixed list, so no path reaches outside the package
    "/": ("index.html", "text/html; charset=utf-8"),
    "/static/app.js": ("app.js", "text/javascript; charset=utf-8"),
    "/static/editor.js": ("editor.js", "text/javascript; charset=utf-8"),
    "/static/style.css": ("style.css", "text/css; charset=utf-8"),
}
CSP = "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'"
ENDPOINTS = {"/api/check": analyze.check, "/api/diagram": analyze.diagram, "/api/model": analyze.model}


@dataclass
class Site:
    """What is served: the spec (its shown path, text, folder) and the workers."""

    path: str
    text: str  # the spec's text when served (or the example's)
    roots: tuple[str, ...]
    runner: Runner
    sets: dict[str, str] = field(default_factory=dict)
    quiet: bool = False
    file: str | None = None  # the spec file, read again for each new page (edits on disk show on reload)

    def current_text(self) -> str:
        if self.file is not None:
            from resdsl.lang.imports import SpecReadError, read_spec

            try:
                self.text = read_spec(Path(self.file))
            except SpecReadError:
                pass  # gone or unreadable now: the last text read
        return self.text


class BadRequest(Exception):
    def __init__(self, status: HTTPStatus, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class Handler(BaseHTTPRequestHandler):
    server_version = "resdsl-serve"
    timeout = SOCKET_SECONDS
    site: Site  # set on the subclass make_server builds

    def do_GET(self) -> None:
        try:
            self._check_host()
            path = self.path.partition("?")[0]
            if path == "/api/spec":
                s = self.site
                self._json(HTTPStatus.OK, {"path": s.path, "text": s.current_text(), "sets": s.sets})
            elif path in STATIC:
                name, kind = STATIC[path]
                self._send(HTTPStatus.OK, (files("resdsl.serve") / "static" / name).read_bytes(), kind)
            else:
                raise BadRequest(HTTPStatus.NOT_FOUND, f"no page {path}")
        except BadRequest as err:
            self._json(err.status, {"error": err.message})

    def do_POST(self) -> None:
        try:
            self._check_host()
            fn = ENDPOINTS.get(self.path)
            if fn is None:
                raise BadRequest(HTTPStatus.NOT_FOUND, f"no endpoint {self.path}")
            body = self._body()
            req = analyze.Request(self.site.path, self.site.roots, body["spec"], body["sets"])
            args: tuple[Any, ...] = (req,)
            if fn is analyze.diagram:
                args = (req, _text(body, "view", "collapsed"), body.get("block") and _text(body, "block", ""))
            answer = self.site.runner.call(fn, *args)
        except BadRequest as err:
            self._json(err.status, {"error": err.message})
            return
        except TimeLimit as err:
            self._json(HTTPStatus.GATEWAY_TIMEOUT, {"error": str(err)})
            return
        except Busy as err:
            self._json(HTTPStatus.SERVICE_UNAVAILABLE, {"error": str(err)})
            return
        except WorkerFailed as err:
            self._json(HTTPStatus.INTERNAL_SERVER_ERROR, {"error": str(err)})
            return
        self._json(HTTPStatus.OK, answer)

    # ------------------------------------------------------------ requests

    def _check_host(self) -> None:
        port = self.server.server_address[1]
        hosts = {f"127.0.0.1:{port}", f"localhost:{port}"} | ({"127.0.0.1", "localhost"} if port == 80 else set())
        if self.headers.get("Host") not in hosts:
            raise BadRequest(HTTPStatus.MISDIRECTED_REQUEST, f"this server answers only to 127.0.0.1:{port}")

    def _body(self) -> dict[str, Any]:
        """The request's JSON object: `spec` (text) and `sets` (name -> text), checked and bounded."""
        if self.headers.get("Content-Type", "").partition(";")[0].strip() != "application/json":
            raise BadRequest(HTTPStatus.UNSUPPORTED_MEDIA_TYPE, "send the request as application/json")
        length = self.headers.get("Content-Length")
        if length is None or not length.isdigit():
            raise BadRequest(HTTPStatus.LENGTH_REQUIRED, "the request needs a Content-Length")
        if int(length) > MAX_BODY:
            self.close_connection = True  # its body is not read
            raise BadRequest(
                HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                f"the request is {int(length):,} bytes, more than the limit of {MAX_BODY:,} bytes "
                f"(a spec may have at most {MAX_SPEC_BYTES:,})",
            )
        try:
            raw = self.rfile.read(int(length))
        except TimeoutError:
            raise BadRequest(HTTPStatus.REQUEST_TIMEOUT, "the request body came too slowly") from None
        try:
            body = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            raise BadRequest(HTTPStatus.BAD_REQUEST, f"the request is not JSON: {err}") from None
        if not isinstance(body, dict) or not isinstance(body.get("spec"), str):
            raise BadRequest(HTTPStatus.BAD_REQUEST, "the request needs `spec`, the spec's text")
        sets = body.get("sets") or {}
        if not isinstance(sets, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in sets.items()):
            raise BadRequest(HTTPStatus.BAD_REQUEST, "`sets` maps a param's name to its value as text")
        if len(sets) > MAX_SETS:
            raise BadRequest(HTTPStatus.BAD_REQUEST, f"at most {MAX_SETS} overrides in one request")
        body["sets"] = {k.strip(): v.strip() for k, v in sets.items() if k.strip() and v.strip()}
        return body

    # ------------------------------------------------------------ answers

    def _json(self, status: HTTPStatus, data: dict[str, Any]) -> None:
        self._send(status, json.dumps(data).encode("utf-8"), "application/json")

    def _send(self, status: HTTPStatus, data: bytes, kind: str) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Cache-Control", "no-store")
            self.send_header("Content-Security-Policy", CSP)
            self.send_header("X-Content-Type-Options", "nosniff")
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):  # the page went away (a newer request replaced it)
            self.close_connection = True

    def log_message(self, format: str, *args: Any) -> None:
        if not self.site.quiet:
            sys.stderr.write(f"{self.address_string()} - {format % args}\n")


def _text(body: dict[str, Any], key: str, default: str) -> str:
    value = body.get(key, default)
    if not isinstance(value, str) or len(value) > 200:
        raise BadRequest(HTTPStatus.BAD_REQUEST, f"`{key}` is a short text")
    return value


def make_server(site: Site, port: int) -> ThreadingHTTPServer:
    """The server bound to 127.0.0.1:`port` (0: a free port); raises OSError if it cannot bind."""
    handler = type("SiteHandler", (Handler,), {"site": site})
    server = ThreadingHTTPServer(("127.0.0.1", port), handler)
    server.daemon_threads = True
    return server


def serve(site: Site, port: int, announce: Callable[[str], None]) -> None:
    """Serve until Ctrl-C; `announce` gets the line saying where."""
    import errno

    from resdsl.diagnostics import UsageError

    try:
        server = make_server(site, port)
    except OSError as err:
        if err.errno == errno.EADDRINUSE:
            raise UsageError(
                f"--port {port}: 127.0.0.1:{port} is in use; choose another (--port 0 picks a free one)"
            ) from None
        raise UsageError(f"--port {port}: cannot listen on 127.0.0.1:{port}: {err.strerror or err}") from None
    site.runner.start()
    announce(f"serving {site.path} at http://127.0.0.1:{server.server_address[1]}/ (Ctrl-C stops)")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
