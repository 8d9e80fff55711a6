"""Regular stages (`block(...) * n`) as torchvision writes them: `self.make_stage(width, blocks=n)`.

A stage is regular when its uses are one block, the copies after the first equal to it but at
stride 1, and every shortcut is what the network's shortcut option gives for its shape (A: a
zero-padded identity where the shape changes, B: a projection there, C: a projection on every
block, identity, none). The network class then gets one `make_stage` method per block and
tracks `self.in_channels` (and `self.units` for stochastic depth) as torchvision's `_make_layer`
tracks `inplanes`, so that one width or depth is one number to change. Anything else is written
out block by block (resdsl.backends.pytorch.codegen).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from resdsl.backends.pytorch.slots import residual_mode
from resdsl.ir.graph import BlockInstance, Section, ShortcutOption

if TYPE_CHECKING:
    from resdsl.backends.pytorch.context import GenContext

_RULES = {
    ShortcutOption.A: "identity, zero-padded and subsampled where the shape changes (option A)",
    ShortcutOption.B: "identity, a 1x1 projection where the shape changes (option B)",
    ShortcutOption.C: "a 1x1 projection on every block (option C)",
    ShortcutOption.IDENTITY: "identity",
    ShortcutOption.NONE: "none (the plain counterpart)",
}


@dataclass(frozen=True)
class Rule:
    """How the blocks of a regular stage get their shortcuts and survival."""

    option: ShortcutOption
    projection_bn: bool
    linear_survival: bool


@dataclass
class StagePlan:
    block: str
    first: BlockInstance
    count: int
    rule: Rule
    in_channels: int
    first_unit: int | None  # stochastic depth: the unit number of its first block


def plan_stage(gen: GenContext, s: Section) -> StagePlan | None:
    """The plan of a regular stage, or None where the stage must be written out."""
    insts = s.blocks
    if not insts or any(i.definition != insts[0].definition or i.children for i in insts):
        return None
    name = insts[0].definition
    template = gen.ir.blocks[name]
    if name not in gen.stage_ready:
        return None
    uses = gen.slot_uses[name]
    if len(uses) != 1 or uses[0].kind != "add" or uses[0].mixed_plain:
        return None  # residual blocks only: one `residual { }` each
    first = insts[0]
    copy_args = dict(first.args)
    if template.formal("stride") is not None:
        copy_args["stride"] = 1
    if any(i.args != copy_args or _types(i.args) != _types(copy_args) for i in insts[1:]):
        return None
    rule = None
    first_unit = None
    for k, inst in enumerate(insts):
        r = gen.slots_of(inst)[0] if uses else None
        inst_rule = Rule(r.option, r.projection_bn, gen.linear_survival(r)) if r else None
        if rule is None:
            rule = inst_rule
        elif inst_rule != rule:
            return None
        if r is not None and not _follows(gen, inst, r, first.args.get("stride", 1) if k == 0 else 1):
            return None
        if r is not None and r.survival != 1.0 and not inst_rule.linear_survival:
            return None
        if r is not None and inst_rule.linear_survival:
            unit = gen.unit_of[r.id]
            if first_unit is None:
                first_unit = unit
            elif unit != first_unit + k:
                return None
    if rule is None:
        rule = Rule(ShortcutOption.NONE, True, False)
    return StagePlan(name, first, len(insts), rule, gen.in_channels(first), first_unit)


def _types(args: dict) -> dict:
    return {k: type(v) for k, v in args.items()}


def _follows(gen: GenContext, inst: BlockInstance, r, stride) -> bool:
    """Does this use's shortcut match its option's rule for its shape?"""

    mode = residual_mode(gen.ir, r)
    in_c = gen.in_channels(inst)
    out_c = gen.ir.op(inst.nodes[-1]).shape[0]
    changes = stride != 1 or in_c != out_c
    expected = {
        ShortcutOption.A: "pad" if changes else "identity",
        ShortcutOption.B: "projection" if changes else "identity",
        ShortcutOption.C: "projection",
        ShortcutOption.IDENTITY: "identity",
        ShortcutOption.NONE: "none",
    }[r.option]
    if mode != expected:
        return False
    if mode in ("pad", "projection"):
        plan = gen.ir.op(r.shortcut).shortcut
        return (plan.stride, plan.in_channels, plan.out_channels) == (stride, in_c, out_c)
    return True


def make_stage_method(gen: GenContext, block: str, method: str, rule: Rule, out_channels: str) -> list[str]:
    """`def make_stage(self, width: int, blocks: int, stride: int = 1) -> nn.Sequential:` and its body."""
    template = gen.ir.blocks[block]
    cls = gen.class_names[block]
    params = gen.block_params[block]  # (local, annotation with default) of the class, after in_channels
    required = [p for p in params if "=" not in p[1]]
    optional = [p for p in params if "=" in p[1]]
    signature = ["self"] + [p[1] for p in required] + ["blocks: int"] + [p[1] for p in optional]
    takes_downsample = bool(gen.slot_uses[block]) and gen.slot_uses[block][0].takes_downsample
    stochastic = bool(gen.slot_uses[block]) and gen.slot_uses[block][0].stochastic and rule.linear_survival
    has_stride = template.formal("stride") is not None
    stride = "stride" if has_stride else "1"
    args_first = [f"{p[0]}={p[0]}" if "=" in p[1] else p[0] for p in params]
    # The copies after the first take stride 1, which the class's default need not be (no default,
    # `stride = 2`, `stride = st`): pass it unless the default is the constant 1.
    stride_local = gen.locals_of(block).get("stride")
    default = template.constant_defaults.get("stride")
    default_is_one = default == 1 and not isinstance(default, bool)
    args_rest = []
    for arg, (local, annotation) in zip(args_first, params):
        if local != stride_local:
            args_rest.append(arg)
        elif "=" not in annotation:
            args_rest.append("1")  # a required stride: positional, in its place
        elif not default_is_one:
            args_rest.append(f"{local}=1")
    lines = [
        f"def {method}({', '.join(signature)}) -> nn.Sequential:",
        f'    """`blocks` {cls}s; the first {"takes `stride` and " if has_stride else ""}changes the width.',
        "",
        f"    Shortcuts: {_RULES[rule.option]}.",
        '    """',
        f"    out_channels = {out_channels}",
    ]
    first_extra, rest_extra = [], []
    if takes_downsample:
        bn = "" if rule.projection_bn else ", bn=False"
        if rule.option is ShortcutOption.C:
            lines.append(f"    downsample = projection(self.in_channels, out_channels, stride={stride}{bn})")
            rest_extra.append(f"downsample=projection(out_channels, out_channels{bn})")
        else:
            module = "ZeroPadShortcut" if rule.option is ShortcutOption.A else "projection"
            extra = "" if rule.option is ShortcutOption.A else bn
            change = (
                f"{stride} != 1 or self.in_channels != out_channels"
                if has_stride
                else "self.in_channels != out_channels"
            )
            lines += [
                "    downsample = None",
                f"    if {change}:",
                f"        downsample = {module}(self.in_channels, out_channels, stride={stride}{extra})",
            ]
        first_extra.append("downsample=downsample")
    if stochastic:
        first_extra.append("survival=survival_probability(self.units)")
        rest_extra.append("survival=survival_probability(self.units)")
    first_call = f"{cls}({', '.join(['self.in_channels', *args_first, *first_extra])})"
    rest_call = f"{cls}({', '.join(['out_channels', *args_rest, *rest_extra])})"
    if stochastic:
        lines.append("    self.units += 1")
    lines += [f"    layers = nn.Sequential({first_call})", "    for _ in range(1, blocks):"]
    if stochastic:
        lines.append("        self.units += 1")
    lines.append(f"        layers.append({rest_call})")
    lines += ["    self.in_channels = out_channels", "    return layers"]
    return lines


