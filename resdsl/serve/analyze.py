"""What the page asks for, computed from the editor's text: check (errors, params, the Table-1 report),
diagram (SVG) and model (model.py). Each runs in a worker process (worker.py) and returns plain JSON data;
every error a user can cause comes back as data, located where it has a place in the spec."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from resdsl.diagnostics import ResdslError, SpecError, SpecErrors, UsageError, printable

SHORTCUTS = ("A", "B", "C", "none")  # the page's switch; `identity` and the others are still typed as params


@dataclass(frozen=True)
class Request:
    """One request from the page: the editor's text, the `--set` overrides (name -> text, empty
    ones left out) and where the spec lives."""

    path: str  # the spec's path as the page shows it (`specs/cifar20.rd`), real or not yet written
    roots: tuple[str, ...]  # folders its imports may read, besides the standard library
    text: str
    sets: dict[str, str]


class _Failed(Exception):
    """The request's answer is a list of errors (already JSON data)."""

    def __init__(self, payload: dict[str, Any]) -> None:
        super().__init__("failed")
        self.payload = payload


def check(req: Request) -> dict[str, Any]:
    """Errors, or the network's figures: summary, params, the per-stage table."""
    try:
        ir, info = _load(req)
    except _Failed as failed:
        return failed.payload
    return {"ok": True, **info, "summary": _summary(ir), "report": _report(ir, req.path)}


def diagram(req: Request, view: str = "collapsed", block: str | None = None) -> dict[str, Any]:
    """The SVG of the collapsed view, or of one stage's block (`block`: a stage name)."""
    from resdsl.backends import viz

    if view not in ("collapsed", "block"):
        return _fail([_plain(f"unknown view `{view}`; views: collapsed, block")])
    try:
        ir, info = _load(req)
        graph = viz.draw([(Path(req.path).stem, ir)], view=view, block=block)
        svg = viz.diagram(graph, Path(f"{Path(req.path).stem}.svg"), "svg").decode("utf-8")
    except _Failed as failed:
        return failed.payload
    except ResdslError as err:
        return _fail(_errors(err, req.path))
    return {"ok": True, **info, "view": view, "block": block, "svg": svg}


def model(req: Request) -> dict[str, Any]:
    """The generated model.py, as `resdsl compile` writes it."""
    from resdsl.backends.pytorch.codegen import render_model

    try:
        ir, info = _load(req)
        source = render_model(ir, req.path)
    except _Failed as failed:
        return failed.payload
    except ResdslError as err:
        return _fail(_errors(err, req.path))
    return {"ok": True, **info, "filename": "model.py", "source": source}


# ---------------------------------------------------------------- loading


def _load(req: Request) -> tuple[Any, dict[str, Any]]:
    """The checked IR of the editor's text with the overrides, and what the page shows beside it
    (the spec's params, overrides it ignored); raises _Failed with the errors."""
    from resdsl.ir.pipeline import load_network
    from resdsl.ir.settings import NETWORK_SETTINGS
    from resdsl.lang.imports import load_program
    from resdsl.lang.overrides import parse_sets

    roots = tuple(Path(r) for r in req.roots)
    try:
        program = load_program(req.path, text=req.text, roots=roots)
    except ResdslError as err:
        raise _Failed(_fail(_errors(err, req.path))) from None
    info: dict[str, Any] = {"params": _params(program), "ignored": []}
    overrides: dict[str, Any] = {}
    problems: list[dict[str, Any]] = []
    for name, value in req.sets.items():
        if name not in program.params and name not in NETWORK_SETTINGS:
            info["ignored"].append(name)  # a param the spec no longer has: its input goes away
            continue
        try:
            overrides.update(parse_sets([f"{name}={value}"]))
        except UsageError as err:
            problems.append(_plain(str(err).replace("--set:", f"{name}:", 1), field=name))
    if problems:
        raise _Failed(_fail(problems, info))
    if program.network is None:
        raise _Failed(_fail([_plain("the spec defines no network", hint="add `network NAME { ... }`")], info))
    try:
        ir = load_network(req.path, overrides, program)
    except UsageError as err:
        raise _Failed(_fail([_plain(str(err))], info)) from None
    except ResdslError as err:
        raise _Failed(_fail(_errors(err, req.path), info)) from None
    info["shortcut"] = ir.shortcut.value
    return ir, info


