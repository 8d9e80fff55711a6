"""`resdsl serve`'s JSON API without a browser: the figures, the same errors as `resdsl check`, the bounds
on a request (body size, spec size, time) and the import restriction, with their exact texts."""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from resdsl.serve.server import MAX_BODY, Site, make_server
from resdsl.serve.worker import Runner

ROOT = Path(__file__).resolve().parent.parent
CIFAR20 = (ROOT / "specs" / "cifar20.rd").read_text()
OUTSIDE_HINT = "imports may name the standard library (std.rd) and files in {folder}"


class Client:
    def __init__(self, port: int) -> None:
        self.port = port

    def request(self, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        data = json.loads(response.read())
        conn.close()
        return response.status, data

    def post(self, endpoint: str, spec: str, **fields) -> dict:
        body = json.dumps({"spec": spec, **fields}).encode()
        status, data = self.request("POST", endpoint, body, {"Content-Type": "application/json"})
        assert status == 200, data
        return data


def serve(folder: Path, shown: str, seconds: float = 10.0) -> Iterator[Client]:
    site = Site(path=shown, text=(folder / Path(shown).name).read_text(), roots=(str(folder),), runner=Runner(seconds))
    site.quiet = True
    server = make_server(site, 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Client(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def client() -> Iterator[Client]:
    cwd = os.getcwd()
    os.chdir(ROOT)  # paths shown as `resdsl check` run from the checkout shows them
    try:
        yield from serve(ROOT / "specs", "specs/cifar20.rd")
    finally:
        os.chdir(cwd)


def test_check_gives_the_figures_and_the_params(client: Client) -> None:
    answer = client.post("/api/check", CIFAR20)
    assert answer["ok"] and answer["summary"]["params"] == 269_722 and answer["summary"]["layers"] == 20
    assert [(r["stage"], r["output"], r["params"]) for r in answer["report"]["rows"]][1] == (
        "conv2",
        "16x32x32",
        "14,016",
    )
    assert answer["report"]["totals"]["flops"] == "40,551,040"
    assert {"name": "n", "default": "3", "line": 6, "path": "specs/cifar20.rd"} in answer["params"]
    five = client.post("/api/check", CIFAR20.replace("param n = 3", "param n = 5"))
    assert five["summary"]["params"] == 464_154
    overridden = client.post("/api/check", CIFAR20, sets={"n": "5", "shortcut": "B", "gone": "1"})
    assert (overridden["summary"]["layers"], overridden["shortcut"], overridden["ignored"]) == (32, "B", ["gone"])


def test_errors_are_those_of_resdsl_check(client: Client, tmp_path: Path) -> None:
    broken = CIFAR20.replace("basic(16)", "basik(16)")
    answer = client.post("/api/check", broken)
    (error,) = answer["errors"]
    assert (error["line"], error["col"], error["in_editor"]) == (14, 19, True)
    assert (error["message"], error["hint"]) == ("unknown block `basik`", "did you mean `basic`?")
    (tmp_path / "specs").mkdir()
    (tmp_path / "specs" / "cifar20.rd").write_text(broken)
    cli = subprocess.run(
        [sys.executable, "-m", "resdsl", "check", "specs/cifar20.rd"], cwd=tmp_path, capture_output=True, text=True
    )
    assert cli.stderr == error["rendered"] + "\n"
    bad_set = client.post("/api/check", CIFAR20, sets={"n": "1e999"})
    assert bad_set["errors"][0]["field"] == "n"
    assert bad_set["errors"][0]["message"] == "n: the number 1e999 is out of range (at most 1e+18)"


def test_diagram_and_model(client: Client) -> None:
    collapsed = client.post("/api/diagram", CIFAR20, view="collapsed")
    assert collapsed["svg"].lstrip().startswith("<?xml") and 'id="section_conv3"' in collapsed["svg"]
    block = client.post("/api/diagram", CIFAR20, view="block", block="conv3.1")
    assert "conv3.1" in block["svg"]
    unknown = client.post("/api/diagram", CIFAR20, view="block", block="conv9")
    assert unknown["errors"][0]["message"].startswith("--block conv9: `cifar_resnet20` has no stage or block")
    model = client.post("/api/model", CIFAR20, sets={"n": "5"})
    assert model["filename"] == "model.py" and "def build_model(" in model["source"]
    assert client.post("/api/model", "network {")["ok"] is False


def test_the_request_size_is_bounded(client: Client) -> None:
    status, data = client.request(
        "POST", "/api/check", b"", {"Content-Type": "application/json", "Content-Length": str(MAX_BODY + 1)}
    )
    assert status == 413
    assert data == {
        "error": "the request is 2,065,537 bytes, more than the limit of 2,065,536 bytes (a spec may have at most 1,000,000)"
    }
    answer = client.post("/api/check", CIFAR20 + "#" * (1_000_001 - len(CIFAR20.encode())))
    assert answer["errors"][0]["rendered"] == (
        "error: cannot read spec `specs/cifar20.rd`: it is 1,000,001 bytes, more than the limit of 1,000,000 bytes for a spec file"
    )
    status, data = client.request(
        "POST", "/api/check", b"spec=x", {"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert (status, data) == (415, {"error": "send the request as application/json"})
    status, data = client.request("GET", "/api/spec", headers={"Host": "evil.example:80"})
    assert (status, data) == (421, {"error": f"this server answers only to 127.0.0.1:{client.port}"})
    status, data = client.request("GET", "/api/spec")
    assert (status, data["path"], data["text"]) == (200, "specs/cifar20.rd", CIFAR20)


def test_a_request_is_stopped_at_the_time_limit(tmp_path: Path) -> None:
    (tmp_path / "net.rd").write_text(CIFAR20)
    for client in serve(tmp_path, str(tmp_path / "net.rd"), seconds=0.3):
        body = json.dumps({"spec": CIFAR20, "sets": {"n": "3000"}}).encode()
        status, data = client.request("POST", "/api/check", body, {"Content-Type": "application/json"})
        assert status == 504
        assert data == {
            "error": "the analysis took longer than the limit of 0.3 s per request and was stopped; a network "
            "this large is better checked with `resdsl check` (or serve it with a larger --timeout)"
        }
        assert client.post("/api/check", CIFAR20, sets={"n": "1"})["summary"]["layers"] == 8  # it carries on


def test_imports_reach_only_the_standard_library_and_files_beside_the_spec(tmp_path: Path) -> None:
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "net.rd").write_text(CIFAR20)
    (folder / "mine.rd").write_text("block twice(c) { conv 3x3, c; conv 3x3, c }\n")
    (tmp_path / "secret.rd").write_text("param secret = 1\n")
    (folder / "link.rd").symlink_to(tmp_path / "secret.rd")
    shown = str(folder / "net.rd")
    for client in serve(folder, shown):
        beside = client.post("/api/check", CIFAR20.replace('import "std.rd"', 'import "std.rd"\nimport "mine.rd"'))
        assert beside["ok"], beside
        spec = CIFAR20.replace(
            'import "std.rd"', 'import "std.rd"\nimport "/etc/passwd"\nimport "../secret.rd"\nimport "link.rd"'
        )
        errors = client.post("/api/check", spec)["errors"]
        hint = OUTSIDE_HINT.format(folder=folder)
        assert [(e["line"], e["message"], e["hint"]) for e in errors] == [
            (
                line,
                f'cannot import "{name}": only the standard library and files beside the spec can be imported here',
                hint,
            )
            for name, line in (("/etc/passwd", 5), ("../secret.rd", 6), ("link.rd", 7))
        ]
        assert errors[0]["rendered"].startswith(f'{shown}:5:1: error: cannot import "/etc/passwd"')


def test_the_command_refuses_a_missing_spec_and_a_taken_port(tmp_path: Path) -> None:
    import socket

    def serve_cli(*args: str) -> subprocess.CompletedProcess:
        command = [sys.executable, "-m", "resdsl", "serve", *args]
        return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=60)

    missing = serve_cli("nope.rd")
    assert (missing.returncode, missing.stderr) == (1, "error: cannot read spec `nope.rd`: no such file\n")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        busy = serve_cli("specs/cifar20.rd", "--port", str(port))
    assert busy.returncode == 2
    assert (
        busy.stderr == f"error: --port {port}: 127.0.0.1:{port} is in use; choose another (--port 0 picks a free one)\n"
    )
