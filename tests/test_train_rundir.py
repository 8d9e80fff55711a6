"""The run directory belongs to one run: a new run takes only an empty directory, one `resdsl train` at a time
writes it (a lock), every file is replaced atomically; `--resume` continues only the same network (a
fingerprint of the checked IR) on the same data with the same recipe, and never rewrites a run it does not
train; SIGTERM saves a checkpoint like Ctrl-C and prints the complete command that continues.
"""

from __future__ import annotations

import builtins
import io
import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from test_train_inputs import CIFAR20, TINY, write_npz

from resdsl.cli.main import main
from resdsl.ir.pipeline import load_network
from resdsl.train import fingerprint, rundir

ROOT = Path(__file__).resolve().parent.parent


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def train(*args):
    result = CliRunner().invoke(main, ["train", *map(str, args)])
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def failed(r, code: int = 1) -> str:
    assert r.exit_code == code, r.output
    assert "Traceback" not in r.output
    return r.output


def files(run: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(run.iterdir()) if p.is_file()}


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return write_npz(tmp_path_factory.mktemp("data") / "d.npz")


@pytest.fixture(scope="module")
def run6(tmp_path_factory, data: Path) -> Path:
    """A finished run of 6 iterations (eval every 2, checkpoint every 2)."""
    out = tmp_path_factory.mktemp("run6") / "run"
    r = train(CIFAR20, *common(data), "--iterations", 6, "--eval-every", 2, "--checkpoint-every", 2, "--out", out)
    assert r.exit_code == 0, r.output
    return out


def common(data: Path) -> list:
    return ["--dataset", "npz", "--data", data, *TINY]


def copy(run: Path, to: Path) -> Path:
    import shutil

    shutil.copytree(run, to)
    return to


# ---------------------------------------------------------------------------------------- ownership


@pytest.mark.parametrize("name", ["model.py", "metrics.csv", "summary.json", "notes.txt"])
def test_a_new_run_refuses_a_directory_that_is_not_empty(tmp_path: Path, data: Path, name: str) -> None:
    out = tmp_path / "mine"
    out.mkdir()
    (out / name).write_text("the user's own file\n")
    r = train(CIFAR20, *common(data), "--iterations", 2, "--out", out)
    text = failed(r)
    assert f"error: {out} is not empty ({name}) and is not a run to resume: nothing there is replaced" in text
    assert "choose another --out" in text
    assert files(out) == {name: b"the user's own file\n"}


def test_a_new_run_refuses_a_run_and_names_its_checkpoint(tmp_path: Path, run6: Path, data: Path) -> None:
    run = copy(run6, tmp_path / "run")
    before = files(run)
    r = train(CIFAR20, *common(data), "--iterations", 2, "--out", run)
    assert f"error: {run} already holds a run ({run}/checkpoint.pt); resume it with --resume {run}" in failed(r)
    assert files(run) == before


def test_an_empty_directory_and_leftover_temporary_files_are_fine(tmp_path: Path, data: Path) -> None:
    out = tmp_path / "run"
    out.mkdir()
    (out / ".metrics.csv.k2j4x.tmp").write_text("half a file")  # a run killed while writing
    (out / rundir.LOCK).write_text("")
    r = train(CIFAR20, *common(data), "--iterations", 2, "--out", out)
    assert r.exit_code == 0, r.output
    assert not (out / ".metrics.csv.k2j4x.tmp").exists()


def test_a_run_stopped_before_its_first_checkpoint_starts_again_with_resume(tmp_path: Path, data: Path) -> None:
    import torch

    out = tmp_path / "run"
    r = train(CIFAR20, *common(data), "--iterations", 4, "--eval-every", 2, "--out", out)
    assert r.exit_code == 0, r.output
    (out / "checkpoint.pt").unlink()  # as if killed before the first checkpoint
    (out / "summary.json").unlink()
    r = train(CIFAR20, *common(data), "--iterations", 4, "--out", out)
    text = failed(r)
    assert f"{out} holds a run that stopped before its first checkpoint ({out}/recipe.json, no checkpoint.pt)" in text
    assert f"start it again with --resume {out}" in text
    r = train(CIFAR20, *common(data), "--set", "shortcut=B", "--resume", out)
    assert f"error: {out}/recipe.json belongs to another network" in failed(r)
    r = train(CIFAR20, *common(data), "--resume", out)
    assert r.exit_code == 0, r.output
    assert f"note: {out} has no checkpoint yet; starting it again from iteration 0" in r.output
    assert torch.load(out / "checkpoint.pt", weights_only=True)["trainer"]["iteration"] == 4