def _fail(errors: list[dict[str, Any]], info: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"ok": False, **(info or {}), "errors": errors}


def _params(program) -> list[dict[str, Any]]:
    """The spec's params: name, the text of the value it is given (the page's placeholder), its line."""
    out = []
    for p in program.params.values():
        line = p.span.source.line(p.span.line)
        written = line.partition("=")[2].partition("#")[0].strip() if p.span.end_line == p.span.line else ""
        out.append({"name": p.name, "default": written, "line": p.span.line, "path": p.span.path})
    return out


# ---------------------------------------------------------------- errors


def _errors(err: ResdslError, editor: str) -> list[dict[str, Any]]:
    if isinstance(err, SpecErrors):
        return [_located(e, editor) for e in err.errors] + (
            [_plain("too many errors; stopped after the first 100")] if err.truncated else []
        )
    if isinstance(err, SpecError):
        return [_located(err, editor)]
    return [_plain(err.render().removeprefix("error: "))]


def _located(err: SpecError, editor: str) -> dict[str, Any]:
    """A SpecError as the page shows it: its place (in the editor, or in another file) and the text
    `resdsl check` prints for it."""
    span = err.span
    out: dict[str, Any] = {
        "message": printable(err.message),
        "hint": printable(err.hint) if err.hint else None,
        "rendered": printable(err.render()),
        "in_editor": span is not None and span.path == editor,
        "notes": [{"message": printable(n.message), "where": str(n.span) if n.span else None} for n in err.notes],
    }
    if span is not None:
        out.update(path=span.path, line=span.line, col=span.col, end_line=span.end_line, end_col=span.end_col)
    return out


def _plain(message: str, hint: str | None = None, field: str | None = None) -> dict[str, Any]:
    text = f"error: {message}" + (f"\n  hint: {hint}" if hint else "")
    return {
        "message": printable(message),
        "hint": hint,
        "rendered": printable(text),
        "in_editor": False,
        "field": field,
    }


# ---------------------------------------------------------------- figures


def _summary(ir) -> dict[str, Any]:
    t = ir.totals
    return {"name": ir.name, "layers": t.layers, "params": t.params, "flops": t.flops, "activations": t.activations}


def _report(ir, path: str) -> dict[str, Any]:
    """The rows and totals of `resdsl info`'s table, formatted as it formats them."""
    from resdsl.backends.report import human, memory, section_label
    from resdsl.ir.graph import fmt_shape
    from resdsl.ir.memory import FLOAT, fmt_bytes

    t = ir.totals
    rows = [
        {
            "stage": s.name,
            "kind": s.kind,
            "output": fmt_shape(tuple(s.output)) if s.output else "-",
            "blocks": str(s.blocks or "-"),
            "layout": section_label(ir, s),
            "params": f"{s.params:,}",
            "flops": human(s.flops),
            "acts": human(s.activations),
            "acts_f32": fmt_bytes(FLOAT * s.activations),
        }
        for s in t.sections
    ]
    m = memory(ir)
    settings = ", ".join(f"{k}={v}" for k, v in ir.params.items())
    return {
        "title": f"{ir.name}  ({path}; input {fmt_shape(ir.input_shape)}, {ir.classes} classes, "
        f"shortcut {ir.shortcut.value}" + (f"; {settings}" if settings else "") + ")",
        "rows": rows,
        "totals": {
            "layers": str(t.layers),
            "params": f"{t.params:,}",
            "flops": f"{t.flops:,}",
            "flops_short": human(t.flops),
            "acts": f"{t.activations:,}",
            "acts_f32": fmt_bytes(FLOAT * t.activations),
        },
        "memory": None if m is None else {"batch": m.batch, "total": fmt_bytes(m.total)},
        "stages": [s.name for s in ir.sections if s.blocks],
    }
