"""`resdsl train`'s run: compile a spec, train the generated model with its recipe, keep a run directory.

The run directory holds model.py (the generated code that was trained), recipe.json (everything resolved),
metrics.csv, summary.json, curves.png, checkpoint.pt and TensorBoard events when tensorboard is installed.
The training core (data order, augmentation, schedule, state) lives in `trainlib`, which the standalone
train.py embeds; this module adds files, devices, processes and guards. What a run is asked and what is
decided before the data is read is in `plan`, checkpoints in `checkpoints`, torchrun and devices in `dist`,
progress and signals in `console`, the curves in `plots`; the run directory's rules (ownership, the lock,
atomic writes) are in `rundir`, what identifies a network and its data in `fingerprint`, the memory
estimate in `memory`.

Order of a run, so that bad input costs nothing: options and the spec (no torch imported), the checkpoint
and the run directory (read only), the memory estimate, the data, and only then the lock, the writes and
the first allocation of the model.
"""

from __future__ import annotations

import json
import math
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from resdsl.diagnostics import InputError, UsageError
from resdsl.train import checkpoints, rundir
from resdsl.train import threads as threading_policy
from resdsl.train.console import Interrupted, Printer, StopFlag
from resdsl.train.dist import Dist, pick_device
from resdsl.train.plan import RESUMABLE, Options, Plan, check_crop, default_run_dir, prepare, resume_command
from resdsl.train.rundir import CHECKPOINT, write_metrics


def run(spec: Path, sets: tuple[str, ...], opts: Options) -> dict[str, Any]:
    """Train; returns the summary. Raises InputError/UsageError for bad input, Interrupted on Ctrl-C/SIGTERM."""
    dist = Dist()
    choice = pick_threads(opts)
    threading_policy.export_env(choice)  # OpenMP's wait policy: acts only before torch is first imported
    plan = prepare(spec, sets, opts, world=dist.world, lock=dist.rank == 0, owner=dist.rank == 0)
    try:
        return _run(spec, sets, opts, plan, dist, choice)
    finally:
        plan.release()


def pick_threads(opts: Options) -> threading_policy.Threading:
    """The run's threads (threads.py): --threads, else OMP_NUM_THREADS, else from the cores and their load. A
    --deterministic run resumes with the thread count it started with (it decides the order of float sums)."""
    requested, reason = opts.threads, opts.threads_reason
    if requested is None and opts.deterministic and opts.resume is not None:
        previous = rundir.read_json(checkpoints.checkpoint_path(opts.resume).parent / rundir.RECIPE) or {}
        count = previous.get("threads")
        if isinstance(count, int) and not isinstance(count, bool) and count > 0:
            requested, reason = count, f"the run's {count}: --deterministic resumes with the count it started with"
    return threading_policy.decide(requested, reason=reason)


@dataclass(frozen=True)
class Session:
    """A run whose every input is checked (the device, the memory, the data): what `_train` trains with."""

    spec: Path
    sets: tuple[str, ...]
    opts: Options
    plan: Plan
    dist: Dist
    device: Any  # torch.device
    amp: str  # bf16 | fp16 | off
    data: dict[str, Any]  # datasets.load's tensors (the validation split made) or image folders
    data_fp: dict[str, Any]  # fingerprint.data of it
    notes: tuple[str, ...]  # said once the run directory is set up
    threads: threading_policy.Threading
    say: Printer

    @property
    def dataset(self) -> str:
        return self.plan.cfg["dataset"]

    @property
    def main(self) -> bool:
        """Rank 0: the one process that writes the run directory."""
        return self.dist.rank == 0


