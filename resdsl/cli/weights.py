"""`resdsl weights check`: does a state_dict load into a spec's generated module, and (given a
reference) does the module compute what the original did? `resdsl weights rename`: weights named
another way, given the module's names by position."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from resdsl.cli.common import check_outputs, load, set_option, spec_argument, spec_inputs, write_files
from resdsl.diagnostics import InputError

SAME_FUNCTION_HINT = (
    "the weights loaded with strict=True, which is not proof of the same function: a state_dict carries no "
    "strides, padding or pooling. Check where strided blocks put their stride (std.rd: --set stride_at=middle "
    "for torchvision's ResNet v1.5), each conv's padding, the pools (kernel, stride, padding, global or not), "
    "and that the reference ran in eval mode"
)


@click.group("weights")
def weights_group() -> None:
    """Check weights (a state_dict) against a spec's generated module."""


@weights_group.command("check")
@spec_argument
@click.argument("weights", type=click.Path(path_type=Path))  # a directory: exit 1, from the reader
@set_option
@click.option(
    "--reference",
    type=click.Path(path_type=Path),
    help='A torch.save\'d {"input": tensor, "output": tensor} from the original implementation: '
    "the module's outputs (eval mode) must match.",
)
@click.option(
    "--tolerance", type=click.FloatRange(min=0), default=1e-4, show_default=True, help="Largest allowed |difference|."
)
def check_command(spec: Path, weights: Path, sets: tuple[str, ...], reference: Path | None, tolerance: float) -> None:
    """Load WEIGHTS into SPEC's generated module with strict=True; with --reference, compare outputs."""
    import torch

    from resdsl.backends.pytorch.codegen import render_model
    from resdsl.backends.pytorch.verify import load_module
    from resdsl.backends.pytorch.weights import load_weights, read_state_dict

    ir = load(spec, sets)
    state_dict = read_state_dict(weights)
    expected = _read_reference(reference) if reference is not None else None
    model = load_module(render_model(ir, spec)).build_model()
    load_weights(model, state_dict, str(weights), f"{ir.name}'s generated module")
    click.echo(f"{weights}: ok: {len(state_dict)} tensors load into {ir.name} with strict=True")
    if expected is None:
        return
    x, want = expected
    if tuple(x.shape[1:]) != tuple(ir.input_shape):
        raise InputError(
            f"{reference}: the input is {list(x.shape)}, {ir.name} takes N x {' x '.join(map(str, ir.input_shape))}"
        )
    model.eval()
    with torch.no_grad():
        got = model(x.to(torch.float32))
    if tuple(got.shape) != tuple(want.shape):
        raise InputError(f"{reference}: the output is {list(want.shape)}, the module gives {list(got.shape)}")
    diff = (got - want.to(got.dtype)).abs().max().item()
    if not diff <= tolerance:
        raise InputError(
            f"the outputs differ from {reference}: max abs diff {diff:.3g} > tolerance {tolerance:g}\n"
            f"  {SAME_FUNCTION_HINT}"
        )
    click.echo(f"{reference}: ok: max abs diff {diff:.3g} <= tolerance {tolerance:g} over {want.numel():,} outputs")


@weights_group.command("rename")
@spec_argument
@click.argument("weights", type=click.Path(path_type=Path))  # a directory: exit 1, from the reader
@set_option
@click.option(
    "-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True, help="The renamed state_dict."
)
@click.option(
    "--map", "map_file", type=click.Path(dir_okay=False, path_type=Path), help="Also write the key map (JSON)."
)
def rename_command(spec: Path, weights: Path, sets: tuple[str, ...], output: Path, map_file: Path | None) -> None:
    """Give WEIGHTS the generated module's keys, pairing tensors in order (every shape must agree):
    for weights named another way, such as torchvision's mobilenet_v2. Then `weights check` with
    --reference tells whether the function is the same."""
    import json

    import torch

    from resdsl.backends.pytorch.codegen import render_model
    from resdsl.backends.pytorch.verify import load_module
    from resdsl.backends.pytorch.weights import read_state_dict, rename_by_position

    outputs = [(label, path) for label, path in (("-o", output), ("--map", map_file)) if path is not None]
    read = [("the weights", weights)]
    check_outputs(outputs, spec_inputs([spec], []) + read)  # before any work
    ir = load(spec, sets)
    check_outputs(outputs, spec_inputs([spec], ir.files) + read)  # and every file the spec imports
    state_dict = read_state_dict(weights)
    with torch.device("meta"):
        model = load_module(render_model(ir, spec)).build_model()
    renamed, pairs = rename_by_position(model, state_dict, str(weights))
    files: list[tuple[Path, Any]] = [(output, lambda f: torch.save(renamed, f))]
    if map_file is not None:
        files.append((map_file, json.dumps(dict(pairs), indent=1) + "\n"))
    write_files(files, InputError, make_dirs=False)  # all or nothing
    moved = sum(1 for theirs, ours in pairs if theirs != ours)
    click.echo(f"wrote {output}: {len(pairs)} tensors in {ir.name}'s names ({moved} renamed, shapes checked)")


def _read_reference(path: Path):
    """(input, output) of a reference file: dense tensors, a batch of at least one image."""
    import torch

    from resdsl.backends.pytorch.weights import load_tensors, tensor_problem

    data = load_tensors(path, f"reference {path}")
    if not isinstance(data, dict) or not all(isinstance(data.get(k), torch.Tensor) for k in ("input", "output")):
        raise InputError(f'{path} must hold {{"input": tensor, "output": tensor}} (torch.save of a dict)')
    for key in ("input", "output"):
        problem = tensor_problem(data[key])
        if problem is not None:
            raise InputError(f"{path}: {key} is {problem}")
        if data[key].dim() == 0 or data[key].shape[0] == 0:
            raise InputError(
                f"{path}: {key} is an empty batch ({list(data[key].shape)}); save the input and output of at "
                "least one image"
            )
        if not (data[key].dtype.is_floating_point or key == "input"):
            raise InputError(f"{path}: output is {str(data[key].dtype).removeprefix('torch.')}, not the logits")
    return data["input"], data["output"]


COMMANDS = [weights_group]
