"""Options and helpers shared by the commands."""

from __future__ import annotations

from pathlib import Path

import click

SET_HELP = "Override a param or setting, e.g. --set n=9 --set shortcut=B (repeatable)."


def set_option(f):
    return click.option("--set", "sets", multiple=True, metavar="NAME=VALUE", help=SET_HELP)(f)


def spec_argument(f):
    return click.argument("spec", type=click.Path(dir_okay=False, path_type=Path))(f)


def load(spec: Path, sets: tuple[str, ...]):
    from resdsl.ir.pipeline import load_network
    from resdsl.lang.overrides import parse_sets

    return load_network(spec, parse_sets(sets))