def test_a_second_train_on_a_locked_directory_fails_at_once(tmp_path: Path, run6: Path, data: Path) -> None:
    from filelock import FileLock

    run = copy(run6, tmp_path / "run")
    before = files(run)
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    with FileLock(str(run / rundir.LOCK)), FileLock(str(fresh / rundir.LOCK)):
        started = time.perf_counter()
        r = train(CIFAR20, *common(data), "--iterations", 8, "--resume", run)
        text = failed(r)
        assert f"error: {run} is in use: another resdsl train is writing it (it holds {run}/.resdsl.lock)" in text
        assert time.perf_counter() - started < 10
        r = train(CIFAR20, *common(data), "--iterations", 8, "--out", run)
        assert f"error: {run} is in use" in failed(r)
        r = train(CIFAR20, *common(data), "--iterations", 2, "--out", fresh)
        assert f"error: {fresh} is in use" in failed(r)
    assert files(run) == before
    assert rundir.contents(fresh) == []


def test_every_file_of_the_run_directory_is_written_atomically(tmp_path: Path, data: Path, monkeypatch) -> None:
    out = tmp_path / "run"
    opened, replaced = [], []
    real_open, real_replace = builtins.open, os.replace

    def traced_open(file, mode="r", *args, **kwargs):
        if any(c in mode for c in "wax+") and not isinstance(file, int):
            opened.append(Path(file))
        return real_open(file, mode, *args, **kwargs)

    def traced_replace(src, dst, *args, **kwargs):
        replaced.append(Path(dst))
        return real_replace(src, dst, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", traced_open)
    monkeypatch.setattr(io, "open", traced_open)
    monkeypatch.setattr(os, "replace", traced_replace)
    r = train(CIFAR20, *common(data), "--iterations", 4, "--eval-every", 2, "--checkpoint-every", 2, "--out", out)
    assert r.exit_code == 0, r.output
    assert not [p for p in opened if p.parent == out], opened  # nothing opened for writing under its own name
    written = {p.name for p in replaced if p.parent == out}
    assert written == {"recipe.json", "model.py", "metrics.csv", "checkpoint.pt", "summary.json", "curves.png"}
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]
    assert oct((out / "summary.json").stat().st_mode & 0o777) == oct(0o666 & ~_umask())


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# ---------------------------------------------------------------------------------------- resume


def test_resume_to_fewer_iterations_is_refused_and_rewrites_nothing(tmp_path: Path, run6: Path, data: Path) -> None:
    run = copy(run6, tmp_path / "run")
    before = files(run)
    r = train(CIFAR20, *common(data), "--resume", run, "--iterations", 3)
    text = failed(r, 2)
    assert f"error: --iterations 3: the run in {run} is already at iteration 6; nothing was changed" in text
    assert "(to train further, pass --iterations above 6)" in text
    assert files(run) == before


def test_resume_of_a_finished_run_has_nothing_to_do(tmp_path: Path, run6: Path, data: Path) -> None:
    run = copy(run6, tmp_path / "run")
    before = files(run)
    r = train(CIFAR20, *common(data), "--resume", run)
    assert r.exit_code == 0, r.output
    assert f"{run} already finished its 6 iterations: nothing to do (to train further, pass --iterations above 6)" in (
        r.output
    )
    assert files(run) == before


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--lr", "0.05"], "--lr 0.05: the run in {run} was trained with lr 0.1 and a resumed run keeps its recipe"),
        (["--set", "lr=0.05"], "--set lr=0.05: the run in {run} was trained with lr 0.1"),
        (["--batch", "4"], "--batch 4: the run in {run} was trained with batch 8"),
        (["--set", "flip=false"], "--set flip=false: the run in {run} was trained with flip true"),
        (["--dataset", "synthetic"], "--dataset synthetic: the run in {run} was trained with dataset npz"),
    ],
    ids=["lr", "set-lr", "batch", "flip", "dataset"],
)
def test_resume_refuses_recipe_values_it_would_ignore(tmp_path: Path, run6: Path, data: Path, args, message) -> None:
    run = copy(run6, tmp_path / "run")
    before = files(run)
    r = train(CIFAR20, *common(data), "--iterations", 8, *args, "--resume", run)
    text = failed(r, 2)
    assert "error: " + message.format(run=run) in text
    assert "only --iterations, --eval-every and --checkpoint-every may change" in text
    assert files(run) == before


