"""`resdsl train`: compile a spec, train the generated model with its recipe, keep a run directory.

The run directory holds model.py (the generated code that was trained), recipe.json (everything
resolved), metrics.csv, summary.json, curves.png, checkpoint.pt and TensorBoard events when
tensorboard is installed. The training core (data order, augmentation, schedule, state) lives in
`trainlib`, which the standalone train.py embeds; this module adds files, devices, processes,
progress and guards. The run directory's rules (ownership, the lock, atomic writes) are in `rundir`,
what identifies a network and its data in `fingerprint`, the memory estimate in `memory`.

Order of a run, so that bad input costs nothing: options and the spec (no torch imported), the
checkpoint and the run directory (read only), the memory estimate, the data, and only then the lock,
the writes and the first allocation of the model.
"""

from __future__ import annotations

import json
import math
import os
import re
import shlex
import signal
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from resdsl.diagnostics import InputError, UsageError
from resdsl.train import rundir
from resdsl.train import threads as threading_policy
from resdsl.train.rundir import CHECKPOINT, COLUMNS, read_metrics, write_metrics  # noqa: F401 - re-exported

FORMAT = "resdsl-checkpoint-2"
OLD_FORMATS = ("resdsl-checkpoint-1",)  # no network fingerprint: name, params, FLOPs, layers only
RESUMABLE = ("iterations", "eval_every", "checkpoint_every")  # recipe fields a resumed run may change
LAUNCHED = "RESDSL_NPROC"  # set by `resdsl train --nproc N` for the processes it starts


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
    workers: int | None = None  # DataLoader processes decoding image folders (default: the free cores, at most 8)
    threads: int | None = None  # torch intra-op threads (default: chosen by `threads.decide`)
    threads_reason: str | None = None  # why `threads` (a sweep or --nproc sharing out the cores); default --threads N
    interrupt_at: int | None = None  # tests: behave as if Ctrl-C came after this iteration
    recipe_overrides: dict[str, Any] = field(default_factory=dict)  # from --iterations, --batch, --lr, ...
    quiet: bool = False


class Interrupted(Exception):
    """Ctrl-C or SIGTERM: a checkpoint was saved; the CLI exits 128 + the signal's number (130, 143)."""

    def __init__(self, message: str, code: int = 130, report: bool = True) -> None:
        super().__init__(message)
        self.code = code
        self.report = report  # False on the ranks > 0 of a distributed run: rank 0 says it


class StopNow(KeyboardInterrupt):
    """The same signal twice: stop at once, without a checkpoint."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.code = 128 + int(signum)


# ---------------------------------------------------------------------------------------- helpers


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
    if not isinstance(state, dict) or state.get("format") not in (FORMAT, *OLD_FORMATS):
        raise InputError(f"{path} is not a resdsl training checkpoint")
    needed = ("network", "data", "recipe", "trainer", "best", "wall_time") if state["format"] == FORMAT else ("spec",)
    missing = [k for k in (*needed, "recipe", "trainer") if k not in state]
    if not missing and not (isinstance(state["trainer"], dict) and isinstance(state["recipe"], dict)):
        missing = ["trainer" if not isinstance(state["trainer"], dict) else "recipe"]
    if not missing and "iteration" not in state["trainer"]:
        missing = ["trainer.iteration"]
    if missing:
        raise InputError(
            f"{path} is not a complete resdsl training checkpoint (no {', '.join(dict.fromkeys(missing))})"
        )
    return state


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """Write atomically: a temporary file, fsync, then rename over the old checkpoint, fsync the directory."""
    import torch

    rundir.atomic_write(path, lambda f: torch.save(state, f))


def import_model(path: Path):
    """Import a generated model.py from its path (not from sys.path)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"resdsl_run_model_{abs(hash(str(path)))}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class Dist:
    """torchrun's environment: rank, world size, local rank; a no-op when run alone."""

    def __init__(self) -> None:
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self.local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        self.local_world = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
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

    def finish(self) -> None:
        """After a run that succeeded: every rank reaches the end before any tears down, since gloo aborts
        a process ("terminate called without an active exception") whose peer closes the connection under
        it. Not on failure: the others would wait here for a rank that is gone (torchrun stops them)."""
        if self.active:
            import torch.distributed as dist

            dist.barrier()


