"""Distributed training: `resdsl train --nproc 2` (torchrun, gloo on the CPU) gives the weights of one
process with the same global batch, and only rank 0 writes files.

What is compared, and why a network without batch norm: under DDP each rank normalises with the
statistics of its own shard (32 of 64 images), as the paper's two-GPU training did, so a BN network
is *meant* to differ from one process normalising all 64. Everything else is shared exactly: every
rank draws the data order and augmentation of the whole global batch from identically seeded
generators and takes its slice, and DDP averages the gradients of equal shards, which is the
gradient of the global mean loss. A residual network with no BN therefore has to match one process
to float rounding (the all-reduce sums in another order), which is checked at atol 1e-5.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import torch
from test_train import write_cifar_dir

ROOT = Path(__file__).resolve().parent.parent

NO_BN = """
block plainres(width, stride = 1) {
    residual {
        conv 3x3, width, stride: stride; relu
        conv 3x3, width
    }
    relu
}

network nobn {
    input 3x32x32
    classes 10
    shortcut A

    stem { conv 3x3, 8; relu }
    stage conv2 = plainres(8) * 1
    stage conv3 = plainres(16, stride: 2) * 1
    head { avgpool global; fc classes }
}

train {
    batch 20
    optimizer sgd(lr: 0.05, momentum: 0.9, weight_decay: 1e-4)
    schedule step(at: [4], factor: 0.1)
    augment pad: 4, crop: 32, flip: true
}
"""

# Records every file a process opens for writing (and every rename) under the run directory.
SITECUSTOMIZE = textwrap.dedent(
    """
    import builtins, io, os

    _open, _replace = builtins.open, os.replace
    _out = os.path.realpath(os.environ["TRACE_OUT"])
    _log = os.path.join(os.environ["TRACE_LOG"], "writes-" + os.environ.get("RANK", "single") + ".txt")

    def _note(path):
        try:
            path = os.path.realpath(os.fspath(path))
        except TypeError:
            return
        if path.startswith(_out):
            with _open(_log, "a") as f:
                f.write(path + "\\n")

    def traced_open(file, mode="r", *args, **kwargs):
        if any(c in mode for c in "wax+") and not isinstance(file, int):
            _note(file)
        return _open(file, mode, *args, **kwargs)

    def traced_replace(src, dst, *args, **kwargs):
        _note(dst)
        return _replace(src, dst, *args, **kwargs)

    builtins.open = io.open = traced_open
    os.replace = traced_replace
    """
)


def run_train(spec: Path, data: Path, out: Path, trace: Path, *extra: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, TRACE_OUT=str(out), TRACE_LOG=str(trace), PYTHONPATH=str(trace))
    args = ["--data", str(data), "--iterations", "6", "--eval-every", "3", "--deterministic", "--out", str(out)]
    return subprocess.run(
        [sys.executable, "-m", "resdsl", "train", str(spec), *args, *extra],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        cwd=ROOT,
    )


def test_two_processes_equal_one_and_only_rank0_writes(tmp_path: Path) -> None:
    spec = tmp_path / "nobn.rd"
    spec.write_text(NO_BN)
    data = write_cifar_dir(tmp_path / "cifar")
    trace = tmp_path / "trace"
    trace.mkdir()
    (trace / "sitecustomize.py").write_text(SITECUSTOMIZE)

    one = run_train(spec, data, tmp_path / "one", trace)
    assert one.returncode == 0, one.stderr
    two = run_train(spec, data, tmp_path / "two", trace, "--nproc", "2")
    assert two.returncode == 0, two.stdout + two.stderr
    assert "on cpu x 2 processes" in two.stderr

    a = torch.load(tmp_path / "one" / "checkpoint.pt", weights_only=True)["trainer"]
    b = torch.load(tmp_path / "two" / "checkpoint.pt", weights_only=True)["trainer"]
    assert a["iteration"] == b["iteration"] == 6
    for key, value in a["model"].items():
        torch.testing.assert_close(b["model"][key], value, atol=1e-5, rtol=0, msg=key)
    # the logged training loss is all-reduced over ranks: the same numbers as one process
    rows = [(tmp_path / d / "metrics.csv").read_text().splitlines() for d in ("one", "two")]
    losses = [[line.split(",")[2] for line in r[1:]] for r in rows]
    assert all(abs(float(x) - float(y)) < 1e-5 for x, y in zip(*losses, strict=True))

    rank0 = (trace / "writes-0.txt").read_text().split()
    assert not (trace / "writes-1.txt").exists(), (trace / "writes-1.txt").read_text()
    written = {Path(p).name for p in rank0}
    assert {"model.py", "recipe.json", "metrics.csv", "summary.json", "checkpoint.pt", "curves.png"} <= written


STOCHASTIC = """
block sdres(width, stride = 1) {
    residual {
        conv 3x3, width, stride: stride; relu
        conv 3x3, width
    }
    relu
}

network sdnet {
    input 3x32x32
    classes 10
    shortcut A
    survival 0.3

    stem { conv 3x3, 8; relu }
    stage conv2 = sdres(8) * 2
    stage conv3 = sdres(16, stride: 2) * 2
    head { avgpool global; fc classes }
}

train {
    batch 20
    optimizer sgd(lr: 0.05, momentum: 0.9, weight_decay: 1e-4)
    augment pad: 4, crop: 32, flip: true
}
"""


def test_two_processes_train_a_stochastic_depth_network(tmp_path: Path) -> None:
    """Skipped residual branches leave their parameters without a gradient on that rank in that step: DDP is
    told so (find_unused_parameters), where it died with "Expected to have finished reduction"."""
    spec = tmp_path / "sd.rd"
    spec.write_text(STOCHASTIC)
    data = write_cifar_dir(tmp_path / "cifar")
    trace = tmp_path / "trace"
    trace.mkdir()
    (trace / "sitecustomize.py").write_text(SITECUSTOMIZE)
    two = run_train(spec, data, tmp_path / "two", trace, "--nproc", "2")
    assert two.returncode == 0, two.stdout + two.stderr
    assert "Expected to have finished reduction" not in two.stderr
    state = torch.load(tmp_path / "two" / "checkpoint.pt", weights_only=True)["trainer"]
    assert state["iteration"] == 6
    assert all(torch.isfinite(v).all() for v in state["model"].values() if v.is_floating_point())
