"""`resdsl fmt SPEC... [--check] [--diff]`: rewrite specs in the canonical layout (lang/fmt.py)."""

from __future__ import annotations

import difflib
import sys
from pathlib import Path

import click

from resdsl.diagnostics import InputError, ResdslError, printable
from resdsl.files import write_atomic


@click.command("fmt")
@click.argument("specs", nargs=-1, required=True, type=click.Path(dir_okay=False, allow_dash=True, path_type=Path))
@click.option("--check", is_flag=True, help="Write nothing; exit 1 and name the files that would change.")
@click.option("--diff", is_flag=True, help="Write nothing; print a unified diff of the changes on stdout.")
def fmt_command(specs: tuple[Path, ...], check: bool, diff: bool) -> None:
    """Format specs in place in resdsl's one layout (comments kept; a file that does not parse is left alone).
    `-` reads a spec from stdin and writes it formatted to stdout."""
    from resdsl.lang.fmt import format_source
    from resdsl.lang.imports import SpecReadError, read_spec

    failed = changed = False
    for spec in specs:
        stdin = str(spec) == "-"
        try:
            if stdin:
                raw = sys.stdin.read()
            else:
                read_spec(spec)  # the checks every spec file gets: a regular file, its size, UTF-8
                raw = spec.read_bytes().decode("utf-8")  # as it is on disk: a BOM and \r\n count as changes
            new = format_source(raw, "<stdin>" if stdin else str(spec))
        except SpecReadError as err:
            click.echo(printable(f"error: cannot read spec `{spec}`: {err.reason}"), err=True)
            failed = True
            continue
        except ResdslError as err:  # SpecError, or SpecErrors (`param true = 1` twice)
            click.echo(printable(err.render()), err=True)
            failed = True
            continue
        if stdin and not (check or diff):
            click.echo(new, nl=False)
            continue
        if new == raw:
            continue
        changed = True
        if diff:
            click.echo("".join(_diff(raw, new, str(spec))), nl=False)
        if check:
            click.echo(printable(f"{spec}: would be reformatted"), err=diff)
        elif not diff:
            write_atomic([(spec, new)], error=InputError)  # beside it, then os.replace; a link's target
            click.echo(printable(f"{spec}: reformatted"))
    if failed or (check and changed):
        sys.exit(1)


def _diff(old: str, new: str, name: str) -> list[str]:
    lines = difflib.unified_diff(
        old.splitlines(keepends=True),
        new.splitlines(keepends=True),
        f"{name} (original)",
        f"{name} (formatted)",
    )
    return [line if line.endswith("\n") else line + "\n\\ No newline at end of file\n" for line in lines]