DEVICE = re.compile(r"(cpu|cuda)(:\d+)?")


def check_device_name(requested: str | None) -> None:
    """--device's spelling, checked before torch is imported."""
    if requested is not None and not DEVICE.fullmatch(requested):
        raise UsageError(f"--device {requested}: use cpu, cuda or cuda:N")


def pick_device(requested: str | None, dist: Dist):
    import torch

    check_device_name(requested)
    if requested is None:
        requested = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(requested)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise InputError(f"--device {requested}: CUDA is not available here; use --device cpu")
        if dist.active or device.index is None:
            device = torch.device("cuda", dist.local_rank if dist.active else 0)
        torch.cuda.set_device(device)
    return device


def _spell(key: str, value: Any, from_option: bool) -> str:
    """How the user typed a recipe value: `--batch 7` or `--set batch=7`."""
    text = json.dumps(value) if isinstance(value, (bool, list)) or value is None else str(value)
    return f"--{key.replace('_', '-')} {text}" if from_option else f"--set {key}={text}"


def _value(v: Any) -> str:
    if isinstance(v, bool) or v is None:
        return json.dumps(v)
    if isinstance(v, list):
        return "[" + ", ".join(map(str, v)) + "]"
    return str(v)


def resume_command(spec: Path, sets: tuple[str, ...], opts: Options, out: Path) -> str:
    """The complete command that continues this run: the spec, --resume, the data and every option given."""
    args = ["resdsl", "train", str(spec), "--resume", str(out)]
    if opts.dataset:
        args += ["--dataset", opts.dataset]
    if opts.data:
        args += ["--data", str(opts.data)]
    for key, value in opts.recipe_overrides.items():
        args += [f"--{key.replace('_', '-')}", _value(value)]
    if opts.device:
        args += ["--device", opts.device]
    if opts.amp != "auto":
        args += ["--amp", opts.amp]
    args += ["--compile"] if opts.compile else []
    args += ["--deterministic"] if opts.deterministic else []
    args += [] if opts.channels_last else ["--no-channels-last"]
    args += ["-q"] if opts.quiet else []
    args += ["--workers", str(opts.workers)] if opts.workers is not None else []
    args += ["--threads", str(opts.threads)] if opts.threads is not None and opts.threads_reason is None else []
    if os.environ.get(LAUNCHED):
        args += ["--nproc", os.environ[LAUNCHED]]
    for s in sets:
        args += ["--set", s]
    return shlex.join(args)


# ---------------------------------------------------------------------------------------- the plan


@dataclass
class Plan:
    """What `prepare` decided: everything checked that needs neither the data nor the model."""

    ir: Any
    cfg: dict[str, Any]
    out: Path | None
    network: dict[str, Any]  # fingerprint.network(ir)
    state: dict[str, Any] | None = None  # the checkpoint resumed from
    run_data: dict[str, Any] | None = None  # the data fingerprint the run was trained on
    previous: dict[str, Any] | None = None  # the run's recipe.json, when resuming
    rows: list[dict[str, float]] = field(default_factory=list)  # metrics.csv rows kept when resuming
    start: int = 0  # the iteration training starts from
    finished: dict[str, Any] | None = None  # the summary of a run with nothing left to do
    lock: rundir.Lock | None = None
    notes: list[str] = field(default_factory=list)

    def release(self) -> None:
        if self.lock is not None:
            self.lock.release()
            self.lock = None


