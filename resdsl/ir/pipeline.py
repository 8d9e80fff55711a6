"""The front half of the pipeline in one call: spec file -> checked IR."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from resdsl.diagnostics import SpecError
from resdsl.ir.graph import NetworkIR
from resdsl.ir.lower import lower
from resdsl.ir.passes import analyze
from resdsl.ir.settings import NETWORK_SETTINGS
from resdsl.lang.gcpause import paused_gc
from resdsl.lang.imports import Program, load_program


def load_network(
    path: str | Path, overrides: dict[str, Any] | None = None, program: Program | None = None
) -> NetworkIR:
    """Parse, resolve imports, lower and check a spec (or its `program`, if already loaded from
    `path`); raises ResdslError on bad input."""
    with paused_gc():
        return _load_network(path, overrides, program)


def _load_network(path: str | Path, overrides: dict[str, Any] | None, program: Program | None) -> NetworkIR:
    if program is None:
        program = load_program(path)
    if program.network is None:
        raise SpecError(
            f"`{program.path}` defines no network",
            None,
            "it is a block library: import it from a spec with a `network NAME { ... }`"
            if program.blocks
            else "add `network NAME { ... }`",
        )
    check_override_names(program, overrides or {})
    ir = lower(program, overrides or {})
    analyze(ir)
    ir.files = list(program.files)
    from resdsl.lang.recipe import build_recipe

    ir.recipe = build_recipe(program, ir.classes, ir.params, overrides or {})
    return ir


def check_override_names(program, overrides: dict[str, Any]) -> None:
    """Every --set name must be a param, a network setting or a recipe field."""
    from resdsl.diagnostics import UsageError
    from resdsl.lang.recipe import FIELDS

    known = set(program.params) | set(NETWORK_SETTINGS) | FIELDS
    for name in overrides:
        if name not in known:
            from resdsl.diagnostics import did_you_mean

            hint = did_you_mean(name, known)
            params = ", ".join(program.params) or "none"
            raise UsageError(
                f"--set {name}: no such param or setting" + (f"; {hint}" if hint else f" (params: {params})")
            )
