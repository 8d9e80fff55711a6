"""`resdsl viz`: draw one network, or several side by side, as svg / png / pdf / dot."""

from __future__ import annotations

from pathlib import Path

import click

from resdsl.cli.common import check_outputs, load, set_option, spec_inputs, write_files
from resdsl.diagnostics import UsageError


@click.command("viz")
@click.argument("specs", nargs=-1, required=True, type=click.Path(path_type=Path))
@set_option
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Output file; the format comes from its extension: .svg, .png, .pdf or .dot "
    "(default: the spec file's name with .svg, in the current directory).",
)
@click.option("--expand", is_flag=True, help="Every op, grouped in clusters per stage and block.")
@click.option(
    "--block",
    "block",
    metavar="NAME",
    help="The inside of one block: a stage (its first block), STAGE.I (block I, from 0) or a block definition.",
)
@click.option("--blocks", is_flag=True, help="The first block of every stage.")
def viz_command(
    specs: tuple[Path, ...],
    sets: tuple[str, ...],
    output: Path | None,
    expand: bool,
    block: str | None,
    blocks: bool,
) -> None:
    """Draw networks with Graphviz: stages collapsed (default), --block/--blocks, or --expand.

    Several SPECs are drawn side by side, one column each, like the paper's Figure 3.
    """
    from resdsl.backends import viz

    if sum((expand, block is not None, blocks)) > 1:
        raise UsageError("choose one view: --expand, --block NAME or --blocks")
    view = "expanded" if expand else "block" if (blocks or block is not None) else "collapsed"
    label, advice = "-o", "choose another file"
    if output is None:
        output = Path("-".join(spec.stem for spec in specs) + ".svg")
        label, advice = "the default output", "name the diagram with -o"
    fmt = viz.output_format(output)  # a bad extension is a usage error before any work
    check_outputs([(label, output)], spec_inputs(specs, []), advice)
    networks = [(spec.stem, load(spec, sets)) for spec in specs]
    check_outputs([(label, output)], spec_inputs(specs, [f for _, ir in networks for f in ir.files]), advice)
    graph = viz.draw(networks, view=view, block=block)
    write_files([(output, viz.diagram(graph, output, fmt))], viz.RenderError)
    click.echo(str(output))


COMMANDS = [viz_command]
