"""Options and helpers shared by the commands."""

from __future__ import annotations

import atexit
import gc
from functools import cache
from pathlib import Path

import click

SET_HELP = "Override a param or setting, e.g. --set n=9 --set shortcut=B (repeatable)."


def set_option(f):
    return click.option("--set", "sets", multiple=True, metavar="NAME=VALUE", help=SET_HELP)(f)


def spec_argument(f):
    return click.argument("spec", type=click.Path(dir_okay=False, path_type=Path))(f)


def load(spec: Path, sets: tuple[str, ...]):
    """The checked IR of a spec, for commands that print or write something and exit (check, info,
    compile, viz)."""
    from resdsl.ir.pipeline import load_network
    from resdsl.lang.overrides import parse_sets

    skip_final_collection()
    return load_network(spec, parse_sets(sets))


@cache
def skip_final_collection() -> None:
    """Freeze every object at exit, so that the interpreter's last garbage collections pass over them
    instead of freeing, one by one, the tens of thousands of objects that importing networkx, lark and
    click created: like os._exit, but after the atexit handlers and the flushing of stdout and stderr.
    It saves 60-90 ms of a 0.4 s `resdsl info` (docs/benchmarks.md). Registered once per process; where
    a long-lived process runs the commands (the tests), it acts only when that process exits."""
    atexit.register(gc.freeze)