def _run(
    spec: Path, sets: tuple[str, ...], opts: Options, plan: Plan, dist: Dist, choice: threading_policy.Threading
) -> dict[str, Any]:
    """The checks that need the device and the data, then the training in a set-up torch (threads, processes)."""
    say = Printer(dist.rank == 0 and not opts.quiet)
    if plan.finished is not None:
        for note in plan.notes:
            say.line(note)
        say.line(
            f"{plan.out} already finished its {_count(plan.start, 'iteration')}: nothing to do "
            f"(to train further, pass --iterations above {plan.start})"
        )
        return plan.finished

    from resdsl.train import data as datasets
    from resdsl.train import fingerprint, memory

    ir, cfg = plan.ir, plan.cfg
    dataset = cfg["dataset"]
    device = pick_device(opts.device, dist)
    amp = opts.amp if opts.amp != "auto" else ("bf16" if device.type == "cuda" else "off")
    if amp == "fp16" and device.type == "cpu":
        raise UsageError("--amp fp16 needs CUDA; use --amp bf16 or off on the CPU")

    datasets.precheck(dataset, opts.data, tuple(ir.input_shape))
    # The memory a run needs, from the IR's shapes, before the data or the model exist.
    data_limit = memory.data_limit()
    arrays = datasets.npz_arrays(opts.data, data_limit) if dataset == "npz" else None
    local_batch = int(cfg["batch"]) // dist.world
    data_bytes = memory.data_bytes(dataset, ir.input_shape, arrays)
    estimate = memory.estimate(ir, local_batch, int(cfg["pad"]), data_bytes, amp)
    memory.check(ir, estimate, device, processes=dist.local_world)
    check_crop(plan, opts)

    # Everything that can fail on bad input happens before the run directory is touched.
    quiet = opts.quiet or dist.rank > 0
    data = datasets.load(dataset, opts.data, tuple(ir.input_shape), ir.classes, quiet=quiet, max_bytes=data_limit)
    data_fp = fingerprint.data(dataset, data)
    if plan.run_data is not None:
        diff = fingerprint.data_difference(plan.run_data, data_fp)
        if diff is not None:
            raise InputError(f"{opts.resume} was trained on other data: {diff}; pass the --dataset and --data it used")
    n_train, _ = datasets.sizes(data)
    notes = list(plan.notes)
    if cfg["val"] and dataset == "imagenet":
        notes.append(f"note: split val: {cfg['val']} ignored: imagenet validates on its val/ folder")
    elif cfg["val"]:  # the recipe keeps its value (a resumed run compares it), only this run ignores it
        if cfg["val"] * 2 > n_train:
            notes.append(f"note: split val: {cfg['val']} ignored: {dataset} has {n_train} training images")
        else:
            data = datasets.split_val(data, cfg["val"])
    if dataset == "imagenet":  # decodes training images: before anything is written
        datasets.imagenet_normalizer(data, cfg, int(ir.input_shape[1]))
    if cfg["batch"] > datasets.sizes(data)[0]:
        raise InputError(
            f"the batch of {cfg['batch']} is larger than the {datasets.sizes(data)[0]} training images; use --batch"
        )

    import torch

    if dataset == "imagenet":
        choice = threading_policy.with_loader(choice, opts.workers)
    threads_before = threading_policy.apply(choice)  # restored after the run (in-process callers: tests, sweeps)
    dist.start(device.type)
    deterministic = torch.are_deterministic_algorithms_enabled()
    session = Session(spec, sets, opts, plan, dist, device, amp, data, data_fp, tuple(notes), choice, say)
    try:
        result = _train(session)
        dist.finish()
        return result
    finally:
        torch.use_deterministic_algorithms(deterministic)
        torch.set_num_threads(threads_before)
        dist.stop()


# ---------------------------------------------------------------------------------------- the training