def prepare(
    spec: Path, sets: tuple[str, ...], opts: Options, world: int = 1, lock: bool = True, owner: bool = True
) -> Plan:
    """Check the options, the spec, the checkpoint and the run directory; no data is read, no model built,
    torch is imported only to read a checkpoint. With `lock`, the run directory is locked (if it exists
    already) before anything in it is read, and the Plan holds the lock. Without `owner` (the ranks > 0 of a
    distributed run, which never write), who owns the run directory is not checked: rank 0 does."""
    from resdsl.ir.pipeline import load_network
    from resdsl.lang.overrides import parse_sets
    from resdsl.lang.recipe import FIELDS
    from resdsl.train import fingerprint

    check_device_name(opts.device)
    if opts.amp == "fp16" and opts.device == "cpu":
        raise UsageError("--amp fp16 needs CUDA; use --amp bf16 or off on the CPU")
    set_values = parse_sets(sets)
    overrides = dict(set_values)
    overrides.update(opts.recipe_overrides)
    ir = load_network(spec, overrides)
    cfg = ir.recipe.to_json()
    given = {k: _spell(k, cfg[k], False) for k in set_values if k in FIELDS}
    given.update({k: _spell(k, cfg[k], True) for k in opts.recipe_overrides})
    if opts.dataset:
        cfg["dataset"] = opts.dataset
        given["dataset"] = f"--dataset {opts.dataset}"
    plan = Plan(ir=ir, cfg=cfg, out=Path(opts.out) if opts.out else None, network=fingerprint.network(ir))
    try:
        if opts.resume is not None:
            _prepare_resume(plan, opts, given, lock and owner, owner)
        elif plan.out is not None and owner:
            rundir.check_new(plan.out)
            if lock and plan.out.is_dir():
                plan.lock = rundir.Lock(plan.out)
                rundir.check_new(plan.out)  # again, now that no one else can write it
        batch = plan.cfg["batch"]
        if batch % world:
            source = given.get("batch") or (f"the run's batch {batch}" if opts.resume else f"the spec's batch {batch}")
            raise UsageError(
                f"{source} does not split evenly over {world} processes; use a batch that is a multiple of {world}"
            )
    except BaseException:
        plan.release()
        raise
    return plan


def _check_crop(plan: Plan, opts: Options) -> None:
    """The augmentation's crop must give the network's input size (0: no crop)."""
    crop, pad = int(plan.cfg["crop"]), int(plan.cfg["pad"])
    _, h, w = plan.ir.input_shape
    if plan.cfg["dataset"] == "imagenet":
        _check_scale(plan, h, w)
    elif plan.cfg.get("area_min"):
        raise InputError(
            f"the recipe's `augment area` (RandomResizedCrop) is for image folders (--dataset imagenet), "
            f"not {plan.cfg['dataset']}: use --set area_min=0"
        )
    if crop and (crop != h or crop != w):
        source = f"the {'run' if opts.resume else 'recipe'}'s crop {crop}"
        fix = f"--set crop={h}" if h == w else "--set crop=0"
        raise InputError(
            f"{source}: crops of {crop}x{crop} do not fit {plan.ir.name}, which takes {h}x{w} images; "
            f"a crop must be the input's size (padded by {pad} first): use {fix}"
        )


def _check_scale(plan: Plan, h: int, w: int) -> None:
    """ImageNet crops a square of the input's size from an image whose shorter side is in [scale_min, scale_max]."""
    lo, hi = int(plan.cfg["scale_min"]), int(plan.cfg["scale_max"])
    if h != w:
        raise InputError(f"--dataset imagenet crops square images but {plan.ir.name} takes {h}x{w} images")
    if (lo or hi) and not (lo and hi and lo <= hi):
        raise InputError(f"the recipe's scale [{lo}, {hi}] is no range of sizes: set both, scale_min <= scale_max")
    area = (float(plan.cfg.get("area_min") or 0), float(plan.cfg.get("area_max") or 0))
    ratio = (float(plan.cfg.get("ratio_min") or 0), float(plan.cfg.get("ratio_max") or 0))
    if area[0] and (lo or hi):
        raise InputError(
            f"the recipe has both scale [{lo}, {hi}] and area [{area[0]:g}, {area[1]:g}]: the paper's scale "
            f"augmentation or RandomResizedCrop, not both (--set scale_min=0 --set scale_max=0, or --set area_min=0)"
        )
    if area[0] and not (0 < area[0] <= area[1] <= 1 and 0 < ratio[0] <= ratio[1]):
        raise InputError(
            f"the recipe's area [{area[0]:g}, {area[1]:g}] and ratio [{ratio[0]:g}, {ratio[1]:g}] are no ranges: "
            f"0 < area_min <= area_max <= 1 and 0 < ratio_min <= ratio_max"
        )
    if lo and lo < h:
        raise InputError(
            f"the recipe's scale [{lo}, {hi}] resizes the shorter side below the {h}x{w} crop that {plan.ir.name} "
            f"takes: use --set scale_min={h} or more"
        )


