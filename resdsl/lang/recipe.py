"""The `train { }` section: a validated training recipe (run by resdsl.train, emitted by codegen)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from resdsl.diagnostics import SpecError, collect, did_you_mean
from resdsl.lang import syntax
from resdsl.lang.evaluate import Env, evaluate
from resdsl.lang.imports import Program
from resdsl.lang.values import CallValue, Value, describe

DATASETS = ("cifar10", "cifar100", "mnist", "svhn", "digits", "imagenet", "npz", "synthetic")
NORMALIZE = ("per_pixel_mean", "per_channel", "torchvision", "none")
SCHEDULES = ("step", "cosine", "constant", "plateau")


@dataclass
class Recipe:
    """Defaults are the paper's CIFAR-10 recipe (He et al. 2015, Sec. 4.2)."""

    dataset: str = "cifar10"
    batch: int = 128
    optimizer: str = "sgd"
    lr: float = 0.1
    momentum: float = 0.9  # the paper's momentum
    weight_decay: float = 1e-4  # the paper's weight decay
    nesterov: bool = False
    schedule: str = "step"  # step | cosine | constant | plateau
    milestones: list[int] = field(default_factory=lambda: [32000, 48000])  # iterations
    factor: float = 0.1  # lr multiplier at each milestone (plateau: at each plateau)
    patience: int = 5  # plateau: eval points without a lower validation error before the lr drops
    iterations: int = 64000
    warmup_lr: float | None = None  # ResNet-110: 0.01 until the training error is below warmup_until_error
    warmup_until_error: float | None = None
    warmup_iterations: int = 0  # linear warm-up from 0, when no warmup_lr is given
    pad: int = 0
    crop: int = 0
    flip: bool = False
    scale_min: int = 0  # ImageNet scale augmentation: the shorter side resized to a random size in
    scale_max: int = 0  # [scale_min, scale_max] (the paper: [256, 480]); 0: resized to the test size
    lighting: float = 0.0  # std of AlexNet's PCA colour noise (the paper: 0.1)
    area_min: float = 0.0  # torchvision's RandomResizedCrop instead of scale: a box of a random fraction of
    area_max: float = 0.0  # the image's area in [area_min, area_max] (torchvision: [0.08, 1]; 0: off)
    ratio_min: float = 3 / 4  # and a random aspect ratio w/h in [ratio_min, ratio_max], log-uniform,
    ratio_max: float = 4 / 3  # resized to crop x crop
    normalize: str = "per_pixel_mean"
    val: int = 0  # held-out training images (the paper: 5000 of 50000)
    eval_every: int = 1000
    checkpoint_every: int = 5000
    seed: int = 0

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


FIELDS = {f for f in Recipe.__dataclass_fields__}


def _int(v: Value, lo: int = 0) -> int | None:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    if isinstance(v, float) and not v.is_integer():
        return None
    return int(v) if v >= lo else None


def _float(v: Value, lo: float = 0.0) -> float | None:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or v < lo:
        return None
    return float(v)


class _Reader:
    def __init__(self, recipe: Recipe, errors: list[SpecError]) -> None:
        self.r = recipe
        self.errors = errors

    def bad(self, stmt: syntax.OpStmt, message: str, hint: str | None = None) -> None:
        self.errors.append(SpecError(message, stmt.span, hint or _EXAMPLES.get(stmt.name)))

    def set(self, stmt: syntax.OpStmt, name: str, value: Any, check, expects: str) -> None:
        checked = check(value)
        if checked is None:
            self.bad(stmt, f"`{name}` must be {expects}, got {describe(value)}")
        else:
            setattr(self.r, name, checked)

    def call_kwargs(
        self, stmt: syntax.OpStmt, value: Value, allowed: dict[str, tuple[Any, str]], prefix: str = ""
    ) -> None:
        for key, v in value.items() if isinstance(value, dict) else []:
            if key not in allowed:
                self.bad(
                    stmt,
                    f"`{stmt.name}` has no option `{key}`",
                    did_you_mean(key, allowed) or f"options: {', '.join(allowed)}",
                )
                continue
            check, expects = allowed[key]
            self.set(stmt, prefix + key, v, check, expects)


_EXAMPLES = {
    "dataset": "e.g. `dataset cifar10` (" + " | ".join(DATASETS) + ")",
    "batch": "e.g. `batch 128`",
    "optimizer": "e.g. `optimizer sgd(lr: 0.1, momentum: 0.9, weight_decay: 1e-4)`",
    "schedule": "e.g. `schedule step(at: [32000, 48000], factor: 0.1)`, `schedule cosine()` or "
    "`schedule plateau(factor: 0.1, patience: 5)`",
    "iterations": "e.g. `iterations 64000`",
    "warmup": "e.g. `warmup lr: 0.01, until_error: 0.8` or `warmup iterations: 400`",
    "augment": "e.g. `augment pad: 4, crop: 32, flip: true`, `augment scale: [256, 480], crop: 224, flip: true, "
    "lighting: 0.1` or `augment area: [0.08, 1], ratio: [3/4, 4/3], crop: 224, flip: true`",
    "normalize": "e.g. `normalize per_pixel_mean`",
    "split": "e.g. `split val: 5000`",
    "eval_every": "e.g. `eval_every 1000`",
    "checkpoint_every": "e.g. `checkpoint_every 5000`",
    "seed": "e.g. `seed 0`",
}