def _train(s: Session) -> dict[str, Any]:
    """Set up the run directory, build the model, train to the recipe's iterations; returns the summary."""
    import torch

    from resdsl.backends.pytorch.codegen import render_model
    from resdsl.train import trainlib
    from resdsl.train.datafiles import DataError

    plan, opts, dist, say = s.plan, s.opts, s.dist, s.say
    ir, cfg, state = plan.ir, plan.cfg, plan.state
    out = _run_dir(s)
    ckpt = out / CHECKPOINT
    for note in s.notes:
        say.line(note)
    say.line(s.threads.line())
    _set_backends(s)

    source = render_model(ir, s.spec)
    model_file = out / rundir.MODEL
    metrics_file = out / rundir.METRICS
    rows = list(plan.rows) if state is not None else []
    if s.main:
        # recipe.json first: from then on the directory is a run that --resume recognises
        rundir.atomic_write(out / rundir.RECIPE, json.dumps(_resolved(s), indent=2) + "\n")
        if not model_file.exists() or model_file.read_text() != source:
            rundir.atomic_write(model_file, source)
        write_metrics(metrics_file, rows)
    dist.barrier()
    trainer = _trainer(s, model_file)
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

    writer = _tensorboard(out) if s.main else None

    def checkpoint(repair: str | None = None) -> None:
        if s.main:
            checkpoints.save_checkpoint(
                ckpt,
                {
                    "format": checkpoints.FORMAT,
                    "network": plan.network,
                    "data": dict(s.data_fp, repair=repair) if repair else s.data_fp,
                    "recipe": cfg,
                    "trainer": trainer.state_dict(),
                    "best": best,
                    "wall_time": wall_before + time.perf_counter() - started,
                    "normalize": {"mean": trainer.mean.cpu(), "std": (1.0 / trainer.inv_std).cpu()},
                },
            )

    total = int(cfg["iterations"])
    stop = StopFlag()
    started = time.perf_counter()
    n_train, n_test = _sizes(s)
    say.line(
        f"training {ir.name} ({ir.totals.params:,} params) on {s.dataset} "
        f"({n_train} train / {n_test} test images) on {s.device}"
        + (f" x {dist.world} processes" if dist.active else "")
        + f", {_count(total, 'iteration')} of batch {cfg['batch']} -> {out}"
    )
    lr = trainer.lr()

    def eval_row(it: int) -> dict[str, float]:
        row = {"iteration": it, "lr": lr, **trainer.train_metrics()}
        row.update(trainer.test_metrics())
        trainer.observe(row.get("val_error", row["test_error"]))  # the plateau schedule's signal
        return row

    def bad_data(err: Exception) -> InputError:
        """An image that failed while training: a checkpoint first, so that nothing trained is lost; it lets
        --resume accept the folder with the file replaced (the same names, other sizes)."""
        checkpoint(repair=str(err)[:500])
        return InputError(
            f"{err}; stopped at iteration {trainer.iteration} of {total} with a checkpoint ({ckpt}): nothing "
            f"trained is lost\n  hint: replace the file with a readable image, then continue with "
            + resume_command(s.spec, s.sets, opts, out)
        )

    with stop, say.progress(total, trainer.iteration) as advance:
        while trainer.iteration < total:
            try:
                lr = trainer.step()
            except DataError as err:
                raise bad_data(err) from None
            except trainlib.NonFiniteLoss as err:
                kept = (
                    f"the last good checkpoint {ckpt} (iteration {checkpoints.checkpoint_iteration(ckpt)}) is kept"
                    if ckpt.exists()
                    else "no checkpoint was written"
                )
                raise InputError(f"{err}; stopped: {kept}; lower the learning rate (--lr)") from None
            it = trainer.iteration
            advance(it)
            if it % cfg["eval_every"] == 0 or it == total:
                try:
                    row = eval_row(it)
                except DataError as err:
                    raise bad_data(err) from None
                if row["test_error"] < best["test_error"]:
                    best = {"test_error": row["test_error"], "iteration": it}
                rows.append(row)
                if s.main:
                    write_metrics(metrics_file, rows)
                    if writer is not None:
                        for k, v in row.items():
                            if k != "iteration" and not math.isnan(v):
                                writer.add_scalar(k, v, it)
                        writer.flush()
                say.eval_line(row, total)
            if it % cfg["checkpoint_every"] == 0 and it < total:
                checkpoint()
            signum = stop.signum or (signal.SIGINT if opts.interrupt_at is not None and it == opts.interrupt_at else 0)
            if dist.active:  # every process stops at the same iteration; SIGTERM wins over SIGINT
                flags = torch.tensor([float(signum == signal.SIGINT), float(signum == signal.SIGTERM)])
                flags = dist.all_reduce(s.device)(flags)
                signum = signal.SIGTERM if flags[1] > 0 else signal.SIGINT if flags[0] > 0 else 0
            if signum and it < total:
                checkpoint()
                if writer is not None:
                    writer.close()
                what = "interrupted" if signum == signal.SIGINT else f"stopped by {signal.Signals(signum).name}"
                raise Interrupted(
                    f"{what} at iteration {it} of {total}; checkpoint saved: continue with "
                    + resume_command(s.spec, s.sets, opts, out),
                    code=128 + int(signum),
                    report=s.main,
                )
    if not rows or rows[-1]["iteration"] != trainer.iteration:  # a resumed run that had nothing left to train
        lr = trainer.lr()
        try:
            rows.append(eval_row(trainer.iteration))
        except DataError as err:
            raise bad_data(err) from None
        if s.main:
            write_metrics(metrics_file, rows)
    checkpoint()
    wall = wall_before + time.perf_counter() - started
    summary = _summary(s, trainer, rows[-1], best, wall)
    if s.main:
        rundir.atomic_write(out / rundir.SUMMARY, json.dumps(summary, indent=2) + "\n")
        if writer is not None:
            writer.close()
        _finish(s, out, summary, wall)
    return summary


