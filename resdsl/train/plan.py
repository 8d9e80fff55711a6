"""What a training run is asked to do and what is decided before any data is read or model built.

`Options` are the command's options; `prepare` checks them, the spec, the checkpoint and the run directory
(read only; locked when asked) and returns a `Plan`; `resume_command` spells the command that continues a
run. torch is imported only to read a checkpoint.
"""

from __future__ import annotations

import json
import os
import shlex
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from resdsl.diagnostics import InputError, UsageError
from resdsl.train import rundir
from resdsl.train.checkpoints import FORMAT, checkpoint_path, load_checkpoint
from resdsl.train.dist import LAUNCHED, check_device_name
from resdsl.train.rundir import read_metrics

RESUMABLE = ("iterations", "eval_every", "checkpoint_every")  # recipe fields a resumed run may change


@dataclass
class Options:
    """`resdsl train`'s options (and a sweep's, for each of its runs); the recipe's own values come from the spec."""

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


def default_run_dir(spec: Path) -> Path:
    """Where a run goes without --out: `runs/SPEC-YYYYmmdd-HHMMSS`, relative to the current directory."""
    return Path("runs") / f"{Path(spec).stem}-{datetime.now().strftime('%Y%m%d-%H%M%S')}"


def _spell(key: str, value: Any, from_option: bool) -> str:
    """How the user typed a recipe value: `--batch 7` or `--set batch=7`."""
    text = json.dumps(value) if isinstance(value, (bool, list)) or value is None else str(value)
    return f"--{key.replace('_', '-')} {text}" if from_option else f"--set {key}={text}"


def _value(v: Any) -> str:
    """A recipe value as an option takes it: `true`, `[32000, 48000]`, `0.1`."""
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
    check_run_outputs(plan.out or (checkpoint_path(opts.resume).parent if opts.resume else None), spec, ir, opts)
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


def check_run_outputs(out: Path | None, spec: Path, ir, opts: Options) -> None:
    """UsageError when a file the run writes (RUN/model.py, RUN/checkpoint.pt, ...) is one it reads: the spec,
    a file the spec imports, the data (resdsl/files.py: refuse_overwrite, through symlinks too)."""
    if out is None:
        return
    from resdsl.files import refuse_overwrite

    inputs = [("the spec", Path(spec)), *(("the imported file", Path(f)) for f in ir.files)]
    if opts.data is not None and not Path(opts.data).is_dir():
        inputs.append(("the data", Path(opts.data)))
    outputs = [(f"the run's {name}", Path(out) / name) for name in rundir.FILES if name != "tensorboard"]
    refuse_overwrite(outputs, inputs, UsageError, "keep the run directory for the files resdsl writes")


def check_crop(plan: Plan, opts: Options) -> None:
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
            diff = fingerprint.legacy_difference(old, here)
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