def test_resume_records_what_changed_and_keeps_the_sets_it_started_with(tmp_path: Path, run6: Path, data: Path) -> None:
    run = copy(run6, tmp_path / "run")
    started = json.loads((run / "recipe.json").read_text())
    r = train(CIFAR20, *common(data), "--set", "lr=0.1", "--iterations", 8, "--eval-every", 4, "--resume", run)
    assert r.exit_code == 0, r.output
    recipe = json.loads((run / "recipe.json").read_text())
    assert recipe["sets"] == started["sets"]  # --set lr=0.1 (the run's own value) is not recorded
    assert recipe["recipe"]["iterations"] == 8 and recipe["recipe"]["eval_every"] == 4
    assert recipe["resumed"] == [{"at": 6, "changed": {"iterations": 8, "eval_every": 4}}]
    assert recipe["fingerprint"]["network"] == started["fingerprint"]["network"]
    rows = [int(line.split(",")[0]) for line in (run / "metrics.csv").read_text().splitlines()[1:]]
    assert rows == [2, 4, 6, 8]


@pytest.mark.parametrize(
    ("sets", "message"),
    [
        (["--set", "shortcut=none"], "the shortcut of stage conv2 block 1 is none here, A (identity) in the run"),
        (["--set", "shortcut=B"], "the shortcut of stage conv2 block 1 is B (identity) here, A (identity) in the run"),
        (["--set", "n=2"], "stage conv2 has 2 blocks here, 1 in the run"),
        (["--set", "classes=12"], "the number of classes is 12 here, 10 in the run"),
    ],
    ids=["plain", "option-B", "depth", "classes"],
)
def test_resume_refuses_another_network_and_names_the_difference(tmp_path: Path, run6, data, sets, message) -> None:
    run = copy(run6, tmp_path / "run")
    before = files(run)
    r = train(CIFAR20, *common(data), *sets, "--iterations", 8, "--resume", run)
    text = failed(r)
    assert (
        f"error: {run}/checkpoint.pt belongs to another network: {message} (the run: cifar_resnet20, 8 layers" in text
    )
    assert "pass the spec and --set values it was trained with" in text
    assert files(run) == before


def test_resume_refuses_other_data(tmp_path: Path, run6: Path, data: Path) -> None:
    import torch

    run = copy(run6, tmp_path / "run")
    before = files(run)
    other = write_npz(tmp_path / "other.npz", y_train=(torch.arange(40) % 10).numpy())
    r = train(CIFAR20, "--dataset", "npz", "--data", other, *TINY, "--iterations", 8, "--resume", run)
    text = failed(r)
    assert f"error: {run} was trained on other data: the data's contents differ from the run's (same sizes" in text
    moved = tmp_path / "moved.npz"
    moved.write_bytes(data.read_bytes())  # the same data elsewhere is the same data
    r = train(CIFAR20, "--dataset", "npz", "--data", moved, *TINY, "--iterations", 8, "--resume", run)
    assert r.exit_code == 0, r.output
    assert before.keys() <= files(run).keys()


def test_a_checkpoint_written_before_fingerprints_still_resumes(tmp_path: Path, run6: Path, data: Path) -> None:
    import torch

    run = copy(run6, tmp_path / "run")
    state = torch.load(run / "checkpoint.pt", weights_only=True)
    fp = state.pop("network")
    state.pop("data")
    state["format"] = "resdsl-checkpoint-1"
    state["spec"] = {k: fp[k] for k in ("name", "params", "flops", "layers", "input", "classes")}
    torch.save(state, run / "checkpoint.pt")
    r = train(CIFAR20, *common(data), "--iterations", 8, "--resume", run)
    assert r.exit_code == 0, r.output
    assert "predates network fingerprints: only the network's name, params, FLOPs and layers were compared" in r.output


# ---------------------------------------------------------------------------------------- the fingerprint


def fp(spec: str = "cifar20", **sets) -> dict:
    return fingerprint.network(load_network(ROOT / "specs" / f"{spec}.rd", {"n": 1, **sets}))


def test_the_fingerprint_sees_what_params_flops_and_layers_do_not() -> None:
    from resdsl.lang.values import Symbol

    a, plain = fp(), fp(shortcut=Symbol("none"))
    assert (a["params"], a["flops"], a["layers"]) == (plain["params"], plain["flops"], plain["layers"])
    assert a["digest"] != plain["digest"]
    assert (
        fingerprint.difference(a, plain) == "the shortcut of stage conv2 block 1 is none here, A (identity) in the run"
    )
    assert fingerprint.difference(a, fp()) is None  # and it is stable