def _run_dir(s: Session) -> Path:
    """The run directory, the same on every rank; made, locked and swept of stale temporary files by rank 0."""
    plan = s.plan
    out = Path(plan.out if plan.out is not None else s.dist.broadcast(default_run_dir(s.spec)))
    if s.main:
        out.mkdir(parents=True, exist_ok=True)
        if plan.lock is None:  # the directory did not exist when the run was prepared
            plan.lock = rundir.Lock(out)
            if plan.state is None and s.opts.resume is None:
                rundir.check_new(out)
        rundir.sweep(out)
    return out


def _sizes(s: Session) -> tuple[int, int]:
    from resdsl.train import data as datasets

    return datasets.sizes(s.data)


def _set_backends(s: Session) -> None:
    """--deterministic: deterministic kernels only; otherwise, on CUDA, cuDNN's autotuner and TF32."""
    import torch

    if s.opts.deterministic:
        torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.benchmark = False
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    elif s.device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True


def _resolved(s: Session) -> dict[str, Any]:
    """recipe.json: the spec, --set values, resolved recipe, data, runtime and fingerprints of the run."""
    import torch

    from resdsl.train import fingerprint

    plan, opts, ir, cfg = s.plan, s.opts, s.plan.ir, s.plan.cfg
    runtime = {
        "device": str(s.device),
        "amp": s.amp,
        "compile": opts.compile,
        "channels_last": opts.channels_last,
        "deterministic": opts.deterministic,
        "world_size": s.dist.world,
        "threads": s.threads.threads,
        "torch": torch.__version__,
    }
    if plan.previous is not None and "fingerprint" in plan.previous:
        # a resumed run: what it was started with stays; the recipe (iterations may grow) and the runtime follow
        resolved = dict(plan.previous, recipe=cfg, **runtime)
        changes = {k: cfg[k] for k in RESUMABLE if plan.previous.get("recipe", {}).get(k) != cfg[k]}
        if changes:
            resolved["resumed"] = [*plan.previous.get("resumed", []), {"at": plan.start, "changed": changes}]
    else:
        n_train, n_test = _sizes(s)
        resolved = {
            "spec": str(s.spec),
            "network": ir.name,
            "sets": list(s.sets),
            "params": {k: v if isinstance(v, (int, float, str, bool)) else str(v) for k, v in ir.params.items()},
            "recipe": cfg,
            "dataset": s.dataset,
            "data": str(opts.data) if opts.data else None,
            "train_images": n_train,
            "test_images": n_test,
            **runtime,
            "model_params": int(ir.totals.params),
            "model_flops": int(ir.totals.flops),
            "model_layers": int(ir.totals.layers),
            "model_shortcut": ir.shortcut.value,  # the network's option: `none` is the plain counterpart
        }
    resolved["fingerprint"] = {
        "network": plan.network["digest"],
        "summary": fingerprint.summary(plan.network),
        "data": s.data_fp,
    }
    return resolved