def _prepare_resume(plan: Plan, opts: Options, given: dict[str, str], lock: bool, owner: bool) -> None:
    from resdsl.train import fingerprint

    ckpt = checkpoint_path(opts.resume)
    source = ckpt.parent
    recipe_file = source / rundir.RECIPE
    if not ckpt.exists() and not (Path(opts.resume).is_dir() and recipe_file.exists()):
        raise InputError(f"--resume {ckpt}: no such checkpoint")
    out = plan.out or source
    plan.out = out
    if owner and out.resolve() != source.resolve():
        rundir.check_new(out)  # continuing into another directory: a new one
    if lock and out.is_dir():
        plan.lock = rundir.Lock(out)  # before reading: no one advances the run while this one starts
        if out.resolve() != source.resolve():
            rundir.check_new(out)
    previous = rundir.read_json(recipe_file)
    here = plan.network
    if ckpt.exists():
        state = load_checkpoint(ckpt)
        if state["format"] == FORMAT:
            try:
                diff = fingerprint.difference(state["network"], here)
                theirs = fingerprint.summary(state["network"])
            except (KeyError, TypeError, AttributeError):
                raise InputError(f"{ckpt}: its network fingerprint is unreadable; it cannot be checked") from None
        else:
            old = state["spec"]
            mine = {"name": plan.ir.name, "params": here["params"], "flops": here["flops"], "layers": here["layers"]}
            diff = next(
                (f"its {k} is {mine[k]} here, {old[k]} in the run" for k in mine if old.get(k) != mine[k]), None
            )
            theirs = f"{old['name']}, {old['layers']} layers, {old['params']:,} params"
            plan.notes.append(
                f"note: {ckpt} predates network fingerprints: only the network's name, params, FLOPs and layers "
                f"were compared"
            )
        run_cfg = dict(state["recipe"])
        plan.state = state
        plan.run_data = state.get("data")
        plan.start = int(state["trainer"]["iteration"])
        where = ckpt
    else:  # a run stopped before its first checkpoint: start it again from iteration 0
        if previous is None or "fingerprint" not in previous or not isinstance(previous.get("recipe"), dict):
            raise InputError(f"--resume {ckpt}: no such checkpoint ({recipe_file} is not a resdsl recipe.json)")
        stored = previous["fingerprint"]
        diff = None
        if stored.get("network") != here["digest"]:
            diff = f"{fingerprint.summary(here)} here, {stored.get('summary')} in the run (another fingerprint)"
        theirs = stored.get("summary")
        run_cfg = dict(previous["recipe"])
        plan.run_data = stored.get("data")
        plan.start = 0
        where = recipe_file
        plan.notes.append(f"note: {source} has no checkpoint yet; starting it again from iteration 0")
    if diff is not None:
        raise InputError(
            f"{where} belongs to another network: {diff} (the run: {theirs}; here: {fingerprint.summary(here)}); "
            f"pass the spec and --set values it was trained with"
        )
    for key, spelled in given.items():
        if key not in RESUMABLE and plan.cfg.get(key) != run_cfg.get(key):
            raise UsageError(
                f"{spelled}: the run in {source} was trained with {key} {_value(run_cfg.get(key))} and a resumed "
                f"run keeps its recipe; only --iterations, --eval-every and --checkpoint-every may change "
                f"(for another recipe, start a new run with another --out)"
            )
    for key in RESUMABLE:
        if key in given:
            run_cfg[key] = plan.cfg[key]
    plan.cfg = run_cfg
    plan.previous = previous
    target = int(run_cfg["iterations"])
    if target < plan.start:
        raise UsageError(
            f"{given.get('iterations', f'--iterations {target}')}: the run in {source} is already at iteration "
            f"{plan.start}; nothing was changed (to train further, pass --iterations above {plan.start})"
        )
    if plan.start:
        try:
            rows = read_metrics(source / rundir.METRICS)
        except InputError as err:
            raise InputError(f"{err}; repair or delete it to resume (its rows are then lost)") from None
        plan.rows = [r for r in rows if r["iteration"] <= plan.start]
    if target == plan.start and plan.start and out.resolve() == source.resolve():
        summary = rundir.read_json(out / rundir.SUMMARY)
        if summary and summary.get("iterations") == plan.start:
            plan.finished = summary


