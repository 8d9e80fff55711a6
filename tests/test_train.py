"""`resdsl train` / `resdsl plot` end to end on the CPU: run directory contents, learning on real data
(scikit-learn digits), bitwise resume after Ctrl-C, bad input of every kind, the standalone train.py.

Small on purpose: cifar20 with n=1 (8 layers) and batches of 20 on a 200-image CIFAR-format directory
written by the fixture in the real python-pickle format.
"""

from __future__ import annotations

import csv
import json
import os
import pickle
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from resdsl.cli.main import main

ROOT = Path(__file__).resolve().parent.parent
SPECS = ROOT / "specs"
CIFAR20 = str(SPECS / "cifar20.rd")
SMALL = ["--set", "n=1", "--batch", "20"]


def write_cifar_dir(path: Path, per_batch: int = 40, test: int = 50, seed: int = 0) -> Path:
    """data_batch_1..5 and test_batch as CIFAR-10 writes them: dicts with b'data' (N x 3072 uint8), b'labels'."""
    rng = np.random.default_rng(seed)
    path.mkdir(parents=True, exist_ok=True)
    for name, n in [(f"data_batch_{i}", per_batch) for i in range(1, 6)] + [("test_batch", test)]:
        batch = {
            b"batch_label": name.encode(),
            b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
            b"labels": [int(v) for v in rng.integers(0, 10, n)],
        }
        with open(path / name, "wb") as f:
            pickle.dump(batch, f)
    with open(path / "batches.meta", "wb") as f:
        pickle.dump({b"label_names": [f"class{i}".encode() for i in range(10)]}, f)
    return path


@pytest.fixture(scope="module")
def cifar_dir(tmp_path_factory) -> Path:
    return write_cifar_dir(tmp_path_factory.mktemp("cifar") / "cifar-10-batches-py")


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def train(*args: str):
    result = CliRunner().invoke(main, ["train", *map(str, args)])
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def metrics(run: Path) -> list[dict[str, str]]:
    with open(run / "metrics.csv", newline="") as f:
        return list(csv.DictReader(f))


def checkpoint(run: Path) -> dict:
    import torch

    return torch.load(run / "checkpoint.pt", map_location="cpu", weights_only=True)


# ---------------------------------------------------------------------------------------- a short run


