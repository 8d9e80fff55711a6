"""A run's checkpoint.pt: where it is, reading it back (every defect an InputError), writing it atomically,
and importing the generated model.py that goes with it."""

from __future__ import annotations

import warnings
from pathlib import Path
from types import ModuleType
from typing import Any

from resdsl.diagnostics import InputError
from resdsl.train import rundir
from resdsl.train.rundir import CHECKPOINT

FORMAT = "resdsl-checkpoint-2"
OLD_FORMATS = ("resdsl-checkpoint-1",)  # no network fingerprint: name, params, FLOPs, layers only


def checkpoint_path(path: Path) -> Path:
    """A run directory's checkpoint.pt, or `path` itself when it names a file."""
    path = Path(path)
    return path / CHECKPOINT if path.is_dir() else path


def torch_load(path: Path, failure: str) -> Any:
    """A torch.save'd file read onto the CPU with weights_only=True (it cannot run code); one it
    cannot read is the InputError `failure (what torch said, its first line)`."""
    import torch

    from resdsl.files import FileRefused, open_regular

    try:
        with open_regular(path) as f, warnings.catch_warnings():  # a FIFO is refused, not waited on
            warnings.simplefilter("ignore")  # torch's notes on odd pickles: a failure is reported below
            return torch.load(f, map_location="cpu", weights_only=True)
    except FileRefused as err:
        raise InputError(str(err)) from None
    except Exception as err:
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise InputError(f"{failure} ({first[:200]})") from None


def load_checkpoint(path: Path) -> dict[str, Any]:
    """A checkpoint read with weights_only=True; anything unreadable is an InputError."""
    path = checkpoint_path(path)
    if not path.exists():
        raise InputError(f"--resume {path}: no such checkpoint")
    state = torch_load(path, f"cannot read checkpoint {path}: it is corrupt or truncated")
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


def checkpoint_iteration(path: Path) -> str:
    """The iteration a checkpoint holds, for messages; `?` when it cannot be read."""
    try:
        return str(load_checkpoint(path)["trainer"]["iteration"])
    except InputError:
        return "?"


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """Write atomically: a temporary file, fsync, then rename over the old checkpoint, fsync the directory."""
    import torch

    rundir.atomic_write(path, lambda f: torch.save(state, f))


def import_model(path: Path) -> ModuleType:
    """Import a generated model.py from its path (not from sys.path)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"resdsl_run_model_{abs(hash(str(path)))}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