# ---------------------------------------------------------------------------------------- the run


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
        previous = rundir.read_json(checkpoint_path(opts.resume).parent / rundir.RECIPE) or {}
        count = previous.get("threads")
        if isinstance(count, int) and not isinstance(count, bool) and count > 0:
            requested, reason = count, f"the run's {count}: --deterministic resumes with the count it started with"
    return threading_policy.decide(requested, reason=reason)


def _run(spec, sets, opts: Options, plan: Plan, dist: Dist, choice: threading_policy.Threading) -> dict[str, Any]:
    say = _Printer(dist.rank == 0 and not opts.quiet)
    if plan.finished is not None:
        for note in plan.notes:
            say.line(note)
        say.line(
            f"{plan.out} already finished its {plan.start} iterations: nothing to do "
            f"(to train further, pass --iterations above {plan.start})"
        )
        return plan.finished

    from resdsl.backends.pytorch.codegen import render_model
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
    _check_crop(plan, opts)

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
    try:
        result = _train(
            spec, sets, opts, plan, dataset, data, data_fp, device, amp, dist, notes, say, render_model, choice
        )
        dist.finish()
        return result
    finally:
        torch.use_deterministic_algorithms(deterministic)
        torch.set_num_threads(threads_before)
        dist.stop()


def _train(spec, sets, opts, plan, dataset, data, data_fp, device, amp, dist, notes, say, render_model, choice):
    import torch

    from resdsl.train import data as datasets
    from resdsl.train import fingerprint, trainlib

    ir, cfg, state = plan.ir, plan.cfg, plan.state
    out = plan.out
    if out is None:
        out = dist.broadcast(default_run_dir(spec))
    out = Path(out)
    ckpt = out / CHECKPOINT
    main = dist.rank == 0
    n_train, n_test = datasets.sizes(data)
    if main:
        out.mkdir(parents=True, exist_ok=True)
        if plan.lock is None:  # the directory did not exist when the run was prepared
            plan.lock = rundir.Lock(out)
            if state is None and opts.resume is None:
                rundir.check_new(out)
        rundir.sweep(out)
    for note in notes:
        say.line(note)
    say.line(choice.line())

    if opts.deterministic:
        torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.benchmark = False
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    elif device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True

    runtime = {
        "device": str(device),
        "amp": amp,
        "compile": opts.compile,
        "channels_last": opts.channels_last,
        "deterministic": opts.deterministic,
        "world_size": dist.world,
        "threads": choice.threads,
        "torch": torch.__version__,
    }
    if plan.previous is not None and "fingerprint" in plan.previous:
        # a resumed run: what it was started with stays; the recipe (iterations may grow) and the runtime follow
        resolved = dict(plan.previous, recipe=cfg, **runtime)
        changes = {k: cfg[k] for k in RESUMABLE if plan.previous.get("recipe", {}).get(k) != cfg[k]}
        if changes:
            resolved["resumed"] = [*plan.previous.get("resumed", []), {"at": plan.start, "changed": changes}]
    else:
        resolved = {
            "spec": str(spec),
            "network": ir.name,
            "sets": list(sets),
            "params": {k: v if isinstance(v, (int, float, str, bool)) else str(v) for k, v in ir.params.items()},
            "recipe": cfg,
            "dataset": dataset,
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
        "data": data_fp,
    }
    source = render_model(ir, spec)
    model_file = out / rundir.MODEL
    metrics_file = out / rundir.METRICS
    rows = list(plan.rows) if state is not None else []
    if main:
        # recipe.json first: from then on the directory is a run that --resume recognises
        rundir.atomic_write(out / rundir.RECIPE, json.dumps(resolved, indent=2) + "\n")
        if not model_file.exists() or model_file.read_text() != source:
            rundir.atomic_write(model_file, source)
        write_metrics(metrics_file, rows)
    if dist.active:
        import torch.distributed

        torch.distributed.barrier()
    module = import_model(model_file)
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
    trainer_class, extra = trainlib.Trainer, {}
    if dataset == "imagenet":
        from resdsl.train.folder_trainer import FolderTrainer

        trainer_class, extra = FolderTrainer, {"workers": choice.workers, "input_shape": tuple(ir.input_shape)}
    trainer = trainer_class(
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
        **extra,
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

    writer = _tensorboard(out) if main else None

    def checkpoint() -> None:
        if main:
            save_checkpoint(
                ckpt,
                {
                    "format": FORMAT,
                    "network": plan.network,
                    "data": data_fp,
                    "recipe": cfg,
                    "trainer": trainer.state_dict(),
                    "best": best,
                    "wall_time": wall_before + time.perf_counter() - started,
                    "normalize": {"mean": trainer.mean.cpu(), "std": (1.0 / trainer.inv_std).cpu()},
                },
            )

    total = int(cfg["iterations"])
    stop = _StopFlag()
    started = time.perf_counter()
    say.line(
        f"training {ir.name} ({ir.totals.params:,} params) on {dataset} "
        f"({n_train} train / {n_test} test images) on {device}"
        + (f" x {dist.world} processes" if dist.active else "")
        + f", {total} iterations of batch {cfg['batch']} -> {out}"
    )
    lr = trainer.lr()

    def eval_row(it: int) -> dict[str, float]:
        row = {"iteration": it, "lr": lr, **trainer.train_metrics()}
        row.update(trainer.test_metrics())
        trainer.observe(row.get("val_error", row["test_error"]))  # the plateau schedule's signal
        return row

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
                row = eval_row(it)
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
            signum = stop.signum or (signal.SIGINT if opts.interrupt_at is not None and it == opts.interrupt_at else 0)
            if dist.active:  # every process stops at the same iteration; SIGTERM wins over SIGINT
                flags = torch.tensor([float(signum == signal.SIGINT), float(signum == signal.SIGTERM)])
                flags = dist.all_reduce(device)(flags)
                signum = signal.SIGTERM if flags[1] > 0 else signal.SIGINT if flags[0] > 0 else 0
            if signum and it < total:
                checkpoint()
                if writer is not None:
                    writer.close()
                what = "interrupted" if signum == signal.SIGINT else f"stopped by {signal.Signals(signum).name}"
                raise Interrupted(
                    f"{what} at iteration {it} of {total}; checkpoint saved: continue with "
                    + resume_command(spec, sets, opts, out),
                    code=128 + int(signum),
                    report=main,
                )
    if not rows or rows[-1]["iteration"] != trainer.iteration:  # a resumed run that had nothing left to train
        lr = trainer.lr()
        rows.append(eval_row(trainer.iteration))
        if main:
            write_metrics(metrics_file, rows)
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
        "threads": choice.to_json(),
    }
    if not math.isnan(last.get("val_error", math.nan)):
        summary["final_val_error"] = last["val_error"]
    if main:
        rundir.atomic_write(out / rundir.SUMMARY, json.dumps(summary, indent=2) + "\n")
        if writer is not None:
            writer.close()
        import importlib.util

        if importlib.util.find_spec("matplotlib") is None:
            say.line("note: matplotlib is missing, no curves.png (pip install 'resdsl[plot]')")
        else:
            plot_runs([out], out / rundir.CURVES)
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
    """Ctrl-C (SIGINT) or SIGTERM asks the loop to stop after the current iteration and save a checkpoint; the
    same signal a second time stops at once. (Under `--nproc`, torchrun answers a Ctrl-C by sending SIGTERM to
    its processes: a signal of the other kind does not cut the checkpoint short.)"""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.signum = 0
        self._old: dict[int, Any] = {}

    def __enter__(self):
        for sig in self.SIGNALS:
            try:
                self._old[sig] = signal.signal(sig, self._handle)
            except ValueError:  # not the main thread
                pass
        return self

    def _handle(self, signum, frame) -> None:
        if self.signum == signum:
            raise StopNow(signum)
        self.signum = self.signum or signum

    def __exit__(self, *exc) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)


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