def test_short_run_writes_the_run_directory(tmp_path: Path, cifar_dir: Path) -> None:
    out = tmp_path / "run"
    r = train(CIFAR20, "--data", cifar_dir, *SMALL, "--iterations", 6, "--eval-every", 3, "--out", out)
    assert r.exit_code == 0, r.output
    assert "split val: 5000 ignored: cifar10 has 200 training images" in r.output
    assert "iteration 6/6" in r.output and "images/s" in r.output
    assert sorted(p.name for p in out.iterdir()) == [
        ".resdsl.lock",  # held while a run writes the directory (tests/test_train_rundir.py)
        "checkpoint.pt",
        "curves.png",
        "metrics.csv",
        "model.py",
        "recipe.json",
        "summary.json",
    ]

    rows = metrics(out)
    assert list(rows[0]) == [
        "iteration",
        "lr",
        "train_loss",
        "train_error",
        "test_loss",
        "test_error",
        "val_loss",
        "val_error",
        "images_per_s",
    ]
    assert [int(r["iteration"]) for r in rows] == [3, 6]
    for row in rows:
        assert float(row["lr"]) == 0.1
        assert 0 <= float(row["train_error"]) <= 1 and 0 <= float(row["test_error"]) <= 1
        assert float(row["train_loss"]) > 0 and float(row["images_per_s"]) > 0
        assert int(round(float(row["test_error"]) * 50)) == pytest.approx(float(row["test_error"]) * 50)  # 50 images

    summary = json.loads((out / "summary.json").read_text())
    assert summary["iterations"] == 6
    assert summary["final_test_error"] == pytest.approx(float(rows[-1]["test_error"]), rel=1e-5)
    assert summary["final_test_accuracy"] == pytest.approx(1 - summary["final_test_error"])
    assert summary["best_test_error"] == pytest.approx(min(float(r["test_error"]) for r in rows), rel=1e-5)
    assert summary["images_per_s"] > 0 and summary["wall_time_s"] > 0 and summary["device"] == "cpu"

    recipe = json.loads((out / "recipe.json").read_text())
    assert recipe["network"] == "cifar_resnet20" and recipe["dataset"] == "cifar10"
    assert recipe["recipe"]["iterations"] == 6 and recipe["recipe"]["batch"] == 20
    assert recipe["recipe"]["milestones"] == [32000, 48000] and recipe["recipe"]["pad"] == 4
    assert recipe["params"]["n"] == 1 and recipe["train_images"] == 200 and recipe["test_images"] == 50

    state = checkpoint(out)
    assert state["trainer"]["iteration"] == 6 and state["network"]["name"] == "cifar_resnet20"
    weights = state["trainer"]["model"]
    assert "conv1.weight" in weights and not any(k.startswith("_orig_mod.") or "module." in k for k in weights)
    assert (out / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "def build_model" in (out / "model.py").read_text()


@pytest.mark.slow
def test_learns_digits(tmp_path: Path) -> None:
    """A real data set offline: cifar20 (n=1) reaches >= 90% test accuracy on 360 held-out digits."""
    out = tmp_path / "digits"
    args = ["--dataset", "digits", "--set", "n=1", "--batch", 64, "--iterations", 200, "--set", "milestones=150"]
    r = train(CIFAR20, *args, "--set", "flip=false", "--eval-every", 50, "--out", out)
    assert r.exit_code == 0, r.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["final_test_accuracy"] >= 0.9, summary
    rows = metrics(out)
    assert float(rows[-1]["lr"]) == pytest.approx(0.01)  # divided by 10 at the milestone
    assert float(rows[-1]["train_error"]) < float(rows[0]["train_error"])


# ---------------------------------------------------------------------------------------- resume


def test_interrupted_and_resumed_equals_uninterrupted_bitwise(tmp_path: Path, cifar_dir: Path) -> None:
    """Stochastic depth (global RNG), augmentation and data order (generators) all continue exactly."""
    import torch

    spec = str(SPECS / "stochdepth110.rd")
    common = [spec, "--data", cifar_dir, *SMALL, "--iterations", 8, "--eval-every", 2, "--deterministic"]
    common += ["--set", "milestones=5"]  # the lr changes after the interruption
    whole, parts = tmp_path / "whole", tmp_path / "parts"
    assert train(*common, "--out", whole).exit_code == 0

    r = train(*common, "--out", parts, "--interrupt-at", 3)
    assert r.exit_code == 130, r.output
    assert "interrupted at iteration 3 of 8; checkpoint saved" in r.output
    assert f"--resume {parts}" in r.output
    assert checkpoint(parts)["trainer"]["iteration"] == 3
    r = train(*common, "--resume", parts)
    assert r.exit_code == 0, r.output
    assert "resuming" in r.output

    a, b = checkpoint(whole)["trainer"], checkpoint(parts)["trainer"]
    assert a["iteration"] == b["iteration"] == 8
    assert a["model"].keys() == b["model"].keys()
    for key in a["model"]:
        assert torch.equal(a["model"][key], b["model"][key]), key
    for sa, sb in zip(a["optimizer"]["state"].values(), b["optimizer"]["state"].values()):
        assert torch.equal(sa["momentum_buffer"], sb["momentum_buffer"])
    assert torch.equal(a["perm"], b["perm"]) and a["pos"] == b["pos"]
    drop = ("images_per_s",)
    strip = lambda rows: [{k: v for k, v in r.items() if k not in drop} for r in rows]  # noqa: E731
    assert strip(metrics(whole)) == strip(metrics(parts))


def test_resume_can_extend_a_finished_run(tmp_path: Path, cifar_dir: Path) -> None:
    out = tmp_path / "run"
    assert train(CIFAR20, "--data", cifar_dir, *SMALL, "--iterations", 2, "--out", out).exit_code == 0
    r = train(CIFAR20, "--data", cifar_dir, *SMALL, "--iterations", 4, "--resume", out / "checkpoint.pt")
    assert r.exit_code == 0, r.output
    assert [int(r["iteration"]) for r in metrics(out)] == [2, 4]


# ---------------------------------------------------------------------------------------- bad input


def save_npz(path: Path, shape=(3, 32, 32), classes: int = 10, n: int = 40) -> Path:
    rng = np.random.default_rng(0)
    np.savez(
        path,
        x_train=rng.integers(0, 256, (n, *shape), dtype=np.uint8),
        y_train=rng.integers(0, classes, n),
        x_test=rng.integers(0, 256, (10, *shape), dtype=np.uint8),
        y_test=rng.integers(0, classes, 10),
    )
    return path


def error_of(r) -> str:
    assert r.exit_code == 1, r.output
    assert "Traceback" not in r.output
    return r.output


def test_npz_trains(tmp_path: Path) -> None:
    data = save_npz(tmp_path / "ok.npz")
    r = train(CIFAR20, "--dataset", "npz", "--data", data, *SMALL, "--iterations", 2, "--out", tmp_path / "run")
    assert r.exit_code == 0, r.output


@pytest.mark.parametrize(
    ("shape", "classes", "message"),
    [
        ((1, 28, 28), 10, "error: the data's train images are 1x28x28 but the network takes 3x32x32"),
        ((3, 32, 32), 15, "error: the data's train labels run 0..14 but the network has 10 classes"),
    ],
    ids=["shape", "classes"],
)
def test_data_must_fit_the_network(tmp_path: Path, shape, classes, message) -> None:
    data = save_npz(tmp_path / "d.npz", shape, classes)
    out = tmp_path / "run"
    r = train(CIFAR20, "--dataset", "npz", "--data", data, *SMALL, "--iterations", 2, "--out", out)
    assert message in error_of(r)
    assert not out.exists()


def test_missing_and_corrupt_cifar_files(tmp_path: Path, cifar_dir: Path) -> None:
    out = tmp_path / "run"
    empty = tmp_path / "empty"
    empty.mkdir()
    r = train(CIFAR20, "--data", empty, *SMALL, "--out", out)
    assert f"error: {empty}/data_batch_1 is missing; use --data DIR" in error_of(r)
    r = train(CIFAR20, "--data", tmp_path / "nowhere", *SMALL, "--out", out)
    assert f"error: --data {tmp_path / 'nowhere'}: no such directory" in error_of(r)

    broken = write_cifar_dir(tmp_path / "broken", per_batch=4, test=4)
    blob = (broken / "test_batch").read_bytes()
    (broken / "test_batch").write_bytes(blob[: len(blob) // 2])
    r = train(CIFAR20, "--data", broken, *SMALL, "--out", out)
    assert f"error: {broken}/test_batch is corrupt or truncated (" in error_of(r)
    (broken / "test_batch").write_bytes(pickle.dumps({b"data": [1, 2, 3]}))
    assert "is not a CIFAR python batch" in error_of(train(CIFAR20, "--data", broken, *SMALL, "--out", out))
    assert not out.exists()


def test_no_network_fails_fast_with_where_to_put_files(tmp_path: Path, monkeypatch) -> None:
    from resdsl.train import data

    monkeypatch.setattr(data, "CACHE", tmp_path / "cache")
    url, md5, folder = data.ARCHIVES["cifar10"]
    monkeypatch.setitem(data.ARCHIVES, "cifar10", ("http://127.0.0.1:9/cifar-10-python.tar.gz", md5, folder))
    r = train(CIFAR20, *SMALL, "--out", tmp_path / "run")
    text = error_of(r)
    assert "error: cannot download http://127.0.0.1:9/cifar-10-python.tar.gz" in text
    assert f"put the extracted folder in {tmp_path / 'cache'}" in text
    assert not list((tmp_path / "cache").glob("*.part"))


def test_truncated_download_fails_the_md5_check(tmp_path: Path, monkeypatch) -> None:
    from resdsl.train import data

    archive = tmp_path / "src.tar.gz"
    archive.write_bytes(b"not the archive")
    monkeypatch.setattr(data, "CACHE", tmp_path / "cache")
    monkeypatch.setitem(
        data.ARCHIVES, "cifar10", (archive.as_uri(), "c58f30108f718f92721af3b95e74349a", "cifar-10-batches-py")
    )
    text = error_of(train(CIFAR20, *SMALL, "--out", tmp_path / "run"))
    assert f"error: the download of {archive.as_uri()} failed its md5 check" in text
    assert not (tmp_path / "cache" / "src.tar.gz").exists()


def test_corrupt_checkpoint_and_another_specs_checkpoint(tmp_path: Path, cifar_dir: Path) -> None:
    out = tmp_path / "run"
    assert train(CIFAR20, "--data", cifar_dir, *SMALL, "--iterations", 2, "--out", out).exit_code == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    r = train(CIFAR20, "--data", cifar_dir, "--set", "n=2", "--batch", 20, "--iterations", 4, "--resume", out)
    text = error_of(r)
    assert f"error: {out}/checkpoint.pt belongs to another network: stage conv2 has 2 blocks here, 1 in the run" in text
    assert "(the run: cifar_resnet20, 8 layers, 75,290 params; here: cifar_resnet20, 14 layers, 172,506 params)" in text

    r = train(CIFAR20, "--data", cifar_dir, *SMALL, "--iterations", 4, "--out", out)
    assert f"error: {out} already holds a run" in error_of(r)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before

    blob = before["checkpoint.pt"]
    (out / "checkpoint.pt").write_bytes(blob[: len(blob) // 2])
    before["checkpoint.pt"] = (out / "checkpoint.pt").read_bytes()
    r = train(CIFAR20, "--data", cifar_dir, *SMALL, "--iterations", 4, "--resume", out)
    assert f"error: cannot read checkpoint {out}/checkpoint.pt: it is corrupt or truncated" in error_of(r)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    r = train(CIFAR20, "--data", cifar_dir, *SMALL, "--resume", tmp_path / "none")
    assert f"error: --resume {tmp_path}/none: no such checkpoint" in error_of(r)


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path: Path, cifar_dir: Path, monkeypatch) -> None:
    import torch

    from resdsl.train import trainlib

    out = tmp_path / "run"
    step = trainlib.Trainer.step

    def poisoned(self):
        if self.iteration == 5:  # a weight turns NaN after the checkpoint at 4
            with torch.no_grad():
                next(self.model.parameters()).fill_(float("nan"))
        return step(self)

    monkeypatch.setattr(trainlib.Trainer, "step", poisoned)
    args = [CIFAR20, "--data", cifar_dir, *SMALL, "--iterations", 8, "--checkpoint-every", 2, "--eval-every", 2]
    text = error_of(train(*args, "--out", out))
    assert "error: the training loss became nan at iteration 5 (lr 0.1); stopped: the last good checkpoint" in text
    assert f"{out}/checkpoint.pt (iteration 4) is kept; lower the learning rate (--lr)" in text
    state = checkpoint(out)
    assert state["trainer"]["iteration"] == 4
    assert all(torch.isfinite(t).all() for t in state["trainer"]["model"].values() if t.is_floating_point())
    assert not (out / "summary.json").exists()

    monkeypatch.setattr(trainlib.Trainer, "step", step)
    r = train(CIFAR20, "--data", cifar_dir, *SMALL, "--iterations", 4, "--lr", "1e30", "--out", tmp_path / "huge")
    assert "error: the training loss became nan at iteration 1 (lr 1e+30); stopped: no checkpoint" in error_of(r)


def test_usage_errors(tmp_path: Path, cifar_dir: Path) -> None:
    import torch

    r = train(CIFAR20, "--data", cifar_dir, "--set", "n=1", "--batch", 500, "--out", tmp_path / "r")
    assert "error: the batch of 500 is larger than the 200 training images" in error_of(r)
    r = train(CIFAR20, "--data", cifar_dir, "--set", "n=1", "--device", "cuda", "--out", tmp_path / "r")
    if not torch.cuda.is_available():
        assert "error: --device cuda: CUDA is not available here; use --device cpu" in error_of(r)
    r = train(CIFAR20, "--set", "nope=1")
    assert r.exit_code == 2 and "--set nope: no such param or setting" in r.output


# ---------------------------------------------------------------------------------------- plot


def test_plot_overlays_runs(tmp_path: Path, cifar_dir: Path) -> None:
    runs = []
    for shortcut in ("A", "none"):
        out = tmp_path / shortcut
        r = train(
            CIFAR20, "--data", cifar_dir, *SMALL, "--set", f"shortcut={shortcut}", "--iterations", 2, "--out", out
        )
        assert r.exit_code == 0, r.output
        runs.append(out)
    png = tmp_path / "fig6.png"
    r = CliRunner().invoke(main, ["plot", *map(str, runs), "-o", str(png)])
    assert r.exit_code == 0, r.output
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    empty = tmp_path / "empty"
    empty.mkdir()
    r = CliRunner().invoke(main, ["plot", str(empty)])
    assert r.exit_code == 1 and "has no metrics.csv rows" in r.output


# ---------------------------------------------------------------------------------------- standalone script


@pytest.mark.slow
def test_standalone_train_script_runs_without_resdsl(tmp_path: Path, cifar_dir: Path) -> None:
    from resdsl.backends.pytorch.codegen import render_model
    from resdsl.ir.pipeline import load_network
    from resdsl.train.script import render_train_script

    ir = load_network(SPECS / "cifar20.rd", {"n": 1})
    work = tmp_path / "standalone"
    work.mkdir()
    (work / "model.py").write_text(render_model(ir, "specs/cifar20.rd"))
    script = render_train_script(ir)
    (work / "train.py").write_text(script)
    assert "import resdsl" not in script and "from resdsl" not in script
    assert '"milestones": [32000, 48000]' in script and '"pad": 4' in script
    assert "def choose_threads(" in script and "def pick_threads(" in script  # tests/test_threads.py

    lint = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--config", str(ROOT / "pyproject.toml"), "train.py"],
        cwd=work,
        capture_output=True,
        text=True,
    )
    assert lint.returncode == 0, lint.stdout + lint.stderr
    fmt = subprocess.run(
        [sys.executable, "-m", "ruff", "format", "--check", "--config", str(ROOT / "pyproject.toml"), "train.py"],
        cwd=work,
        capture_output=True,
        text=True,
    )
    assert fmt.returncode == 0, fmt.stdout + fmt.stderr
    check = "import runpy, sys; sys.argv = sys.argv[1:]; runpy.run_path('train.py', run_name='__main__'); "
    check += "assert 'resdsl' not in sys.modules, 'resdsl was imported'"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "OMP_NUM_THREADS")}
    args = ["train.py", "--data", str(cifar_dir), "--iterations", "4", "--batch", "20", "--eval-every", "2"]
    proc = subprocess.run(
        [sys.executable, "-I", "-c", check, *args, "--out", "run"],
        cwd=work,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "iteration 4/4" in proc.stdout
    cores = len(os.sched_getaffinity(0))
    assert re.search(
        rf"^threads: \d+ \({cores} cores?, \d+\.\d busy with other processes.*; --threads to override\)$",
        proc.stdout,
        re.M,
    ), proc.stdout
    with open(work / "run" / "metrics.csv", newline="") as f:
        assert [int(r["iteration"]) for r in csv.DictReader(f)] == [2, 4]
    resumed = subprocess.run(
        [sys.executable, "-I", "train.py", *args[1:4], "6", *args[5:], "--out", "run", "--resume", "--threads", "1"],
        cwd=work,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "iteration 6/6" in resumed.stdout
    assert "threads: 1 (--threads 1; --threads to override)" in resumed.stdout.splitlines()
    bad = subprocess.run(
        [sys.executable, "-I", *args[:3], "--threads", "0"],
        cwd=work,
        capture_output=True,
        text=True,
        env=env,
    )
    assert bad.returncode == 2 and bad.stderr.splitlines()[-1].endswith(
        "error: --threads 0: use a positive number of threads"
    )


@pytest.mark.slow
def test_ctrl_c_saves_a_checkpoint_and_exits_130(tmp_path: Path, cifar_dir: Path) -> None:
    """A real SIGINT to a running `resdsl train`: the current iteration finishes, a checkpoint is saved."""
    import signal
    import time

    out = tmp_path / "run"
    args = [CIFAR20, "--data", cifar_dir, *SMALL, "--iterations", 100000, "--eval-every", 2, "--out", out]
    proc = subprocess.Popen(
        [sys.executable, "-m", "resdsl", "train", *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    deadline = time.time() + 120
    while not (out / "metrics.csv").exists() or len(metrics(out)) < 1:
        assert proc.poll() is None and time.time() < deadline, proc.communicate()
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    assert "checkpoint saved: continue with resdsl train" in err and f"--resume {out}" in err
    it = checkpoint(out)["trainer"]["iteration"]
    assert 2 <= it < 100000