def _trainer(s: Session, model_file: Path) -> Any:
    """The run's model.py built (seeded, on the device, compiled or DDP-wrapped as asked) inside its Trainer."""
    import torch

    from resdsl.train import trainlib

    opts, cfg, device = s.opts, s.plan.cfg, s.device
    module = checkpoints.import_model(model_file)
    torch.manual_seed(int(cfg["seed"]))
    model = module.build_model().to(device)
    if opts.channels_last:
        model = model.to(memory_format=torch.channels_last)
    net = model
    if opts.compile:
        net = torch.compile(net)
    if s.dist.active:
        from torch.nn.parallel import DistributedDataParallel

        # Stochastic depth skips whole residual branches in a batch: their parameters get no gradient on
        # that rank, which DDP must be told to expect (else "Expected to have finished reduction"); per
        # sample every branch runs (masked), so every parameter gets its gradient.
        ir = s.plan.ir
        skips = ir.survival_mode == "per_batch" and any(r.survival < 1.0 for r in ir.residuals)
        net = DistributedDataParallel(
            net, device_ids=[device.index] if device.type == "cuda" else None, find_unused_parameters=skips
        )
    trainer_class, extra = trainlib.Trainer, {}
    if s.dataset == "imagenet":
        from resdsl.train.folder_trainer import FolderTrainer

        extra = {"workers": s.threads.workers, "input_shape": tuple(s.plan.ir.input_shape)}
        trainer_class = FolderTrainer
    return trainer_class(
        model,
        cfg,
        s.data,
        device,
        net=net,
        rank=s.dist.rank,
        world=s.dist.world,
        amp=s.amp,
        channels_last=opts.channels_last,
        all_reduce=s.dist.all_reduce(device),
        **extra,
    )


def _summary(s: Session, trainer: Any, last: dict[str, float], best: dict[str, Any], wall: float) -> dict[str, Any]:
    """summary.json: the final and best errors, the time taken and where the run ran."""
    summary = {
        "network": s.plan.ir.name,
        "spec": str(s.spec),
        "dataset": s.dataset,
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
        "device": str(s.device),
        "world_size": s.dist.world,
        "threads": s.threads.to_json(),
    }
    if not math.isnan(last.get("val_error", math.nan)):
        summary["final_val_error"] = last["val_error"]
    return summary


def _finish(s: Session, out: Path, summary: dict[str, Any], wall: float) -> None:
    """Rank 0, once summary.json is written: curves.png and the closing line."""
    import importlib.util

    from resdsl.train.plots import plot_runs

    if importlib.util.find_spec("matplotlib") is None:
        s.say.line("note: matplotlib is missing, no curves.png (pip install 'resdsl[plot]')")
    else:
        plot_runs([out], out / rundir.CURVES)
    error, best = summary["final_test_error"], summary["best_test_error"]
    s.say.line(
        f"done: test error {100 * error:.2f}% (accuracy {100 * (1 - error):.2f}%), "
        f"best {100 * best:.2f}% at {summary['best_iteration']}, {summary['images_per_s']:.0f} images/s, "
        f"{wall:.1f} s -> {out}"
    )


def _tensorboard(out: Path) -> Any:
    """A SummaryWriter into RUN/tensorboard, or None when tensorboard is not installed."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except Exception:  # tensorboard is not installed
        return None
    return SummaryWriter(log_dir=str(out / "tensorboard"))


def _count(n: int, noun: str) -> str:
    """`1 iteration`, `2 iterations`."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"