def plot_formats() -> dict[str, str]:
    """The file formats matplotlib writes, by extension (ImportError without matplotlib)."""
    from matplotlib.backend_bases import FigureCanvasBase

    return dict(FigureCanvasBase.get_supported_filetypes())


def check_plot_output(output: Path) -> str:
    """The format of `-o FILE` from its extension; UsageError listing the formats when it has none matplotlib writes."""
    try:
        formats = plot_formats()
    except ImportError:
        raise InputError("resdsl plot needs matplotlib: pip install 'resdsl[plot]'") from None
    fmt = Path(output).suffix[1:].lower()
    if fmt not in formats:
        what = f"unknown format `{fmt}`" if fmt else "no extension to tell the format"
        raise UsageError(f"-o {output}: {what}; use one of {', '.join('.' + f for f in sorted(formats))}")
    return fmt


def read_curves(run_dir: Path) -> list[dict[str, float]]:
    """A run's metrics.csv rows, checked to hold the train and test error."""
    metrics = Path(run_dir) / rundir.METRICS
    rows = read_metrics(metrics)
    if not rows:
        raise InputError(f"{run_dir} has no metrics.csv rows; is it a resdsl run directory?")
    missing = [c for c in ("train_error", "test_error") if c not in rows[0]]
    if missing:
        raise InputError(f"{metrics}:1: no {' or '.join(missing)} column; is it a resdsl metrics.csv?")
    return rows