def _setting(r: _Reader, stmt: syntax.OpStmt, pos: list[Value], kw: dict[str, Value]) -> None:
    name = stmt.name
    one = pos[0] if len(pos) == 1 and not kw else None
    if name == "dataset":
        r.set(stmt, "dataset", one, lambda v: str(v) if v in DATASETS else None, " | ".join(DATASETS))
    elif name in ("batch", "iterations", "eval_every", "checkpoint_every"):
        r.set(stmt, name, one, lambda v: _int(v, 1), "a positive whole number")
    elif name == "seed":
        r.set(stmt, name, one, lambda v: _int(v, 0), "a whole number >= 0")
    elif name == "normalize":
        r.set(stmt, name, one, lambda v: str(v) if v in NORMALIZE else None, " | ".join(NORMALIZE))
    elif name == "optimizer":
        if not isinstance(one, CallValue) or one.name not in ("sgd",) or one.args:
            r.bad(stmt, f"`optimizer` must be sgd(...), got {describe(one)}")
            return
        r.r.optimizer = "sgd"
        opts = {
            "lr": (lambda v: _float(v, 0.0), "a number >= 0"),
            "momentum": (lambda v: _float(v, 0.0), "a number >= 0"),
            "weight_decay": (lambda v: _float(v, 0.0), "a number >= 0"),
            "nesterov": (lambda v: v if isinstance(v, bool) else None, "true or false"),
        }
        r.call_kwargs(stmt, one.kw(), opts)
    elif name == "schedule":
        _schedule(r, stmt, one)
    elif name == "warmup":
        opts = {
            "lr": (lambda v: _float(v, 0.0), "a number >= 0"),
            "until_error": (
                lambda v: _float(v, 0.0) if _float(v, 0.0) is not None and v <= 1 else None,
                "a training error in [0, 1]",
            ),
            "iterations": (lambda v: _int(v, 0), "a whole number >= 0"),
        }
        if pos or not kw:
            r.bad(stmt, "`warmup` takes keyword options")
            return
        r.call_kwargs(stmt, kw, opts, prefix="warmup_")
    elif name == "augment":
        opts = {
            "pad": (lambda v: _int(v, 0), "a whole number >= 0"),
            "crop": (lambda v: _int(v, 1), "a positive whole number"),
            "flip": (lambda v: v if isinstance(v, bool) else None, "true or false"),
            "lighting": (lambda v: _float(v, 0.0), "a number >= 0 (the std of the PCA colour noise)"),
        }
        if pos:
            r.bad(stmt, "`augment` takes keyword options")
            return
        kw = dict(kw)
        if "scale" in kw and "area" in kw:
            r.bad(stmt, "`augment` takes `scale` (the paper's) or `area` (RandomResizedCrop's), not both")
            return
        if "scale" in kw:
            _scale(r, stmt, kw.pop("scale"))
        if "area" in kw:
            _pair(r, stmt, "area", kw.pop("area"), hi=1.0, what="fractions of the image's area, 0 < min <= max <= 1")
        if "ratio" in kw:
            _pair(r, stmt, "ratio", kw.pop("ratio"), hi=None, what="aspect ratios w/h, 0 < min <= max")
        r.call_kwargs(stmt, kw, opts)
    elif name == "split":
        if pos or set(kw) - {"val"}:
            r.bad(stmt, "`split` takes `val: N`, the training images held out for validation")
            return
        r.set(stmt, "val", kw.get("val"), lambda v: _int(v, 0), "a whole number >= 0")
    else:
        r.bad(
            stmt,
            f"unknown train setting `{name}`",
            did_you_mean(name, _EXAMPLES) or f"settings: {', '.join(_EXAMPLES)}",
        )


def _scale(r: _Reader, stmt: syntax.OpStmt, v: Value) -> None:
    """`scale: [256, 480]`: the range of the shorter side before the random crop."""
    if not isinstance(v, list) or len(v) != 2 or any(_int(i, 1) is None for i in v) or v[0] > v[1]:
        got = "[" + ", ".join(map(str, v)) + "]" if isinstance(v, list) else describe(v)
        r.bad(stmt, f"`scale` must be [min, max], two sizes of the shorter side with min <= max, got {got}")
        return
    r.r.scale_min, r.r.scale_max = int(v[0]), int(v[1])


