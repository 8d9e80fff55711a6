"""Weights for a generated module: read a state_dict file and load it with strict=True, with errors
that name the keys and shapes that do not fit; and what a state_dict cannot tell (where strides are).

Shared by `resdsl weights check` (resdsl/cli/weights.py) and any command that evaluates trained or
downloaded weights. torch is imported inside the functions: importing this module is cheap.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

from resdsl.diagnostics import InputError
from resdsl.ir.graph import NetworkIR
from resdsl.ir.template import OpItem, walk

SHOWN = 5  # keys listed per kind of problem; the rest are counted


def load_tensors(path: Path, what: str) -> Any:
    """A torch.save'd file read onto the CPU with weights_only=True (a file cannot run code); only a regular
    file is opened (a FIFO is refused, not waited on). Every failure is an InputError naming `what` (`weights
    w.pt`): a missing file, a directory, a text file, a truncated one."""
    import torch

    from resdsl.files import FileRefused, open_regular

    try:
        with open_regular(path) as f, warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch's notes on odd pickles: the error below says what matters
            return torch.load(f, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise InputError(f"cannot read {what}: no such file") from None
    except FileRefused as err:
        raise InputError(f"cannot read {what}: {err}") from None
    except OSError as err:
        raise InputError(f"cannot read {what}: {err.strerror or err}") from None
    except Exception:  # noqa: BLE001 - torch.load raises many kinds (KeyError for a text file) on a bad file
        raise InputError(f"cannot read {what}: not a file torch.save wrote, or it holds more than tensors") from None


def tensor_problem(t: Any) -> str | None:
    """Why a tensor read from a file cannot be used as weights or data: sparse, meta, quantized; else None."""
    import torch

    if t.layout != torch.strided:
        return f"a sparse tensor ({str(t.layout).removeprefix('torch.')}); store it dense (tensor.to_dense())"
    if t.is_meta:
        return "a meta tensor (a shape without values); save the tensor's values"
    if t.is_quantized or t.dtype.is_complex:
        return f"a {str(t.dtype).removeprefix('torch.')} tensor; store float or integer tensors"
    return None


def read_state_dict(path: Path) -> dict[str, Any]:
    """The tensors of a torch.save'd state_dict, or of a checkpoint dict holding one under
    `state_dict` or `model`. Read with weights_only=True: a file cannot run code."""
    import torch

    data = load_tensors(path, f"weights {path}")
    if isinstance(data, dict):
        for key in ("state_dict", "model"):
            if isinstance(data.get(key), dict):
                data = data[key]
                break
    if (
        not isinstance(data, dict)
        or not data
        or not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in data.items())
    ):
        raise InputError(
            f"{path} holds no state_dict: expected a dict of tensors (model.state_dict()), "
            "or a checkpoint dict with one under `state_dict` or `model`"
        )
    for key, value in data.items():
        problem = tensor_problem(value)
        if problem is not None:
            raise InputError(f"{path}: {key} is {problem}")
    return data


def fit_problems(model, state_dict: dict[str, Any]) -> tuple[str, list[str]]:
    """('' and []) when the state_dict loads with strict=True; else a summary (`1 missing key, 0
    unexpected, 1 shape mismatch`) and the lines that show a few of each."""
    ours = model.state_dict()
    missing = [k for k in ours if k not in state_dict]
    unexpected = [k for k in state_dict if k not in ours]
    shapes = [k for k in ours if k in state_dict and tuple(ours[k].shape) != tuple(state_dict[k].shape)]
    if not (missing or unexpected or shapes):
        return "", []
    summary = (
        f"{_count(len(missing), 'missing key')}, {len(unexpected)} unexpected, "
        f"{_count(len(shapes), 'shape mismatch', 'shape mismatches')}"
    )
    lines = [f"missing: {k}" for k in missing[:SHOWN]] + _more(missing)
    lines += [f"unexpected: {k}" for k in unexpected[:SHOWN]] + _more(unexpected)
    lines += [
        f"shape: {k} is {list(state_dict[k].shape)} in the file, {list(ours[k].shape)} in the model"
        for k in shapes[:SHOWN]
    ] + _more(shapes)
    if len(missing) == len(ours) and len(unexpected) == len(state_dict) == len(ours):
        lines.append(
            "hint: no key is shared but the counts agree: the weights follow another naming; "
            "`resdsl weights rename` pairs them with the module's by position"
        )
    if unexpected and all(k.startswith("module.") for k in state_dict):
        lines.append(
            "hint: the keys start with `module.` (saved from DataParallel/DDP): save model.module's state_dict"
        )
    return summary, lines


def load_weights(model, state_dict: dict[str, Any], what: str, where: str) -> None:
    """Load with strict=True, or raise an InputError naming what does not fit. `what` names the
    file, `where` the model (`resnet50's generated module`)."""
    summary, lines = fit_problems(model, state_dict)
    if summary:
        raise InputError(f"{what} does not fit {where}: {summary}\n  " + "\n  ".join(lines))
    model.load_state_dict(state_dict, strict=True)


def rename_by_position(model, state_dict: dict[str, Any], what: str) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """A state_dict whose keys follow another naming (torchvision's `features.1.conv.0.0.weight`) with
    the model's keys, pairing the entries in order: both list their modules in the order the
    network computes them. Every pair must agree in shape; the first that does not is an error
    naming both. Returns the renamed state_dict and the (theirs, ours) key pairs."""
    ours = model.state_dict()
    if len(ours) != len(state_dict):
        raise InputError(
            f"{what} has {len(state_dict)} tensors, the model {len(ours)}: they cannot be paired by position\n"
            "  hint: check the spec against the network the weights come from (`resdsl weights check` lists keys)"
        )
    pairs = list(zip(state_dict, ours))
    for k, (theirs, mine) in enumerate(pairs):
        a, b = list(state_dict[theirs].shape), list(ours[mine].shape)
        if a != b:
            raise InputError(
                f"{what}: tensor {k + 1} of {len(pairs)} does not fit: {theirs} is {a}, the model's {mine} is {b}\n"
                "  hint: the two networks differ there (or list their modules in another order)"
            )
    return {mine: state_dict[theirs] for theirs, mine in pairs}, pairs


def _count(n: int, one: str, many: str | None = None) -> str:
    return f"{n} {one if n == 1 else many or one + 's'}"


def _more(keys: list[str]) -> list[str]:
    return [f"... and {len(keys) - SHOWN} more"] if len(keys) > SHOWN else []


def stride_choices(ir: NetworkIR) -> list[str]:
    """The spec params that decide where a strided block puts its stride (std.rd's `stride_at`):
    those a `stride:` argument reads in a block used with a stride above 1 (the template records
    them). A state_dict cannot tell the choices apart: the weights load either way."""
    strided = {
        inst.definition
        for section in ir.sections
        for inst in section.blocks
        if any(v != 1 for k, v in inst.args.items() if k == "stride" and isinstance(v, int))
    }
    found = {
        p
        for name in strided
        for item in walk(ir.blocks[name].body)
        if isinstance(item, OpItem)
        for p in item.reads.get("stride", ())
    }
    return sorted(found)


def stride_note(ir: NetworkIR, chosen: set[str] = frozenset()) -> str | None:
    """compile's note on stderr, or None where no param decides it or `--set` chose them all."""
    params = stride_choices(ir)
    if not params or set(params) <= chosen:
        return None
    values = ", ".join(f"{p} = {json.dumps(ir.params[p])}" for p in params)
    return (
        f"note: {ir.name}'s strided blocks put their stride where {values} says; a state_dict carries no "
        "strides, so weights trained with another choice load with strict=True and compute another function "
        "(e.g. torchvision's ResNet v1.5 strides the 3x3: --set stride_at=middle). Change it with --set; "
        "`resdsl weights check --reference` compares outputs"
    )