def pyplot():
    """matplotlib's pyplot on the Agg back end (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def draw_error_curves(ax, rows: list[dict[str, float]], colour: str, label: str) -> None:
    """One run's train error (dashed, thin) and test error (solid, bold) against iterations, in %."""
    its = [r["iteration"] for r in rows]
    ax.plot(its, [100 * r["train_error"] for r in rows], "--", color=colour, linewidth=1, label=f"{label} train")
    ax.plot(its, [100 * r["test_error"] for r in rows], "-", color=colour, linewidth=2, label=f"{label} test")


def save_figure(fig, output: Path, fmt: str) -> None:
    """Write a figure atomically (its directory made) and close it."""
    plt = pyplot()
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    try:
        rundir.atomic_write(output, lambda f: fig.savefig(f, format=fmt, dpi=120))
    finally:
        plt.close(fig)


def plot_runs(runs: list[Path], output: Path) -> None:
    """Train (dashed) and test (solid) error against iterations, one colour per run (the paper's Fig. 6)."""
    fmt = check_plot_output(output)
    curves = [(Path(run_dir), read_curves(run_dir)) for run_dir in runs]
    fig, ax = pyplot().subplots(figsize=(7, 4.5))
    for i, (run_dir, rows) in enumerate(curves):
        draw_error_curves(ax, rows, f"C{i % 10}", _run_label(run_dir))
    ax.set_xlabel("iteration")
    ax.set_ylabel("error (%)")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title("train (dashed) and test (solid) error")
    fig.tight_layout()
    save_figure(fig, output, fmt)


def _run_label(run_dir: Path) -> str:
    try:
        recipe = json.loads((run_dir / "recipe.json").read_text())
        sets = " ".join(recipe.get("sets") or [])
        return f"{run_dir.name} ({recipe['network']}{' ' + sets if sets else ''})"
    except (OSError, ValueError, KeyError, TypeError, AttributeError):  # not a recipe.json resdsl wrote
        return run_dir.name
