"""`resdsl compile`: a spec -> a standalone PyTorch model.py (and, on request, a train.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from resdsl.cli.common import check_outputs, load, set_option, spec_argument, spec_inputs, write_files
from resdsl.diagnostics import InputError, ResdslError


class GeneratedCodeMismatch(ResdslError):
    """The generated module disagrees with the IR: a bug in resdsl, reported instead of a file."""

    def render(self) -> str:
        return f"error: resdsl bug: {self}"


@click.command("compile")
@spec_argument
@set_option
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the model here (default: print it).",
)
@click.option(
    "--verify",
    is_flag=True,
    help="Build the module (on the meta device) and check its parameter count, stage shapes and FLOPs "
    "against the analysis before writing it; needs torch.",
)
@click.option(
    "--zero-init-residual",
    is_flag=True,
    help="Make build_model() zero the last BN of each residual branch by default (Goyal et al. 2017).",
)
@click.option(
    "--train-script",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write a standalone training script for the spec's train recipe (needs -o).",
)
def compile_command(
    spec: Path,
    sets: tuple[str, ...],
    output: Path | None,
    verify: bool,
    zero_init_residual: bool,
    train_script: Path | None,
) -> None:
    """Generate a readable, standalone PyTorch model.py (imports only torch)."""
    from resdsl.backends.pytorch.codegen import render_model
    from resdsl.diagnostics import UsageError

    if train_script is not None and output is None:
        raise UsageError("--train-script needs -o MODEL.py: the script imports the model file")
    if train_script is not None and not output.stem.isidentifier():
        raise UsageError(f"--train-script imports the model as a module: -o {output} needs a name like model.py")
    outputs = [(label, path) for label, path in (("-o", output), ("--train-script", train_script)) if path]
    check_outputs(outputs, spec_inputs([spec], []))  # before any work: the spec itself, the outputs
    ir = load(spec, sets)
    check_outputs(outputs, spec_inputs([spec], ir.files))  # and every file it imports
    source = render_model(ir, spec, zero_init_residual=zero_init_residual)
    if verify:
        from resdsl.backends.pytorch.verify import verify_model

        problems = verify_model(ir, source)
        if problems:
            raise GeneratedCodeMismatch(
                "the generated module disagrees with the analysis of "
                f"{spec} (nothing was written):\n  " + "\n  ".join(problems) + "\nplease report this with the spec"
            )
    from resdsl.backends.pytorch.weights import stride_note
    from resdsl.lang.overrides import parse_sets

    note = stride_note(ir, chosen=set(parse_sets(sets)))
    if note is not None:
        click.echo(note, err=True)
    if output is None:
        click.echo(source, nl=False)
        return
    files: list[tuple[Path, str]] = [(output, source)]
    if train_script is not None:
        from resdsl.train.script import render_train_script

        files.append((train_script, render_train_script(ir, model_module=output.stem, spec_path=str(spec))))
    write_files(files, InputError)  # all or nothing
    t = ir.totals
    verified = ", verified" if verify else ""
    click.echo(f"wrote {output}: {ir.name}, {t.layers} layers, {t.params:,} params{verified}", err=True)
    if train_script is not None:
        click.echo(f"wrote {train_script}: python {train_script} --data CIFAR_DIR", err=True)


COMMANDS = [compile_command]

if __name__ == "__main__":  # pragma: no cover
    sys.exit(compile_command())
