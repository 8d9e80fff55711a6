"""`resdsl train`: compile a spec, train the generated model with its recipe, keep a run directory.

The run directory holds model.py (the generated code that was trained), recipe.json (everything
resolved), metrics.csv, summary.json, curves.png, checkpoint.pt and TensorBoard events when
tensorboard is installed. The training core (data order, augmentation, schedule, state) lives in
`trainlib`, which the standalone train.py embeds; this module adds files, devices, processes,
progress and guards.
"""

from __future__ import annotations

import csv
import importlib.util
import json
import math
import os
import signal
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from resdsl.diagnostics import InputError, UsageError

CHECKPOINT = "checkpoint.pt"
FORMAT = "resdsl-checkpoint-1"
COLUMNS = [
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


@dataclass
class Options:
    out: Path | None = None
    dataset: str | None = None
    data: Path | None = None
    device: str | None = None
    amp: str = "auto"  # auto (bf16 on CUDA, off on CPU) | bf16 | fp16 | off
    compile: bool = False
    deterministic: bool = False
    resume: Path | None = None
    channels_last: bool = True
    interrupt_at: int | None = None  # tests: behave as if Ctrl-C came after this iteration
    recipe_overrides: dict[str, Any] = field(default_factory=dict)
    quiet: bool = False


class Interrupted(Exception):
    """Ctrl-C: a checkpoint was saved; the CLI exits 130."""


# ---------------------------------------------------------------------------------------- helpers


def fingerprint(ir) -> dict[str, Any]:
    """What a checkpoint must match to be resumed by this spec."""
    t = ir.totals
    return {
        "name": ir.name,
        "params": int(t.params),
        "flops": int(t.flops),
        "layers": int(t.layers),
        "input": list(ir.input_shape),
        "classes": int(ir.classes),
    }


def default_run_dir(spec: Path) -> Path:
    """Where a run goes without --out: `runs/SPEC-YYYYmmdd-HHMMSS`, relative to the current directory."""
    return Path("runs") / f"{Path(spec).stem}-{datetime.now().strftime('%Y%m%d-%H%M%S')}"


def checkpoint_path(path: Path) -> Path:
    path = Path(path)
    return path / CHECKPOINT if path.is_dir() else path


def load_checkpoint(path: Path) -> dict[str, Any]:
    """A checkpoint read with weights_only=True; anything unreadable is an InputError."""
    import torch

    path = checkpoint_path(path)
    if not path.exists():
        raise InputError(f"--resume {path}: no such checkpoint")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise InputError(f"cannot read checkpoint {path}: it is corrupt or truncated ({first[:200]})") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise InputError(f"{path} is not a resdsl training checkpoint")
    return state


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """Write atomically: a temporary file, fsync, then rename over the old checkpoint."""
    import torch

    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        torch.save(state, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    try:
        fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError:  # pragma: no cover - directories cannot be fsynced on some systems
        pass


def import_model(path: Path):
    """Import a generated model.py from its path (not from sys.path)."""
    spec = importlib.util.spec_from_file_location(f"resdsl_run_model_{abs(hash(str(path)))}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def read_metrics(path: Path) -> list[dict[str, float]]:
    if not path.exists():
        return []
    rows = []
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            rows.append({k: float(v) if v not in ("", None) else math.nan for k, v in row.items()})
    return rows


def write_metrics(path: Path, rows: list[dict[str, float]]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(COLUMNS)
        for row in rows:
            writer.writerow([_fmt(c, row.get(c, math.nan)) for c in COLUMNS])
    os.replace(tmp, path)


def _fmt(column: str, v: float) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return ""
    if column == "iteration":
        return str(int(v))
    return f"{v:.6g}"


class Dist:
    """torchrun's environment: rank, world size, local rank; a no-op when run alone."""

    def __init__(self) -> None:
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self.local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        self.active = self.world > 1

    def start(self, device_type: str) -> None:
        if not self.active:
            return
        import torch.distributed as dist

        dist.init_process_group(backend="nccl" if device_type == "cuda" else "gloo")

    def all_reduce(self, device):
        import torch.distributed as dist

        def reduce(t):
            if not self.active:
                return t
            moved = t.to(device)
            dist.all_reduce(moved)
            return moved.to(t.device)

        return reduce

    def broadcast(self, obj):
        if not self.active:
            return obj
        import torch.distributed as dist

        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def stop(self) -> None:
        if self.active:
            import torch.distributed as dist

            if dist.is_initialized():
                dist.destroy_process_group()


def pick_device(requested: str | None, dist: Dist):
    import torch

    if requested is None:
        requested = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(requested)
    except RuntimeError as err:
        raise UsageError(f"--device {requested}: {err}") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise InputError(f"--device {requested}: CUDA is not available here; use --device cpu")
        if dist.active or device.index is None:
            device = torch.device("cuda", dist.local_rank if dist.active else 0)
        torch.cuda.set_device(device)
    elif device.type != "cpu":
        raise InputError(f"--device {requested}: only cpu and cuda are supported")
    return device


# ---------------------------------------------------------------------------------------- the run


def run(spec: Path, sets: tuple[str, ...], opts: Options) -> dict[str, Any]:
    """Train; returns the summary. Raises InputError/UsageError for bad input, Interrupted on Ctrl-C."""
    from resdsl.backends.pytorch.codegen import render_model
    from resdsl.ir.pipeline import load_network
    from resdsl.lang.overrides import parse_sets
    from resdsl.train import data as datasets

    dist = Dist()
    overrides = parse_sets(sets)
    overrides.update(opts.recipe_overrides)
    ir = load_network(spec, overrides)
    cfg = ir.recipe.to_json()
    state = None
    if opts.resume is not None:
        ckpt_file = checkpoint_path(opts.resume)
        state = load_checkpoint(ckpt_file)
        if state["spec"] != fingerprint(ir):
            theirs, ours = state["spec"], fingerprint(ir)
            raise InputError(
                f"{ckpt_file} belongs to another network: {theirs['name']} with {theirs['params']:,} params "
                f"and {theirs['layers']} layers, not {ours['name']} with {ours['params']:,} params and "
                f"{ours['layers']} layers; pass the spec and --set values it was trained with"
            )
        saved = state["recipe"]
        for key in ("iterations", "eval_every", "checkpoint_every"):  # a resumed run may be extended
            if key in opts.recipe_overrides:
                saved[key] = cfg[key]
        cfg = saved
        out = Path(opts.out) if opts.out else ckpt_file.parent
    else:
        out = opts.out
    dataset = opts.dataset or cfg["dataset"]
    cfg["dataset"] = dataset

    device = pick_device(opts.device, dist)
    amp = opts.amp if opts.amp != "auto" else ("bf16" if device.type == "cuda" else "off")
    if amp != "off" and device.type == "cpu" and amp == "fp16":
        raise UsageError("--amp fp16 needs CUDA; use --amp bf16 or off on the CPU")
    if cfg["batch"] % dist.world:
        raise UsageError(f"the batch of {cfg['batch']} does not split evenly over {dist.world} processes")

    # Everything that can fail on bad input happens before the run directory is touched.
    data = datasets.load(dataset, opts.data, tuple(ir.input_shape), ir.classes, quiet=opts.quiet or dist.rank > 0)
    n_train = data["x_train"].shape[0]
    notes = []
    if cfg["val"]:
        if cfg["val"] * 2 > n_train:
            notes.append(f"note: split val: {cfg['val']} ignored: {dataset} has {n_train} training images")
            cfg["val"] = 0
        else:
            data = datasets.split_val(data, cfg["val"])
    if cfg["batch"] > data["x_train"].shape[0]:
        raise InputError(
            f"the batch of {cfg['batch']} is larger than the {data['x_train'].shape[0]} training images; use --batch"
        )

    import torch

    dist.start(device.type)
    deterministic = torch.are_deterministic_algorithms_enabled()
    try:
        return _train(spec, sets, opts, ir, cfg, state, out, dataset, data, device, amp, dist, notes, render_model)
    finally:
        torch.use_deterministic_algorithms(deterministic)
        dist.stop()


def _train(spec, sets, opts, ir, cfg, state, out, dataset, data, device, amp, dist, notes, render_model):
    import torch

    from resdsl.train import trainlib

    if out is None:
        out = dist.broadcast(default_run_dir(spec))
    out = Path(out)
    ckpt = out / CHECKPOINT
    main = dist.rank == 0
    if state is None and ckpt.exists():
        raise InputError(f"{out} already holds a run ({ckpt}); resume it with --resume {out} or choose another --out")
    say = _Printer(main and not opts.quiet)
    for note in notes:
        say.line(note)

    if opts.deterministic:
        torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.benchmark = False
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    elif device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True

    source = render_model(ir, spec)
    if main:
        out.mkdir(parents=True, exist_ok=True)
        model_file = out / "model.py"
        if not model_file.exists() or model_file.read_text() != source:
            model_file.write_text(source)
    if dist.active:
        import torch.distributed

        torch.distributed.barrier()
    module = import_model(out / "model.py")
    torch.manual_seed(int(cfg["seed"]))
    model = module.build_model().to(device)
    if opts.channels_last:
        model = model.to(memory_format=torch.channels_last)
    net = model
    if opts.compile:
        net = torch.compile(net)
    if dist.active:
        from torch.nn.parallel import DistributedDataParallel

        net = DistributedDataParallel(net, device_ids=[device.index] if device.type == "cuda" else None)
    trainer = trainlib.Trainer(
        model,
        cfg,
        data,
        device,
        net=net,
        rank=dist.rank,
        world=dist.world,
        amp=amp,
        channels_last=opts.channels_last,
        all_reduce=dist.all_reduce(device),
    )
    best = {"test_error": math.inf, "iteration": 0}
    wall_before = 0.0
    if state is not None:
        try:
            trainer.load_state_dict(state["trainer"])
        except (RuntimeError, KeyError, ValueError) as err:
            raise InputError(f"the checkpoint does not fit this model: {str(err).splitlines()[0]}") from None
        best = state["best"]
        wall_before = float(state["wall_time"])
        say.line(f"resuming {out} at iteration {trainer.iteration} of {cfg['iterations']}")

    resolved = {
        "spec": str(spec),
        "network": ir.name,
        "sets": list(sets),
        "params": {k: v if isinstance(v, (int, float, str, bool)) else str(v) for k, v in ir.params.items()},
        "recipe": cfg,
        "dataset": dataset,
        "data": str(opts.data) if opts.data else None,
        "train_images": int(data["x_train"].shape[0]),
        "test_images": int(data["x_test"].shape[0]),
        "device": str(device),
        "amp": amp,
        "compile": opts.compile,
        "channels_last": opts.channels_last,
        "deterministic": opts.deterministic,
        "world_size": dist.world,
        "torch": torch.__version__,
        "model_params": int(ir.totals.params),
        "model_flops": int(ir.totals.flops),
    }
    metrics_file = out / "metrics.csv"
    rows = [r for r in read_metrics(metrics_file) if r["iteration"] <= trainer.iteration] if state else []
    writer = _tensorboard(out) if main else None
    if main:
        (out / "recipe.json").write_text(json.dumps(resolved, indent=2) + "\n")
        write_metrics(metrics_file, rows)

    def checkpoint() -> None:
        if main:
            save_checkpoint(
                ckpt,
                {
                    "format": FORMAT,
                    "spec": fingerprint(ir),
                    "recipe": cfg,
                    "trainer": trainer.state_dict(),
                    "best": best,
                    "wall_time": wall_before + time.perf_counter() - started,
                },
            )

    total = int(cfg["iterations"])
    stop = _StopFlag()
    started = time.perf_counter()
    say.line(
        f"training {ir.name} ({ir.totals.params:,} params) on {dataset} "
        f"({data['x_train'].shape[0]} train / {data['x_test'].shape[0]} test images) on {device}"
        + (f" x {dist.world} processes" if dist.active else "")
        + f", {total} iterations of batch {cfg['batch']} -> {out}"
    )
    lr = trainer.lr()
    with stop, say.progress(total, trainer.iteration) as advance:
        while trainer.iteration < total:
            try:
                lr = trainer.step()
            except trainlib.NonFiniteLoss as err:
                kept = (
                    f"the last good checkpoint {ckpt} (iteration {_ckpt_iteration(ckpt)}) is kept"
                    if ckpt.exists()
                    else "no checkpoint was written"
                )
                raise InputError(f"{err}; stopped: {kept}; lower the learning rate (--lr)") from None
            it = trainer.iteration
            advance(it)
            if it % cfg["eval_every"] == 0 or it == total:
                row = {"iteration": it, "lr": lr, **trainer.train_metrics()}
                row["test_loss"], row["test_error"] = trainer.evaluate(trainer.x_test, trainer.y_test)
                if trainer.x_val is not None:
                    row["val_loss"], row["val_error"] = trainer.evaluate(trainer.x_val, trainer.y_val)
                if row["test_error"] < best["test_error"]:
                    best = {"test_error": row["test_error"], "iteration": it}
                rows.append(row)
                if main:
                    write_metrics(metrics_file, rows)
                    if writer is not None:
                        for k, v in row.items():
                            if k != "iteration" and not math.isnan(v):
                                writer.add_scalar(k, v, it)
                        writer.flush()
                say.eval_line(row, total)
            if it % cfg["checkpoint_every"] == 0 and it < total:
                checkpoint()
            interrupted = stop.requested or (opts.interrupt_at is not None and it == opts.interrupt_at)
            if dist.active:
                flag = torch.tensor([float(interrupted)])
                flag = dist.all_reduce(device)(flag)
                interrupted = bool(flag.item() > 0)
            if interrupted and it < total:
                checkpoint()
                if writer is not None:
                    writer.close()
                raise Interrupted(
                    f"interrupted at iteration {it} of {total}; checkpoint saved: continue with "
                    f"resdsl train {spec} --resume {out}" + "".join(f" --set {s}" for s in sets)
                )
    checkpoint()
    wall = wall_before + time.perf_counter() - started
    last = rows[-1]
    summary = {
        "network": ir.name,
        "spec": str(spec),
        "dataset": dataset,
        "iterations": trainer.iteration,
        "final_test_error": last["test_error"],
        "final_test_accuracy": 1.0 - last["test_error"],
        "final_test_loss": last["test_loss"],
        "final_train_error": last["train_error"],
        "best_test_error": best["test_error"],
        "best_iteration": best["iteration"],
        "wall_time_s": round(wall, 3),
        "train_time_s": round(trainer.train_time, 3),
        "images_per_s": round(trainer.train_images / trainer.train_time, 1) if trainer.train_time else 0.0,
        "device": str(device),
        "world_size": dist.world,
    }
    if not math.isnan(last.get("val_error", math.nan)):
        summary["final_val_error"] = last["val_error"]
    if main:
        (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
        if writer is not None:
            writer.close()
        try:
            plot_runs([out], out / "curves.png")
        except ImportError:
            say.line("note: matplotlib is missing, no curves.png (pip install 'resdsl[plot]')")
        say.line(
            f"done: test error {100 * last['test_error']:.2f}% (accuracy {100 * (1 - last['test_error']):.2f}%), "
            f"best {100 * best['test_error']:.2f}% at {best['iteration']}, {summary['images_per_s']:.0f} images/s, "
            f"{wall:.1f} s -> {out}"
        )
    return summary


def _ckpt_iteration(path: Path) -> str:
    try:
        return str(load_checkpoint(path)["trainer"]["iteration"])
    except InputError:
        return "?"


def _tensorboard(out: Path):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except Exception:  # tensorboard is not installed
        return None
    return SummaryWriter(log_dir=str(out / "tensorboard"))


class _StopFlag:
    """Ctrl-C asks the loop to stop after the current iteration (a second Ctrl-C stops at once)."""

    def __init__(self) -> None:
        self.requested = False
        self._old = None

    def __enter__(self):
        try:
            self._old = signal.signal(signal.SIGINT, self._handle)
        except ValueError:  # not the main thread
            self._old = None
        return self

    def _handle(self, signum, frame) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __exit__(self, *exc) -> None:
        if self._old is not None:
            signal.signal(signal.SIGINT, self._old)


class _Printer:
    """A rich progress bar on a terminal; otherwise plain lines at eval points only."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.tty = enabled and sys.stderr.isatty()
        self._progress = None

    def line(self, text: str) -> None:
        if not self.enabled:
            return
        if self._progress is not None:
            self._progress.console.print(text, markup=False, highlight=False)
        else:
            print(text, file=sys.stderr, flush=True)

    def eval_line(self, row: dict[str, float], total: int) -> None:
        val = "" if math.isnan(row.get("val_error", math.nan)) else f"  val error {100 * row['val_error']:.2f}%"
        self.line(
            f"iteration {int(row['iteration'])}/{total}  lr {row['lr']:.4g}  "
            f"train loss {row['train_loss']:.4f} error {100 * row['train_error']:.2f}%  "
            f"test loss {row['test_loss']:.4f} error {100 * row['test_error']:.2f}%{val}  "
            f"{row['images_per_s']:.0f} images/s"
        )

    def progress(self, total: int, done: int):
        import contextlib

        if not self.tty:
            return contextlib.nullcontext(lambda it: None)
        return self._rich(total, done)

    def _rich(self, total: int, done: int):
        import contextlib

        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn, TimeRemainingColumn

        @contextlib.contextmanager
        def bar():
            progress = Progress(
                "[progress.description]{task.description}",
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                console=Console(stderr=True),
            )
            task = progress.add_task("training", total=total, completed=done)
            with progress:
                self._progress = progress
                try:
                    yield lambda it: progress.update(task, completed=it)
                finally:
                    self._progress = None

        return bar()


# ---------------------------------------------------------------------------------------- plots


def plot_runs(runs: list[Path], output: Path) -> None:
    """Train (dashed) and test (solid) error against iterations, one colour per run (the paper's Fig. 6)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    drawn = 0
    for i, run_dir in enumerate(runs):
        rows = read_metrics(Path(run_dir) / "metrics.csv")
        if not rows:
            raise InputError(f"{run_dir} has no metrics.csv rows; is it a resdsl run directory?")
        colour = f"C{i % 10}"
        its = [r["iteration"] for r in rows]
        label = _run_label(Path(run_dir))
        ax.plot(its, [100 * r["train_error"] for r in rows], "--", color=colour, linewidth=1, label=f"{label} train")
        ax.plot(its, [100 * r["test_error"] for r in rows], "-", color=colour, linewidth=2, label=f"{label} test")
        drawn += 1
    ax.set_xlabel("iteration")
    ax.set_ylabel("error (%)")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title("train (dashed) and test (solid) error")
    fig.tight_layout()
    output.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(output, dpi=120)
    plt.close(fig)


def _run_label(run_dir: Path) -> str:
    try:
        recipe = json.loads((run_dir / "recipe.json").read_text())
        sets = " ".join(recipe.get("sets") or [])
        return f"{run_dir.name} ({recipe['network']}{' ' + sets if sets else ''})"
    except (OSError, ValueError, KeyError):
        return run_dir.name
