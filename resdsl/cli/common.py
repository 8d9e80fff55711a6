"""Options and helpers shared by the commands."""

from __future__ import annotations

import atexit
import gc
from functools import cache
from pathlib import Path

import click

from resdsl.files import refuse_overwrite, same_file, write_atomic

SET_HELP = "Override a param or setting, e.g. --set n=9 --set shortcut=B (repeatable)."


def set_option(f):
    return click.option("--set", "sets", multiple=True, metavar="NAME=VALUE", help=SET_HELP)(f)


def run_set_option(f):
    """--set on a command that reads runs: each run's network is rebuilt from the spec and the --set values in its
    recipe.json, so that another value would describe another network than the one trained; refused."""
    return click.option(
        "--set",
        "sets",
        multiple=True,
        metavar="NAME=VALUE",
        callback=_refuse_sets,
        expose_value=False,
        help="Refused: a run is rebuilt with the spec and --set values it was trained with (its recipe.json).",
    )(f)


def _refuse_sets(ctx: click.Context, param: click.Parameter, value: tuple[str, ...]) -> None:
    if value:
        from resdsl.diagnostics import UsageError

        raise UsageError(
            f"--set {value[0]}: {ctx.info_name} reads runs, each rebuilt with the spec and the --set values it was "
            f"trained with (its recipe.json); retrain with --set to change a network"
        )


def spec_argument(f):
    # No exists= / dir_okay= checks here: click would call a missing spec a usage error (exit 2); the loader
    # says `cannot read spec`, exit 1, like every missing or unreadable input.
    return click.argument("spec", type=click.Path(path_type=Path))(f)


def need_paths(paths, what: str, *, directory: bool = False) -> None:
    """Every input path exists (and is a directory, where one is needed): else `error: PATH: no such WHAT`,
    exit 1, as for a missing spec (click's own check would be a usage error, exit 2)."""
    from resdsl.diagnostics import InputError

    for path in paths:
        p = Path(path)
        if not p.exists():
            raise InputError(f"{p}: no such {what}")
        if directory and not p.is_dir():
            raise InputError(f"{p} is not a directory (a {what} is one)")


def load(spec: Path, sets: tuple[str, ...], program=None):
    """The checked IR of a spec, for commands that print or write something and exit (check, info,
    compile, viz); `program`: the spec already parsed (by check), not parsed again."""
    from resdsl.ir.pipeline import load_network
    from resdsl.lang.overrides import parse_sets

    skip_final_collection()
    return load_network(spec, parse_sets(sets), program)


@cache
def skip_final_collection() -> None:
    """Freeze every object at exit, so that the interpreter's last garbage collections pass over them
    instead of freeing, one by one, the tens of thousands of objects that importing networkx, lark and
    click created: like os._exit, but after the atexit handlers and the flushing of stdout and stderr.
    It saves 60-90 ms of a 0.4 s `resdsl info` (docs/benchmarks.md). Registered once per process; where
    a long-lived process runs the commands (the tests), it acts only when that process exits."""
    atexit.register(gc.freeze)


# ---------------------------------------------------------------- output files


def check_outputs(
    outputs: list[tuple[str, Path]], inputs: list[tuple[str, Path]], advice: str = "choose another file"
) -> None:
    """Refuse, as a usage error, an output that is a file the command reads (a spec, a file a spec
    imports, weights, data) or another output of the same command (resdsl/files.py: refuse_overwrite).
    `outputs` are (how the command line names it, path); `inputs` (what it is, path)."""
    from resdsl.diagnostics import UsageError

    refuse_overwrite(outputs, inputs, UsageError, advice)


def spec_inputs(specs, files) -> list[tuple[str, Path]]:
    """What a command read: its specs (as given) and every file they import (resolved)."""
    from resdsl.lang.imports import display_path

    given = [("the spec", Path(s)) for s in specs]
    imported = [
        ("the imported file", Path(display_path(f))) for f in files if not any(same_file(f, s) for _, s in given)
    ]
    return given + imported


def write_files(outputs: list[tuple[Path, str | bytes]], error, make_dirs: bool = True) -> None:
    """Write a command's output files whole or not at all (resdsl/files.py: write_atomic); `error(message)`
    makes the exception raised when writing fails."""
    write_atomic(outputs, error, make_dirs=make_dirs)