def _pair(r: _Reader, stmt: syntax.OpStmt, name: str, v: Value, hi: float | None, what: str) -> None:
    """`area: [0.08, 1]`, `ratio: [3/4, 4/3]`: a range of positive numbers, stored as NAME_min and NAME_max."""
    numbers = isinstance(v, list) and len(v) == 2 and all(_float(i, 0.0) is not None for i in v)
    if not numbers or not 0 < v[0] <= v[1] or (hi is not None and v[1] > hi):
        got = "[" + ", ".join(map(str, v)) + "]" if isinstance(v, list) else describe(v)
        r.bad(stmt, f"`{name}` must be [min, max], {what}, got {got}")
        return
    setattr(r.r, f"{name}_min", float(v[0]))
    setattr(r.r, f"{name}_max", float(v[1]))


def _schedule(r: _Reader, stmt: syntax.OpStmt, v: Value) -> None:
    if not isinstance(v, CallValue) or v.name not in SCHEDULES or v.args:
        r.bad(
            stmt,
            "`schedule` must be step(at: [...], factor: f), cosine(), constant() or plateau(factor: f, patience: n), "
            f"got {describe(v)}",
        )
        return
    r.r.schedule = v.name
    kw = v.kw()
    if v.name == "step":
        at = kw.pop("at", None)
        if not isinstance(at, list) or any(_int(i, 1) is None for i in at) or at != sorted(at):
            r.bad(stmt, "`step` needs `at: [...]`, increasing iteration numbers")
            return
        r.r.milestones = [int(i) for i in at]
        if "factor" in kw:
            r.set(stmt, "factor", kw.pop("factor"), lambda f: _float(f, 0.0), "a number >= 0")
    elif v.name == "plateau":
        r.r.milestones = []
        if "factor" in kw:
            r.set(stmt, "factor", kw.pop("factor"), lambda f: _float(f, 0.0), "a number >= 0")
        if "patience" in kw:
            r.set(stmt, "patience", kw.pop("patience"), lambda n: _int(n, 1), "a positive whole number")
    else:
        r.r.milestones = []
    for key in kw:
        r.bad(stmt, f"`{v.name}` has no option `{key}`")


def build_recipe(program: Program, classes: int, params: dict[str, Value], overrides: dict[str, Value]) -> Recipe:
    """The validated `train { }` section (defaults where it is silent), then `--set` overrides."""
    recipe = Recipe()
    errors: list[SpecError] = []
    reader = _Reader(recipe, errors)
    env = Env({"classes": classes}, Env(params))
    if program.train is not None:
        for stmt in program.train.body:
            if not isinstance(stmt, syntax.OpStmt):
                errors.append(SpecError("a train section holds settings only, like `batch 128`", stmt.span))
                continue
            try:
                pos = [evaluate(a.value, env) for a in stmt.args if a.name is None]
                kw = {a.name: evaluate(a.value, env) for a in stmt.args if a.name is not None}
            except SpecError as err:
                errors.append(err)
                continue
            _setting(reader, stmt, pos, kw)
    collect(errors)
    apply_overrides(recipe, overrides)
    return recipe


def apply_overrides(recipe: Recipe, overrides: dict[str, Value]) -> None:
    """`--set batch=64 --set lr=0.05`: flat recipe fields, checked like the spec's values."""
    from resdsl.diagnostics import UsageError

    for name, value in overrides.items():
        if name not in FIELDS:
            continue
        current = getattr(recipe, name)
        number = isinstance(value, (int, float)) and not isinstance(value, bool)
        lo = 1 if name in _POSITIVE else 0
        if isinstance(current, bool):
            ok, expects = isinstance(value, bool), "true or false"
        elif isinstance(current, int) or name in _WHOLE:
            ok = number and value >= lo and float(value).is_integer()
            expects = "a positive whole number" if lo else "a whole number >= 0"
            value = int(value) if ok else value
        elif isinstance(current, float) or current is None:
            ok, expects = number and value >= 0, "a number >= 0"
        elif isinstance(current, list):
            ok, expects = number and value >= 1 and float(value).is_integer(), "one iteration number"
            value = [int(value)] if ok else value
        else:
            choices = {"dataset": DATASETS, "normalize": NORMALIZE, "schedule": SCHEDULES}.get(name)
            ok = isinstance(value, str) and (choices is None or value in choices)
            expects = " | ".join(choices) if choices else "a word"
            value = str(value) if ok else value
        if not ok:
            raise UsageError(f"--set {name}: must be {expects}, got {describe(value)}")
        setattr(recipe, name, value)


_POSITIVE = {"batch", "iterations", "eval_every", "checkpoint_every", "crop"}
_WHOLE = {"warmup_iterations", "pad", "val", "seed", "patience", "scale_min", "scale_max"}