def stage_items(gen: GenContext, s: Section) -> list[str]:
    """One line per run of equal block uses: `*(BasicBlock(16, 16) for _ in range(17)),`;
    a run whose survival follows the linear rule loops over its units."""
    uses = []
    for inst in s.blocks:
        if not inst.nodes:
            continue  # an empty block (`block e() { }`) is the identity: nothing to build
        in_c = gen.in_channels(inst)
        looped, unit = gen.call(inst, in_c, unit_var="unit")
        uses.append((looped, unit, gen.call(inst, in_c)[0]))
    lines: list[str] = []
    i = 0
    while i < len(uses):
        text, unit, single = uses[i]
        step = uses[i + 1][1] - unit if unit is not None and i + 1 < len(uses) and uses[i + 1][1] else 0
        j = i + 1
        while (
            j < len(uses)
            and uses[j][0] == text
            and (unit is None or (step > 0 and uses[j][1] == unit + (j - i) * step))
        ):
            j += 1
        count = j - i
        if count == 1:
            lines.append(single + ",")
        elif unit is not None:
            span = f"{unit}, {unit + count * step}" + (f", {step}" if step > 1 else "")
            lines.append(f"*({text} for unit in range({span})),")
        else:
            lines.append(f"*({text} for _ in range({count})),")
        i = j
    return lines