def test_the_fingerprint_names_ops_shortcut_plans_and_survival() -> None:
    from resdsl.lang.values import Symbol

    a = fp()
    assert fingerprint.difference(a, fp(stride_at=Symbol("middle"))) is None  # basic blocks ignore it
    c = fp(shortcut=Symbol("C"))
    assert fingerprint.difference(a, c) == (
        "the shortcut of stage conv2 block 1 is C (1x1 projection + BN) here, A (identity) in the run"
    )
    wide = fingerprint.network(load_network(ROOT / "specs" / "cifar20.rd", {"n": 1, "input": _size(3, 16, 16)}))
    assert fingerprint.difference(a, wide) == "the input is 3x16x16 here, 3x32x32 in the run"
    s1 = fingerprint.network(load_network(ROOT / "specs" / "stochdepth110.rd", {"n": 1}))
    s2 = fingerprint.network(load_network(ROOT / "specs" / "stochdepth110.rd", {"n": 1, "survival": 0.8}))
    assert "survival probability of stage" in (fingerprint.difference(s1, s2) or "")


def test_the_fingerprint_sees_module_names_and_written_shortcuts(tmp_path: Path) -> None:
    vgg = ROOT / "specs" / "vgg16.rd"
    named = fingerprint.network(load_network(vgg))
    renamed = tmp_path / "vgg16.rd"
    renamed.write_text(vgg.read_text().replace('name: "classifier.#"', 'name: "head.#"'))
    assert named["names"] and fingerprint.difference(named, fingerprint.network(load_network(renamed))) == (
        "the module names (`name:` options) differ from the run's: its checkpoint's keys would not fit"
    )
    assert "names" not in fp()  # unnamed networks keep the digest they had before names existed
    d = fingerprint.network(load_network(ROOT / "specs" / "resnet50d.rd"))
    assert d["units"][2]["shortcuts"] == ["written `shortcut { }` (2 ops)"]  # stage conv2 block 1
    assert d["units"][3]["shortcuts"] == ["written `shortcut { }` (identity)"]


def _size(*dims):
    from resdsl.lang.values import Size

    return Size(dims)


# ---------------------------------------------------------------------------------------- signals


@pytest.mark.slow
def test_sigterm_saves_a_checkpoint_and_prints_the_whole_command(tmp_path: Path, data: Path) -> None:
    """A real SIGTERM to a running `resdsl train`, then the printed command, as printed, continues the run."""
    import torch

    out = tmp_path / "run"
    args = [CIFAR20, *common(data), "--iterations", 100000, "--eval-every", 2, "--deterministic", "--out", out]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.Popen(
        [sys.executable, "-m", "resdsl", "train", *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
        env=env,
    )
    deadline = time.time() + 120
    while not (out / "metrics.csv").exists() or len((out / "metrics.csv").read_text().splitlines()) < 2:
        assert proc.poll() is None and time.time() < deadline, proc.communicate()
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err
    assert "Traceback" not in err
    line = next(line for line in err.splitlines() if "stopped by SIGTERM at iteration" in line)
    command = shlex.split(line.split("continue with ", 1)[1])
    assert command[:5] == ["resdsl", "train", CIFAR20, "--resume", str(out)]
    assert ["--data", str(data)] == command[command.index("--data") : command.index("--data") + 2]
    for option in ("--dataset", "--batch", "--deterministic", "--set"):
        assert option in command
    it = torch.load(out / "checkpoint.pt", weights_only=True)["trainer"]["iteration"]
    assert 2 <= it < 100000
    r = train(*command[2:], "--iterations", it + 2)  # the printed command, finishing two iterations later
    assert r.exit_code == 0, r.output
    assert f"resuming {out} at iteration {it} of {it + 2}" in r.output


def test_the_same_signal_twice_stops_at_once_another_does_not() -> None:
    from resdsl.train.console import StopFlag, StopNow

    with StopFlag() as stop:
        os.kill(os.getpid(), signal.SIGINT)  # torchrun's answer to a Ctrl-C: SIGINT, then SIGTERM
        os.kill(os.getpid(), signal.SIGTERM)
        assert stop.signum == signal.SIGINT
        with pytest.raises(StopNow) as raised:
            os.kill(os.getpid(), signal.SIGINT)
        assert raised.value.code == 130
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL


def test_an_incomplete_checkpoint_is_refused(tmp_path: Path, data: Path) -> None:
    import torch

    run = tmp_path / "run"
    run.mkdir()
    torch.save({"format": "resdsl-checkpoint-2", "recipe": {}}, run / "checkpoint.pt")
    r = train(CIFAR20, *common(data), "--resume", run)
    text = failed(r)
    assert f"error: {run}/checkpoint.pt is not a complete resdsl training checkpoint (no network, data, trainer" in text
