"""The `resdsl` command: check and info here; compile, viz, train, plot, responses and maps from their modules."""

from __future__ import annotations

import errno
import os
import sys
from pathlib import Path
from typing import Any

import click

from resdsl.cli.analysis import COMMANDS as ANALYSIS_COMMANDS
from resdsl.cli.common import load, set_option, spec_argument
from resdsl.cli.compile import compile_command
from resdsl.cli.eval import eval_command
from resdsl.cli.experiments import COMMANDS as EXPERIMENT_COMMANDS
from resdsl.cli.fmt import fmt_command
from resdsl.cli.lsp import lsp_command
from resdsl.cli.serve import serve_command
from resdsl.cli.train import plot as plot_command
from resdsl.cli.train import train as train_command
from resdsl.cli.viz import viz_command
from resdsl.cli.weights import weights_group
from resdsl.diagnostics import ResdslError, UsageError, printable


class _Group(click.Group):
    """Turns the tool's own errors into `file:line:col: error:` text and exit codes 1 / 2, and a
    failure to write the output (a full disk, a closed pipe) into one line and exit code 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            result = super().invoke(ctx)
            sys.stdout.flush()  # now, while a failure can still be reported, not at exit
            return result
        except UsageError as err:
            _fail(err.render(), 2)
        except ResdslError as err:
            _fail(err.render(), 1)
        except OSError as err:
            if err.filename is None:  # writing to stdout (or stderr)
                _detach_stdout()
                _fail("" if err.errno == errno.EPIPE else f"error: cannot write the output: {_strerror(err)}", 1)
            _fail(f"error: {err.filename}: {_strerror(err)}", 1)


def _fail(text: str, code: int) -> None:
    if text:
        try:
            click.echo(printable(text), err=True)
        except OSError:  # stderr is gone too: the exit code says it
            pass
    sys.exit(code)


def _strerror(err: OSError) -> str:
    return err.strerror or str(err)


def _detach_stdout() -> None:
    """Point stdout at /dev/null, so that Python's flush at exit does not fail a second time (with
    an `Exception ignored` message and exit code 120) on what is still buffered."""
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):  # not a real file (the tests' runner)
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, fd)
    os.close(devnull)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="resdsl")
def main() -> None:
    """Describe, check, draw, generate and train residual networks."""


@main.command()
@click.argument("specs", nargs=-1, required=True, type=click.Path(path_type=Path))
@set_option
@click.option("-q", "--quiet", is_flag=True, help="Print nothing when a spec is valid.")
def check(specs: tuple[Path, ...], sets: tuple[str, ...], quiet: bool) -> None:
    """Check specs; exit 1 with located errors if any is invalid."""
    from resdsl.lang.imports import load_program

    failed = False
    for spec in specs:
        try:
            program = load_program(spec)
            if program.network is None:
                if not quiet:
                    click.echo(
                        printable(
                            f"{spec}: ok: a library of {len(program.blocks)} blocks and {len(program.params)} params"
                        )
                    )
                continue
            ir = load(spec, sets, program)  # parsed once, not twice (a 1 MB spec parses in seconds)
        except UsageError:
            raise
        except ResdslError as err:
            click.echo(printable(err.render()), err=True)
            failed = True
            continue
        if not quiet:
            t = ir.totals
            click.echo(printable(f"{spec}: ok: {ir.name}, {t.layers} layers, {t.params:,} params, {t.flops:,} FLOPs"))
    if failed:
        sys.exit(1)


@main.command()
@spec_argument
@set_option
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--ir", "show_ir", is_flag=True, help="Print the graph IR, one op per line.")
@click.option(
    "--batch",
    type=click.IntRange(min=1),
    help="Batch size of the training-memory estimate (default: the recipe's batch, 128 without a train section).",
)
def info(spec: Path, sets: tuple[str, ...], as_json: bool, show_ir: bool, batch: int | None) -> None:
    """Per-stage output size, params, FLOPs and activations, like the paper's Table 1, and the memory training
    needs."""
    from resdsl.backends import report

    ir = load(spec, sets)
    if show_ir:
        from resdsl.ir.graph import print_ir

        click.echo(printable(print_ir(ir)))
    elif as_json:
        import json

        click.echo(json.dumps(report.to_json(ir, str(spec), batch), indent=2))
    else:
        click.echo(printable(report.table(ir, str(spec), batch)))


# The top-level --help's one line per command, whole (click cuts a docstring's first sentence at ~45
# characters, and at "Fig." as if it ended there).
SUMMARIES = {
    "check": "Check specs: names, types, shapes, shortcuts, expect.",
    "info": "Per-stage table (the paper's Table 1) and training memory.",
    "compile": "Write a readable, standalone PyTorch model.py.",
    "viz": "Draw networks with Graphviz, like the paper's figures.",
    "train": "Train a spec's generated model with its recipe.",
    "plot": "Overlay runs' train and test error curves (Fig. 6).",
    "eval": "Top-1/top-5 error of a run or of weights on ImageNet val/.",
    "weights": "Check or rename weights for a spec's generated module.",
    "sweep": "Train every point of a grid as an Optuna study.",
    "report": "Table 6, Fig. 6 and an HTML page from sweeps and runs.",
    "responses": "Std of the 3x3 layers' responses (Fig. 7).",
    "maps": "NIN's category confidence maps for a few test images.",
    "serve": "A local page to edit a spec and see it checked live.",
    "fmt": "Lay out specs in the one canonical style (comments kept).",
    "lsp": "The language server for editors (LSP over stdio).",
}

for _command in (
    compile_command,
    viz_command,
    train_command,
    plot_command,
    eval_command,
    weights_group,
    fmt_command,
    lsp_command,
    *EXPERIMENT_COMMANDS,
    *ANALYSIS_COMMANDS,
    serve_command,
):
    main.add_command(_command)

WEIGHTS_SUMMARIES = {
    "check": "Load weights into the spec's module (strict), compare outputs.",
    "rename": "Give weights the generated module's keys, shapes checked.",
}

for _name, _summary in SUMMARIES.items():
    main.commands[_name].short_help = _summary
for _name, _summary in WEIGHTS_SUMMARIES.items():
    weights_group.commands[_name].short_help = _summary
