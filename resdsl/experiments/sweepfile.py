"""What a sweep is (`SweepConfig`) and its record, `DIR/sweep.json`, read back field by field: a field of the
wrong type, an unknown one, a grid past the size limit or a storage that is not a database URL is an error
naming the field, never a traceback later. No Optuna, no torch."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from resdsl.diagnostics import InputError, UsageError
from resdsl.experiments import storage
from resdsl.experiments.grid import NAME_RE, SEED, VALUE_RE, Point, check_size, points

FORMAT = "resdsl-sweep-1"
SWEEP_FILE = "sweep.json"
MAX_BYTES = 10_000_000  # a sweep.json bigger than this is not one resdsl wrote
AMP = ("auto", "bf16", "fp16", "off")
TRAIN_INTS = ("iterations", "batch", "eval_every", "checkpoint_every")


@dataclass
class SweepConfig:
    """What the sweep is; the same on every worker (its digest names the study)."""

    spec: str
    spec_sha256: str
    axes: dict[str, list[str]]
    sets: list[str] = field(default_factory=list)  # --set values of every run
    dataset: str | None = None
    data: str | None = None
    train: dict[str, Any] = field(default_factory=dict)  # iterations, batch, lr, eval_every, checkpoint_every
    amp: str = "auto"

    def digest(self) -> str:
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()

    @property
    def study_name(self) -> str:
        return f"resdsl-{Path(self.spec).stem}-{self.digest()[:12]}"

    def points(self) -> list[Point]:
        return points(self.axes)


@dataclass
class SweepRecord:
    config: SweepConfig
    study: str
    storage: str | None  # the database URL without its password; None in a sweep.json of an older resdsl


class _Bad(Exception):
    """A field of sweep.json that is not what resdsl writes: (field, what it must be, its value)."""


def _show(value: Any) -> str:
    text = json.dumps(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _key(name: str) -> str:
    """A key of the file inside a field's path: as it is when it is a plain word, else quoted, escaped and
    shortened like a value (a key of a damaged file may hold a newline, a terminal escape or a megabyte)."""
    return name if re.fullmatch(r"[\w.-]{1,60}", name, re.ASCII) else _show(name)


def _need(ok: bool, name: str, what: str, value: Any) -> None:
    if not ok:
        raise _Bad(f"`{name}` must be {what}, not {_show(value)}")


def _is_str(value: Any) -> bool:
    return isinstance(value, str)


def _optional_str(cfg: dict, key: str) -> None:
    _need(cfg.get(key) is None or _is_str(cfg[key]), f"config.{key}", "a string or null", cfg.get(key))


def parse_config(cfg: Any) -> SweepConfig:
    """A SweepConfig from sweep.json's `config`, each field checked; _Bad for the first that is wrong."""
    _need(isinstance(cfg, dict), "config", "an object", cfg)
    known = {f.name for f in fields(SweepConfig)}
    extra = sorted(set(cfg) - known)
    if extra:
        raise _Bad(f"`config.{_key(extra[0])}` is not a field of a sweep")
    for key in ("spec", "spec_sha256", "axes"):
        if key not in cfg:
            raise _Bad(f"`config.{key}` is missing")
    _need(_is_str(cfg["spec"]) and cfg["spec"] != "", "config.spec", "a file name", cfg["spec"])
    sha = cfg["spec_sha256"]
    _need(_is_str(sha) and re.fullmatch(r"[0-9a-f]{64}", sha) is not None, "config.spec_sha256", "a SHA-256", sha)
    axes = cfg["axes"]
    _need(isinstance(axes, dict) and len(axes) > 0, "config.axes", "an object of lists of values", axes)
    for name, values in axes.items():
        where = f"config.axes.{_key(name)}"
        _need(NAME_RE.match(name) is not None, where, "named like a --set name", name)
        ok = isinstance(values, list) and values and all(_is_str(v) and VALUE_RE.match(v) for v in values)
        _need(bool(ok), where, "a list of values (strings that can name a run directory)", values)
        _need(len(set(values)) == len(values), where, "a list of distinct values", values)
        if name == SEED:
            _need(all(v.isdigit() for v in values), where, "a list of whole numbers", values)
    try:
        check_size({k: len(v) for k, v in axes.items()})
    except UsageError as err:
        raise _Bad(f"`config.axes`: {err}") from None
    sets = cfg.get("sets", [])
    _need(isinstance(sets, list) and all(_is_str(s) for s in sets), "config.sets", "a list of strings", sets)
    from resdsl.lang.recipe import DATASETS

    dataset = cfg.get("dataset")
    _need(dataset is None or dataset in DATASETS, "config.dataset", f"null or one of {', '.join(DATASETS)}", dataset)
    _optional_str(cfg, "data")
    train = cfg.get("train", {})
    _need(isinstance(train, dict), "config.train", "an object", train)
    for key, value in train.items():
        where = f"config.train.{_key(key)}"
        if key == "lr":
            number = isinstance(value, int | float) and not isinstance(value, bool)
            _need(number and value >= 0, where, "a number >= 0", value)
        elif key in TRAIN_INTS:
            _need(
                isinstance(value, int) and not isinstance(value, bool) and value >= 1,
                where,
                "a whole number >= 1",
                value,
            )
        else:
            raise _Bad(f"`{where}` is not an option of a sweep ({', '.join((*TRAIN_INTS, 'lr'))})")
    amp = cfg.get("amp", "auto")
    _need(amp in AMP, "config.amp", f"one of {', '.join(AMP)}", amp)
    return SweepConfig(**cfg)


def parse_record(data: Any) -> SweepRecord:
    _need(isinstance(data, dict), "the file", "a JSON object", data)
    _need(data.get("format") == FORMAT, "format", f'"{FORMAT}"', data.get("format"))
    config = parse_config(data.get("config"))
    study = data.get("study")
    _need(_is_str(study) and study != "", "study", "a study name", study)
    url = data.get("storage")
    _need(url is None or _is_str(url), "storage", "a database URL", url)
    if url is not None:
        try:
            storage.check_url(url, "storage")
        except UsageError as err:
            raise _Bad(str(err).replace("storage ", "`storage` ", 1)) from None
    return SweepRecord(config, study, url)


def read_sweep(out: Path) -> SweepRecord:
    """DIR/sweep.json, checked; an InputError naming the first field that is wrong."""
    path = Path(out) / SWEEP_FILE
    if not Path(out).is_dir():
        raise InputError(f"{out}: no such sweep directory" if not Path(out).exists() else f"{out} is not a directory")
    try:
        if path.stat().st_size > MAX_BYTES:
            raise InputError(f"{path} is {path.stat().st_size:,} bytes: not a sweep.json resdsl wrote")
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"{out} is no sweep directory (no {SWEEP_FILE})") from None
    except (OSError, UnicodeDecodeError, ValueError) as err:
        why = err.strerror if isinstance(err, OSError) and err.strerror else "not JSON"
        raise InputError(f"{path}: {why}; it is not a sweep.json resdsl wrote") from None
    try:
        return parse_record(data)
    except _Bad as bad:
        raise InputError(f"{path}: {bad}") from None
