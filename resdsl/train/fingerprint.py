"""What identifies a trained network and its data: resume refuses a checkpoint whose fingerprint differs.

The network's fingerprint is read from the checked IR: every op (kind, attributes, output shape, its inputs),
every shortcut's resolved plan, every residual section (option, projection BN, survival), grouped into the
units a user names: the stem, each block of each stage (`stage conv3 block 1`), the head. Its digest is a
sha256 of all of it. The data's fingerprint is the data set's name, sizes, image shape and a blake2b digest
of its contents (so a moved `--data` directory is the same data, another one is not).

`difference(run, here)` names the first difference in the user's terms, e.g. "the shortcut of stage conv3
block 1 is none here, A (zero-pad) in the run".
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from resdsl.ir.graph import NetworkIR, Op, OpKind, Role, fmt_attrs, fmt_shape

VERSION = 1


def _op_text(op: Op, position: dict[int, int], ir: NetworkIR) -> str:
    kind = op.kind.value
    if op.kind is OpKind.SHORTCUT and op.shortcut is not None:
        p = op.shortcut
        kind += f":{p.mode}(stride={p.stride}, {p.in_channels}->{p.out_channels}, bn={p.bn})"
    attrs = fmt_attrs(op)
    role = " (shortcut path)" if op.role is Role.SHORTCUT and op.kind is not OpKind.SHORTCUT else ""
    inputs = ",".join(str(position[i]) for i in ir.inputs(op.id))
    return f"{kind}[{attrs}]{role} -> {fmt_shape(op.shape)} <- ({inputs})"


def _residual_text(ir: NetworkIR, r) -> str:
    if r.path is not None:
        return f"written `shortcut {{ }}` ({len(r.path)} ops)" if r.path else "written `shortcut { }` (identity)"
    text = r.option.value if r.kind == "add" else "dense (concatenation)"
    if r.shortcut is not None and ir.op(r.shortcut).shortcut is not None:
        p = ir.op(r.shortcut).shortcut
        mode = {"pad": "zero-pad", "projection": "1x1 projection" + (" + BN" if p.bn else "")}.get(p.mode, p.mode)
        text += f" ({mode})"
    return text


def _unit_name(section, block: int | None) -> str:
    if section.kind == "stage":
        return f"stage {section.name}" + (f" block {block + 1}" if block is not None else "")
    return f"the {section.kind}" if section.name == section.kind else f"{section.kind} {section.name}"


def network(ir: NetworkIR) -> dict[str, Any]:
    """The network's fingerprint: a JSON-able dict with its digest."""
    position = {op.id: i for i, op in enumerate(ir.ops())}
    units: dict[tuple[str, int | None], dict[str, Any]] = {}
    order: list[tuple[str, int | None]] = []
    sections = {s.name: s for s in ir.sections}
    for section in ir.sections:
        for key in [(section.name, None)] + [(section.name, b) for b in range(len(section.blocks))]:
            order.append(key)
            units[key] = {"where": _unit_name(section, key[1]), "ops": [], "shortcuts": [], "survival": []}
            if key[1] is not None:
                block = section.blocks[key[1]]
                units[key]["call"] = f"{block.definition}({', '.join(f'{k}={v}' for k, v in block.args.items())})"
    other: list[str] = []
    for op in ir.ops():
        key = (op.scope.section, op.scope.block)
        (units[key]["ops"] if key in units else other).append(_op_text(op, position, ir))
    for r in ir.residuals:
        anchor = ir.op(r.body[0] if r.body else r.input).scope
        key = (anchor.section, anchor.block)
        target = units[key] if key in units else units[order[0]]
        target["shortcuts"].append(_residual_text(ir, r))
        target["survival"].append(round(float(r.survival), 12))
    blocks = {name: len(s.blocks) for name, s in sections.items() if s.kind == "stage"}
    listed = [units[k] for k in order if units[k]["ops"] or units[k]["shortcuts"] or k[1] is None]
    body = {
        "version": VERSION,
        "name": ir.name,
        "input": list(ir.input_shape),
        "classes": int(ir.classes),
        "sections": [s.name for s in ir.sections],
        "blocks": blocks,
        "units": listed,
        "other": other,
        "params": int(ir.totals.params),
        "flops": int(ir.totals.flops),
        "layers": int(ir.totals.layers),
    }
    # `name:` options choose the checkpoint's keys: a change is another network to resume into. Only
    # present when used, so that the digests of runs made before names existed stay as they were.
    names = [f"{s.name}: {s.module_name}" for s in ir.sections if s.module_name]
    names += [f"%{position[op.id]}: {op.module_name}" for op in ir.ops() if op.module_name]
    if names:
        body["names"] = names
    if ir.survival_mode != "per_batch":  # likewise only where used: per-sample stochastic depth trains otherwise
        body["survival_mode"] = ir.survival_mode
    digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
    return {"digest": digest, **body}


