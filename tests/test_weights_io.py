"""`resdsl weights` against hostile files (issue 19): `rename` never writes onto its inputs (also through a
symlink), writes -o and --map whole or not at all, and an unwritable destination is one line; `check` refuses
text files, FIFOs, sparse and meta tensors and empty or sparse reference batches with one line each."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from resdsl.cli.main import main

TINY = """network tiny {
    input 3x8x8
    classes 3
    stem { conv 3x3, 4; bn; relu }
    head { avgpool global; fc classes }
}
"""


@pytest.fixture
def work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "t.rd").write_text(TINY)
    from resdsl.backends.pytorch.codegen import render_model
    from resdsl.backends.pytorch.verify import load_module
    from resdsl.ir.pipeline import load_network

    torch.manual_seed(0)
    model = load_module(render_model(load_network(tmp_path / "t.rd", {}), "t.rd")).build_model().eval()
    torch.save(model.state_dict(), tmp_path / "w.pt")
    x = torch.randn(2, 3, 8, 8)
    torch.save({"input": x, "output": model(x).detach()}, tmp_path / "ref.pt")
    (tmp_path / "link.pt").symlink_to("w.pt")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def run(*args: str):
    return CliRunner().invoke(main, list(args))


@pytest.mark.parametrize(
    "args, message",
    [
        (["-o", "w.pt"], "error: -o w.pt would overwrite the weights w.pt; choose another file\n"),
        (["-o", "link.pt"], "error: -o link.pt would overwrite the weights w.pt; choose another file\n"),
        (["-o", "t.rd"], "error: -o t.rd would overwrite the spec t.rd; choose another file\n"),
        (["-o", "o.pt", "--map", "t.rd"], "error: --map t.rd would overwrite the spec t.rd; choose another file\n"),
        (["-o", "o.pt", "--map", "w.pt"], "error: --map w.pt would overwrite the weights w.pt; choose another file\n"),
        (["-o", "o.pt", "--map", "o.pt"], "error: --map o.pt and -o o.pt are the same file; choose two names\n"),
    ],
    ids=["own-weights", "weights-via-symlink", "spec", "map-spec", "map-weights", "map-is-output"],
)
def test_rename_never_writes_onto_an_input(work: Path, args: list[str], message: str) -> None:
    before = {p.name: p.read_bytes() for p in work.iterdir() if p.is_file()}
    result = run("weights", "rename", "t.rd", "w.pt", *args)
    assert (result.exit_code, result.output) == (2, message)
    assert {p.name: p.read_bytes() for p in work.iterdir() if p.is_file()} == before


def test_rename_writes_both_files_or_neither(work: Path) -> None:
    result = run("weights", "rename", "t.rd", "w.pt", "-o", "out.pt", "--map", "nodir/m.json")
    assert (result.exit_code, result.output) == (1, "error: cannot write nodir/m.json: No such file or directory\n")
    assert sorted(p.name for p in work.iterdir()) == ["link.pt", "ref.pt", "t.rd", "w.pt"]  # no out.pt, no temp
    result = run("weights", "rename", "t.rd", "w.pt", "-o", "nodir/out.pt")
    assert (result.exit_code, result.output) == (1, "error: cannot write nodir/out.pt: No such file or directory\n")
    result = run("weights", "rename", "t.rd", "w.pt", "-o", "out.pt", "--map", "m.json")
    assert result.exit_code == 0, result.output
    assert list(torch.load("out.pt", weights_only=True)) == list(json.loads(Path("m.json").read_text()).values())


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_rename_to_a_full_disk_is_one_line(work: Path) -> None:
    result = run("weights", "rename", "t.rd", "w.pt", "-o", "/dev/full")
    assert (result.exit_code, result.output) == (1, "error: cannot write /dev/full: No space left on device\n")


def test_weights_that_are_no_tensors_file(work: Path) -> None:
    Path("text.pt").write_text("conv1.weight = 0.5\n")
    os.mkfifo("fifo.pt")
    expected = {
        "text.pt": "error: cannot read weights text.pt: not a file torch.save wrote, or it holds more than tensors\n",
        "fifo.pt": "error: cannot read weights fifo.pt: fifo.pt is not a regular file: it is a named pipe (FIFO)\n",
    }
    for name, message in expected.items():
        for command in ("check", "rename"):
            result = run("weights", command, "t.rd", name, *(["-o", "o.pt"] if command == "rename" else []))
            assert (result.exit_code, result.output) == (1, message)


def test_sparse_and_meta_tensors_are_refused(work: Path) -> None:
    state = torch.load("w.pt", weights_only=True)
    torch.save({**state, "fc.bias": state["fc.bias"].to_sparse()}, "sparse.pt")
    torch.save({**state, "fc.bias": torch.zeros(3, device="meta")}, "meta.pt")
    result = run("weights", "check", "t.rd", "sparse.pt")
    assert (result.exit_code, result.output) == (
        1,
        "error: sparse.pt: fc.bias is a sparse tensor (sparse_coo); store it dense (tensor.to_dense())\n",
    )
    result = run("weights", "check", "t.rd", "meta.pt")
    assert (result.exit_code, result.output) == (
        1,
        "error: meta.pt: fc.bias is a meta tensor (a shape without values); save the tensor's values\n",
    )


def test_empty_and_sparse_reference_batches_are_refused(work: Path) -> None:
    torch.save({"input": torch.zeros(0, 3, 8, 8), "output": torch.zeros(0, 3)}, "empty.pt")
    torch.save({"input": torch.zeros(1, 3, 8, 8).to_sparse(), "output": torch.zeros(1, 3)}, "sparse.pt")
    result = run("weights", "check", "t.rd", "w.pt", "--reference", "empty.pt")
    assert (result.exit_code, result.stderr) == (
        1,
        "error: empty.pt: input is an empty batch ([0, 3, 8, 8]); save the input and output of at least one image\n",
    )
    result = run("weights", "check", "t.rd", "w.pt", "--reference", "sparse.pt")
    assert (result.exit_code, result.stderr) == (
        1,
        "error: sparse.pt: input is a sparse tensor (sparse_coo); store it dense (tensor.to_dense())\n",
    )
    result = run("weights", "check", "t.rd", "w.pt", "--reference", "ref.pt")
    assert result.exit_code == 0, result.output
