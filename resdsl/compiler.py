"""The front half of the pipeline in one call: spec file -> checked IR."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .errors import SpecError
from .ir import NetworkIR
from .lower import lower, parse_override
from .passes import analyze
from .resolve import load_program


def load_network(path: str | Path, overrides: dict[str, Any] | None = None) -> NetworkIR:
    """Parse, resolve imports, lower and check a spec; raises ResdslError on bad input."""
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
    from .recipe import build_recipe

    ir.recipe = build_recipe(program, ir, overrides or {})
    return ir


def parse_sets(pairs: tuple[str, ...] | list[str]) -> dict[str, Any]:
    """`--set n=9 --set shortcut=B` -> {"n": 9, "shortcut": Symbol("B")}."""
    from .errors import UsageError

    out: dict[str, Any] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip() or not value.strip():
            raise UsageError(f"--set takes NAME=VALUE, got `{pair}`")
        out[name.strip()] = parse_override(value.strip())
    return out


def check_override_names(program, overrides: dict[str, Any]) -> None:
    """Every --set name must be a param, a network setting or a recipe field."""
    from .errors import UsageError
    from .lower import NETWORK_SETTINGS
    from .recipe import FIELDS

    known = set(program.params) | set(NETWORK_SETTINGS) | FIELDS
    for name in overrides:
        if name not in known:
            from .errors import did_you_mean

            hint = did_you_mean(name, known)
            params = ", ".join(program.params) or "none"
            raise UsageError(
                f"--set {name}: no such param or setting" + (f"; {hint}" if hint else f" (params: {params})")
            )