def data(name: str, tensors: dict[str, Any]) -> dict[str, Any]:
    """The data's fingerprint: name, sizes, image shape and a digest of the images and labels (of an image
    folder: of its class names, file names and sizes)."""
    if "train" in tensors:
        from resdsl.train.imagefolder import files_digest

        digest, _ = files_digest(tensors["train"], tensors["val"])
        names, _ = files_digest(tensors["train"], tensors["val"], sizes=False)
        train, test = len(tensors["train"]), len(tensors["val"])
        return {"dataset": name, "train": train, "test": test, "image": "files", "digest": digest, "names": names}
    h = hashlib.blake2b(digest_size=16)
    for key in ("x_train", "y_train", "x_test", "y_test"):
        t = tensors[key].contiguous()
        h.update(key.encode())
        h.update(str(tuple(t.shape)).encode() + str(t.dtype).encode())
        h.update(t.numpy().data if t.device.type == "cpu" else t.cpu().numpy().data)
    return {
        "dataset": name,
        "train": int(tensors["x_train"].shape[0]),
        "test": int(tensors["x_test"].shape[0]),
        "image": "x".join(map(str, tensors["x_train"].shape[1:])),
        "digest": h.hexdigest(),
    }


def summary(fp: dict[str, Any]) -> str:
    return f"{fp['name']}, {fp['layers']} layers, {fp['params']:,} params"


def difference(run: dict[str, Any], here: dict[str, Any]) -> str | None:
    """The first difference between the run's network fingerprint and this one, in the spec's terms."""
    if run.get("digest") == here.get("digest"):
        return None
    if run.get("version") != here.get("version"):
        return f"the run's fingerprint has version {run.get('version')}, this resdsl writes {here.get('version')}"
    for key, what in (("name", "the network"), ("input", "the input"), ("classes", "the number of classes")):
        if run[key] != here[key]:
            a, b = run[key], here[key]
            if key == "input":
                a, b = "x".join(map(str, a)), "x".join(map(str, b))
            return f"{what} is {b} here, {a} in the run"
    if run["sections"] != here["sections"]:
        return f"the sections are {', '.join(here['sections'])} here, {', '.join(run['sections'])} in the run"
    for name, n in here["blocks"].items():
        if run["blocks"].get(name) != n:
            return f"stage {name} has {n} blocks here, {run['blocks'].get(name)} in the run"
    for a, b in zip(run["units"], here["units"]):
        where = b["where"]
        if a.get("call") != b.get("call"):
            return f"{where} is {b.get('call')} here, {a.get('call')} in the run"
        if a["shortcuts"] != b["shortcuts"]:
            if len(a["shortcuts"]) != len(b["shortcuts"]):
                return f"{where} has {len(b['shortcuts'])} residual sections here, {len(a['shortcuts'])} in the run"
            i, x, y = next((i, x, y) for i, (x, y) in enumerate(zip(a["shortcuts"], b["shortcuts"])) if x != y)
            nth = f" (residual {i + 1})" if len(b["shortcuts"]) > 1 else ""
            return f"the shortcut of {where}{nth} is {y} here, {x} in the run"
        if a["survival"] != b["survival"]:
            x, y = next((x, y) for x, y in zip(a["survival"], b["survival"]) if x != y)
            return f"the survival probability of {where} is {y:g} here, {x:g} in the run"
        if a["ops"] != b["ops"]:
            for i, (x, y) in enumerate(zip(a["ops"], b["ops"])):
                if x != y and _plain(x) == _plain(y):
                    return f"op {i + 1} of {where} ({_plain(y)}) takes other inputs here than in the run"
                if x != y:
                    return f"op {i + 1} of {where} is {_plain(y)} here, {_plain(x)} in the run"
            return f"{where} has {len(b['ops'])} ops here, {len(a['ops'])} in the run"
    if len(run["units"]) != len(here["units"]):
        return f"the network has {len(here['units'])} parts here, {len(run['units'])} in the run"
    mode = {"run": run.get("survival_mode", "per_batch"), "here": here.get("survival_mode", "per_batch")}
    if mode["run"] != mode["here"]:
        return f"stochastic depth is {mode['here']} here, {mode['run']} in the run"
    if run.get("names") != here.get("names"):
        return "the module names (`name:` options) differ from the run's: its checkpoint's keys would not fit"
    return f"the network's wiring differs (fingerprint {here['digest'][:12]} here, {run['digest'][:12]} in the run)"


def legacy_difference(old: dict[str, Any], here: dict[str, Any]) -> str | None:
    """A checkpoint from before fingerprints (its `spec`: name, params, FLOPs, layers) against this network."""
    mine = {k: here[k] for k in ("name", "params", "flops", "layers")}
    return next((f"its {k} is {mine[k]} here, {old[k]} in the run" for k in mine if old.get(k) != mine[k]), None)


def _plain(text: str) -> str:
    """An op's fingerprint text without its input positions: `conv[kernel=3x3, ...] -> 16x32x32`."""
    return text.rsplit(" <- ", 1)[0]


def data_difference(run: dict[str, Any], here: dict[str, Any]) -> str | None:
    if _core(run) == _core(here):
        return None
    if run.get("repair") and run.get("names") == here.get("names"):
        return None  # the run stopped on an unreadable image, since replaced: the same files by name
    if run["dataset"] != here["dataset"]:
        return f"the data set is {here['dataset']} here, {run['dataset']} in the run"
    if (run["train"], run["test"]) != (here["train"], here["test"]):
        return (
            f"the data has {here['train']} train / {here['test']} test images here, "
            f"{run['train']} / {run['test']} in the run"
        )
    if run["image"] != here["image"]:
        return f"the data's images are {here['image']} here, {run['image']} in the run"
    return f"the data's contents differ from the run's (same sizes, another digest: {here['digest'][:12]} here)"


def _core(fp: dict[str, Any]) -> dict[str, Any]:
    """A data fingerprint less what runs made before it lack (`names`) and the repair mark."""
    return {k: v for k, v in fp.items() if k not in ("names", "repair")}
