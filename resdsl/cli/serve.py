"""`resdsl serve`: the page for exploring a spec (resdsl/serve/)."""

from __future__ import annotations

from pathlib import Path

import click

from resdsl.cli.common import set_option

DEFAULT_PORT = 8321
EXAMPLE = "untitled.rd"  # the page's spec when none is given: an example, in the current folder


@click.command("serve")
@click.argument("spec", required=False, type=click.Path(dir_okay=False, path_type=Path))
@set_option
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=DEFAULT_PORT,
    show_default=True,
    help="Port on 127.0.0.1 (0: a free one).",
)
@click.option(
    "--timeout",
    "seconds",
    type=click.FloatRange(min=0.1, max=600),
    default=10.0,
    show_default=True,
    help="Seconds one analysis (check, diagram, model) may take before it is stopped.",
)
def serve_command(spec: Path | None, sets: tuple[str, ...], port: int, seconds: float) -> None:
    """Serve a page on 127.0.0.1 with SPEC in an editor, its errors as you type, its diagram, its
    Table-1 report, a shortcut switch and inputs for its params, and its model.py to download.

    The page never writes SPEC; imports reach only the standard library and files beside SPEC.
    """
    from importlib.resources import files

    from resdsl.diagnostics import SpecError
    from resdsl.lang.imports import SpecReadError, read_spec
    from resdsl.lang.overrides import parse_sets
    from resdsl.serve.server import Site, serve
    from resdsl.serve.worker import Runner

    parse_sets(sets)  # a malformed --set is a usage error now, not on the page
    given = dict(pair.partition("=")[::2] for pair in sets)
    if spec is None:
        text, shown = (files("resdsl.serve") / "example.rd").read_text(encoding="utf-8"), Path(EXAMPLE)
    else:
        try:
            text, shown = read_spec(spec), spec
        except SpecReadError as err:
            raise SpecError(f"cannot read spec `{spec}`: {err.reason}") from None
    folder = str(Path(shown).resolve().parent)
    site = Site(path=str(shown), text=text, roots=(folder,), runner=Runner(seconds), sets=given)
    site.file = None if spec is None else str(spec)
    serve(site, port, lambda line: click.echo(line, err=False))


COMMANDS = [serve_command]
