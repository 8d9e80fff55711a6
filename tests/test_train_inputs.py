"""Bad input to `resdsl train` and `resdsl plot` gets one line and an exit code, never a traceback, and
costs nothing: npz files of the wrong kind or of absurd size (read from the zip headers, before unpacking),
metrics.csv files resdsl did not write, plot formats matplotlib lacks, networks that would need terabytes
(refused from the IR's shapes before anything is allocated), usage errors (before torch is imported).
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import run_without

from resdsl.cli.main import main

ROOT = Path(__file__).resolve().parent.parent
CIFAR20 = str(ROOT / "specs" / "cifar20.rd")
# cifar20 with one block per stage on 3x8x8 images: a few milliseconds per step
TINY = ["--set", "n=1", "--set", "input=3x8x8", "--set", "crop=8", "--set", "pad=1", "--batch", "8"]


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def write_npz(path: Path, n: int = 40, shape=(3, 8, 8), **arrays) -> Path:
    rng = np.random.default_rng(0)
    data = {
        "x_train": rng.integers(0, 256, (n, *shape), dtype=np.uint8),
        "y_train": rng.integers(0, 10, n),
        "x_test": rng.integers(0, 256, (10, *shape), dtype=np.uint8),
        "y_test": rng.integers(0, 10, 10),
    }
    data.update(arrays)
    np.savez(path, **data)
    return path


def invoke(*args) -> object:
    result = CliRunner().invoke(main, [*map(str, args)])
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def train(*args):
    return invoke("train", *args)


def failed(r, code: int = 1) -> str:
    assert r.exit_code == code, r.output
    assert "Traceback" not in r.output
    return r.output


# ---------------------------------------------------------------------------------------- npz


@pytest.mark.parametrize(
    ("arrays", "message"),
    [
        ({"y_train": np.array(["cat"] * 40)}, "y_train must be integer class indices, got strings (<U3)"),
        (
            {"y_train": np.eye(10, dtype=np.int64)[np.arange(40) % 10]},
            "y_train must hold one label per image (N), got 2-D 40x10 (one-hot labels? store y.argmax(1))",
        ),
        (
            {"y_test": np.zeros(10, dtype=np.float64)},
            "y_test must be integer class indices, got float64 (convert with y.astype('int64'))",
        ),
        ({"y_test": np.int64(3)}, "y_test must hold one label per image (N), got a scalar"),
        ({"x_train": np.zeros((40, 3, 8, 8), np.float32)}, "x_train must be uint8 N x C x H x W, got float32 40x3x8x8"),
        ({"x_test": np.array(["a"] * 10)}, "x_test must be uint8 N x C x H x W, got strings (<U1) 10"),
    ],
    ids=["string-labels", "one-hot", "float-labels", "scalar-labels", "float-images", "string-images"],
)
def test_npz_arrays_of_the_wrong_kind(tmp_path: Path, arrays, message) -> None:
    data = write_npz(tmp_path / "d.npz", **arrays)
    out = tmp_path / "run"
    r = train(CIFAR20, "--dataset", "npz", "--data", data, *TINY, "--out", out)
    assert f"error: {data}: {message}; write uint8 x_train/x_test" in failed(r)
    assert not out.exists()


def test_npz_column_labels_are_accepted(tmp_path: Path) -> None:
    from resdsl.train import datafiles

    data = write_npz(tmp_path / "d.npz", y_train=np.arange(40).reshape(40, 1) % 10)
    loaded = datafiles.read_npz(data)
    assert loaded["y_train"].shape == (40,) and loaded["y_train"].dtype.is_floating_point is False


def test_not_an_npz_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"\x00\x01 definitely not a zip")
    r = train(CIFAR20, "--dataset", "npz", "--data", bad, *TINY, "--out", tmp_path / "run")
    assert f"error: {bad} is corrupt or not an npz file (BadZipFile: File is not a zip file)" in failed(r)


def test_compressed_npz_that_unpacks_too_big_is_refused_from_its_headers(tmp_path: Path, monkeypatch) -> None:
    """4 MB of zeros compress to a few kB; with 2 MB for data the sizes in the headers refuse it unopened."""
    from resdsl.train import datafiles

    data = tmp_path / "bomb.npz"
    np.savez_compressed(
        data,
        x_train=np.zeros((4096, 3, 16, 16), np.uint8),
        y_train=np.zeros(4096, np.int64),
        x_test=np.zeros((10, 3, 16, 16), np.uint8),
        y_test=np.zeros(10, np.int64),
    )
    assert data.stat().st_size < 100_000

    def no_unpacking(*args, **kwargs):
        raise AssertionError("numpy.load was called")

    monkeypatch.setattr(np, "load", no_unpacking)
    monkeypatch.setenv("RESDSL_MEMORY_LIMIT", "4M")  # 2 MB of it for data
    r = train(CIFAR20, "--dataset", "npz", "--data", data, *TINY, "--set", "input=3x16x16", "--set", "crop=16")
    text = failed(r)
    assert f"error: {data} unpacks to 3.2 MB (x_train alone is 4096x3x16x16 uint8, 3.1 MB), more than the " in text
    assert "2.0 MB allowed for data here; nothing was unpacked" in text
    # the standalone script's reader refuses it too, by default against half this machine's memory
    with pytest.raises(datafiles.DataError, match="unpacks to 3.2 MB .* more than the 1.0 kB allowed"):
        datafiles.read_npz(data, max_bytes=1000)


@pytest.mark.filterwarnings("ignore:Duplicate name")
def test_npz_whose_header_claims_more_than_its_zip_entry_holds(tmp_path: Path) -> None:
    from resdsl.train import datafiles

    header = "{'descr': '|u1', 'fortran_order': False, 'shape': (1000000, 3, 32, 32), }".ljust(117) + "\n"
    fake = b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header.encode() + b"\x00" * 64
    data = write_npz(tmp_path / "d.npz")
    with zipfile.ZipFile(data, "a") as zf:
        zf.writestr("x_test.npy", fake)  # a second x_test entry; the last one wins
    with pytest.raises(datafiles.DataError, match=r"x_test claims 1000000x3x32x32 uint8 \(3,072,000,000 bytes\)"):
        datafiles.npz_arrays(data)


# ---------------------------------------------------------------------------------------- metrics.csv and plot


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("finished")
    data = write_npz(tmp / "d.npz")
    out = tmp / "run"
    r = train(CIFAR20, "--dataset", "npz", "--data", data, *TINY, "--iterations", 4, "--eval-every", 2, "--out", out)
    assert r.exit_code == 0, r.output
    return out


BAD_METRICS = {
    "binary": (
        b"iteration,lr\n2,0.1\n\x00\x93\xff\xfe garbage",
        "{m}:3: binary data, not a metrics.csv written by resdsl",
    ),
    "not-utf8": (b"\x89PNG\r\n\x1a\n\xff\xd8", "{m}:1: binary data, not a metrics.csv written by resdsl"),
    "words": (
        b"iteration,lr,train_error,test_error\n2,0.1,0.5,0.5\n4,fast,0.4,0.4\n",
        "{m}:3: `fast` in column lr is not a number",
    ),
    "ragged": (b"iteration,lr,train_error,test_error\n2,0.1\n", "{m}:2: 2 values, but the header names 4 columns"),
    "no-iteration": (b"step,loss\n1,2\n", "{m}:1: not a metrics.csv written by resdsl (no `iteration` column)"),
    "bad-iteration": (b"iteration,lr\n2.5,0.1\n", "{m}:2: the iteration `2.5` is no count"),
}


@pytest.mark.parametrize("kind", list(BAD_METRICS))
def test_plot_refuses_a_metrics_csv_it_did_not_write(tmp_path: Path, kind: str) -> None:
    run = tmp_path / "run"
    run.mkdir()
    blob, message = BAD_METRICS[kind]
    (run / "metrics.csv").write_bytes(blob)
    r = invoke("plot", run, "-o", tmp_path / "c.png")
    assert f"error: {message.format(m=run / 'metrics.csv')}" in failed(r)
    assert not (tmp_path / "c.png").exists()


def test_plot_needs_the_error_columns(tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    (run / "metrics.csv").write_text("iteration,lr\n2,0.1\n")
    r = invoke("plot", run, "-o", tmp_path / "c.png")
    assert f"error: {run / 'metrics.csv'}:1: no train_error or test_error column" in failed(r)


def test_resume_refuses_a_broken_metrics_csv_and_changes_nothing(tmp_path: Path, finished_run: Path) -> None:
    import shutil

    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    blob, message = BAD_METRICS["binary"]
    (run / "metrics.csv").write_bytes(blob)
    before = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()}
    data = finished_run.parent / "d.npz"
    r = train(CIFAR20, "--dataset", "npz", "--data", data, *TINY, "--iterations", 6, "--resume", run)
    text = failed(r)
    assert f"error: {message.format(m=run / 'metrics.csv')}; repair or delete it to resume" in text
    assert {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()} == before


@pytest.mark.parametrize("name", ["x.xyz", "curves"])
def test_plot_format_is_a_usage_error_listing_the_formats(tmp_path: Path, finished_run: Path, name: str) -> None:
    r = invoke("plot", finished_run, "-o", tmp_path / name)
    text = failed(r, 2)
    what = "unknown format `xyz`" if name == "x.xyz" else "no extension to tell the format"
    assert f"error: -o {tmp_path / name}: {what}; use one of " in text
    assert ".pdf" in text and ".png" in text and ".svg" in text
    assert not (tmp_path / name).exists()


def test_plot_writes_svg(tmp_path: Path, finished_run: Path) -> None:
    r = invoke("plot", finished_run, "-o", tmp_path / "c.svg")
    assert r.exit_code == 0, r.output
    assert (tmp_path / "c.svg").read_text().lstrip().startswith("<?xml")
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


# ---------------------------------------------------------------------------------------- memory


PAD_SPEC = """
network padnet {
    input 3x32x32
    classes 10
    shortcut none
    stem { conv 3x3, 16, pad: 100000; bn; relu }
    head { avgpool global; fc classes }
}
"""


@pytest.fixture
def nothing_allocated(monkeypatch):
    """Fails the test if the data are loaded or the model is imported."""
    from resdsl.train import checkpoints, data

    def forbidden(*args, **kwargs):
        raise AssertionError("allocated before refusing")

    monkeypatch.setattr(data, "load", forbidden)
    monkeypatch.setattr(checkpoints, "import_model", forbidden)


@pytest.mark.parametrize(
    ("spec", "sets", "need"),
    [
        ("pad", [], "2.6 PB"),
        ("cifar20", ["--set", "input=3x65536x65536", "--dataset", "digits"], "1.9 PB"),
        ("cifar20", ["--set", "classes=100000000", "--dataset", "synthetic"], "478.0 GB"),
    ],
    ids=["pad-100000", "input-65536", "classes-1e8"],
)
def test_networks_that_need_terabytes_are_refused_before_allocating(
    tmp_path: Path, nothing_allocated, monkeypatch, spec, sets, need
) -> None:
    if spec == "pad":
        path = tmp_path / "padnet.rd"
        path.write_text(PAD_SPEC)
        spec, sets = str(path), ["--dataset", "synthetic"]
        assert invoke("check", spec).exit_code == 0  # a valid spec
    else:
        spec = CIFAR20
    monkeypatch.setenv("RESDSL_MEMORY_LIMIT", "64G")
    out = tmp_path / "run"
    text = failed(train(spec, *sets, "--out", out))
    assert f"would need about {need} of memory (parameters " in text
    assert "more than RESDSL_MEMORY_LIMIT=64G; refusing before allocating anything" in text
    assert not out.exists()


def test_the_machines_memory_is_the_default_limit(tmp_path: Path, nothing_allocated, monkeypatch) -> None:
    from resdsl.train import memory

    monkeypatch.delenv("RESDSL_MEMORY_LIMIT", raising=False)
    monkeypatch.setattr(memory, "memory_bytes", lambda: 8 * 10**9)
    r = train(CIFAR20, "--set", "classes=100000000", "--dataset", "synthetic", "--out", tmp_path / "r")
    assert "more than this machine's 8.0 GB; refusing before allocating anything" in failed(r)


def test_a_crop_that_does_not_give_the_input_size(tmp_path: Path, nothing_allocated) -> None:
    r = train(CIFAR20, "--set", "n=1", "--set", "input=3x8x8", "--dataset", "digits", "--out", tmp_path / "r")
    text = failed(r)
    assert "error: the recipe's crop 32: crops of 32x32 do not fit cifar_resnet20, which takes 8x8 images" in text
    assert "use --set crop=8" in text


def test_memory_of_this_machine_is_known() -> None:
    from resdsl.train import datafiles

    total = datafiles.memory_bytes()
    assert total is not None and total > 2**28


def test_a_small_run_fits_and_the_estimate_is_sane() -> None:
    from resdsl.ir.pipeline import load_network
    from resdsl.train import memory

    ir = load_network(ROOT / "specs" / "cifar110.rd", {})
    est = memory.estimate(ir, 128, 4, memory.data_bytes("cifar10", ir.input_shape))
    assert 1e9 < est.total < 5e9  # ResNet-110 at batch 128 in float32: a few GB
    bf16 = memory.estimate(ir, 128, 4, 0, amp="bf16")
    assert bf16.train < est.train


def test_on_a_gpu_its_memory_is_the_limit_and_processes_do_not_add_up(monkeypatch) -> None:
    """No GPU here: torch.cuda's answer is faked. ResNet-110 at batch 4096 needs more
    than a 16 GB card (about 69 GB); a batch of 128 (2.2 GB) fits, also with 8 processes, one GPU each."""
    from types import SimpleNamespace

    import torch

    from resdsl.diagnostics import InputError
    from resdsl.ir.pipeline import load_network
    from resdsl.train import memory

    monkeypatch.delenv("RESDSL_MEMORY_LIMIT", raising=False)
    card = SimpleNamespace(total_memory=16 * 10**9, name="Fake GPU 16GB")
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda device: card)
    gpu = torch.device("cuda:0")
    ir = load_network(ROOT / "specs" / "cifar110.rd", {})
    assert memory.limit(gpu) == (16 * 10**9, "the 16.0 GB of cuda:0 (Fake GPU 16GB)")
    memory.check(ir, memory.estimate(ir, 128, 4, 0), gpu, processes=8)
    with pytest.raises(InputError, match=r"more than the 16\.0 GB of cuda:0 \(Fake GPU 16GB\); refusing"):
        memory.check(ir, memory.estimate(ir, 4096, 4, 0), gpu)


# ---------------------------------------------------------------------------------------- usage errors


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--set", "nope=1"], 2, "error: --set nope: no such param or setting"),
        (["--batch", "0"], 2, "Invalid value for '--batch': 0 is not in the range x>=1"),
        (["--device", "gpu"], 2, "error: --device gpu: use cpu, cuda or cuda:N"),
        (["--amp", "fp16", "--device", "cpu"], 2, "error: --amp fp16 needs CUDA"),
        (["--batch", "7", "--nproc", "2"], 2, "error: --batch 7 does not split evenly over 2 processes"),
        (["--set", "batch=7", "--nproc", "2"], 2, "error: --set batch=7 does not split evenly over 2 processes"),
    ],
    ids=["set", "batch", "device", "amp", "nproc", "nproc-set"],
)
def test_usage_errors_come_before_torch_is_imported(tmp_path: Path, args, code, message) -> None:
    proc = run_without("train", CIFAR20, *args, "--out", str(tmp_path / "run"), blocked=("torch",))
    assert proc.returncode == 0, proc.stderr  # the probe; the CLI's own code is printed
    assert proc.stderr.strip().endswith(f"exit {code}"), proc.stderr
    assert message in proc.stderr
    assert proc.stderr.lower().count("error") == 1 and "Traceback" not in proc.stderr and "torchrun" not in proc.stderr
    assert not (tmp_path / "run").exists()
