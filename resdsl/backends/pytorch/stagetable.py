"""Stages that torchvision writes as a table and a loop (MobileNetV2's `inverted_residual_setting`):
a run of stages in one `nn.Sequential`, each repeating one block class whose uses after the first
differ from it only in a few arguments that take one value there (`stride` 1), the input width of
each use the output width of the one before.

    for t, out, blocks, stride in (
        (1, 16, 1, 1),
        (6, 24, 2, 2),
        ...
    ):
        for i in range(blocks):
            self.features.append(InvertedResidualBlock(in_channels, out, stride=stride if i == 0 else 1, t=t))
            in_channels = out
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from resdsl.backends.pytorch.pyexpr import split_keyword
from resdsl.ir.graph import BlockInstance
from resdsl.ir.paths import Entry, Node

if TYPE_CHECKING:
    from resdsl.backends.pytorch.context import GenContext

MIN_STAGES = 3  # fewer stages read better written out
_LITERAL = re.compile(r"-?\d+(\.\d+)?(e-?\d+)?|True|False|None|'[^'\\]*'|\"[^\"\\]*\"")


@dataclass
class _Use:
    inst: BlockInstance
    section: str  # its stage's name
    values: dict[str, str]  # every parameter after in_channels -> its value (a literal), defaults filled in


def stage_table(gen: GenContext, kids: list[tuple[str, Node | Entry]], k: int, owner: str) -> tuple[int, list[str]]:
    """How many of `kids` from `kids[k]` a stage table builds, and its lines; (0, []) where none fits."""
    stages = _stages_at(gen, kids, k)
    if len(stages) < MIN_STAGES:
        return 0, []
    block = stages[0][0].inst.definition
    params = [local for local, _ in gen.block_params[block]]
    out = gen.block_out.get(block)
    later = _later_values(stages, params)
    if out not in params or later is None or not _chained(gen, stages, out):
        return 0, []  # the output width is not one argument, or the uses are not that regular
    firsts = [stage[0].values for stage in stages]
    columns = [p for p in params if p == out or p in later or len({f[p] for f in firsts}) > 1]
    defaults = _defaults(gen.block_params[block])
    args, keywords = ["in_channels"], False
    for p in params:
        if p in later:
            value = f"{p} if i == 0 else {later[p]}"
        elif p in columns:
            value = p
        elif p not in defaults or firsts[0][p] != defaults[p]:
            value = firsts[0][p]
        else:
            continue  # the same default at every use: the class supplies it
        keywords |= p in defaults or p in later
        args.append(f"{p}={value}" if keywords else value)
    uses = sum(len(stage) for stage in stages)
    labels = list(dict.fromkeys(use.section for stage in stages for use in stage))
    return uses, [
        f"# stages {labels[0]} ... {labels[-1]}: each one's {', '.join(columns)} (at its first block) and blocks",
        f"in_channels = {gen.in_channels(stages[0][0].inst)}",
        f"for {', '.join([*columns, 'blocks'])} in (",
        *(f"    ({', '.join([*(f[c] for c in columns), str(len(stage))])})," for f, stage in zip(firsts, stages)),
        "):",
        "    for i in range(blocks):",
        f"        {owner}.append({gen.class_names[block]}({', '.join(args)}))",
        f"        in_channels = {out}",
    ]


def _stages_at(gen: GenContext, kids: list[tuple[str, Node | Entry]], k: int) -> list[list[_Use]]:
    """The whole stages from `kids[k]` on whose uses are one block class, each at the next position."""
    stages: list[list[_Use]] = []
    j = k
    while j < len(kids):
        name, child = kids[j]
        if not (isinstance(child, Entry) and isinstance(child.item, BlockInstance) and name == str(j)):
            break
        use = _use(gen, child.item, child.section.name)
        if use is None or (stages and use.inst.definition != stages[0][0].inst.definition):
            break
        if stages and use.section == stages[-1][0].section:
            stages[-1].append(use)
        else:
            stages.append([use])
        j += 1
    if j < len(kids) and stages and isinstance(kids[j][1], Entry) and kids[j][1].section.name == stages[-1][0].section:
        stages.pop()  # the last stage goes on past the run: not whole
    return stages


def _use(gen: GenContext, inst: BlockInstance, section: str) -> _Use | None:
    """A use's arguments by parameter, or None where one is not a literal (a module, a survival rule)."""
    args, _ = gen.call_args(inst, gen.in_channels(inst))
    params = [local for local, _ in gen.block_params[inst.definition]]
    required = [local for local, text in gen.block_params[inst.definition] if "=" not in text]
    values = _defaults(gen.block_params[inst.definition])
    split = [split_keyword(a) for a in args[1:]]
    values.update(zip(required, [value for key, value in split if not key]))
    for key, value in split:
        if key:
            if key not in params:
                return None  # downsample=, survival=, plain=: not a table's column
            values[key] = value
    if set(values) != set(params) or not all(_LITERAL.fullmatch(v) for v in values.values()):
        return None
    return _Use(inst, section, values)


def _later_values(stages: list[list[_Use]], params: list[str]) -> dict[str, str] | None:
    """The parameters in which a stage's later uses differ from its first, each with the one value it
    takes there (`{"stride": "1"}`); None where the later uses are not that regular."""
    later: dict[str, str] = {}
    for stage in stages:
        for use in stage[1:]:
            for p in params:
                if use.values[p] != stage[0].values[p] and later.setdefault(p, use.values[p]) != use.values[p]:
                    return None
    for stage in stages:  # every later use takes those values, and agrees with its first elsewhere
        for use in stage[1:]:
            if any(use.values[p] != later.get(p, stage[0].values[p]) for p in params):
                return None
    return later


def _chained(gen: GenContext, stages: list[list[_Use]], out: str) -> bool:
    """Whether each use's input width is the output width (`out`) of the use before it."""
    uses = [use for stage in stages for use in stage]
    return all(str(gen.in_channels(b.inst)) == a.values[out] for a, b in zip(uses, uses[1:]))


def _defaults(params: list[tuple[str, str]]) -> dict[str, str]:
    """A class's parameters with a default -> that default, as written (`{"stride": "1", "t": "6"}`)."""
    return {local: text.split("=", 1)[1].strip() for local, text in params if "=" in text}
