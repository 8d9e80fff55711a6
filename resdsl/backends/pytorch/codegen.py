"""Checked IR -> a standalone PyTorch `model.py` (rendered by templates/model.py.j2).

The IR decides everything: the block templates (resdsl.ir.template) give each block class's
layers as expressions of the block's own arguments, with the spec's params folded in; the op
graph gives every use's argument values, shortcut (identity, option A zero-pad or a projection)
and stochastic-depth survival. This module turns those into a view-model of Python source lines;
the template only lays them out. It never reads the syntax tree or the op catalogue.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

from resdsl.backends.pytorch.blocks import BodyWriter
from resdsl.backends.pytorch.hints import uses_hint
from resdsl.backends.pytorch.initweights import init_weights_lines
from resdsl.backends.pytorch.names import (
    MODULE_NAMES,
    RESERVED,
    Names,
    camel,
    clean_comment,
    local_names,
    network_class_name,
)
from resdsl.backends.pytorch.optable import (
    ACTIVATION_MODULES,
    HELPERS,
    apply_text,
    behaviour,
    flatten_points,
    module_text,
)
from resdsl.backends.pytorch.pyexpr import CodegenError, Translator, kernel_literal, literal
from resdsl.backends.pytorch.pyformat import format_python
from resdsl.backends.pytorch.slots import SlotUse, instance_slots, residual_mode, residual_starts
from resdsl.backends.pytorch.stages import Rule, StagePlan, make_stage_method, plan_stage, stage_items
from resdsl.backends.pytorch.tree import TreeWriter
from resdsl.backends.pytorch.view import BlockClass, ModelView
from resdsl.ir.graph import BlockInstance, NetworkIR, Op, OpKind, Residual, Section, ShortcutOption
from resdsl.ir.paths import named_layout, section_items
from resdsl.ir.template import CallItem, OpItem, walk

__all__ = ["CodegenError", "ModelView", "render_model"]


# ---------------------------------------------------------------- generation


class Generator:
    def __init__(self, ir: NetworkIR, spec_path: str) -> None:
        self.ir = ir
        self.spec_path = spec_path
        names = Names(MODULE_NAMES | RESERVED)
        self.class_names: dict[str, str] = {}
        for bname in ir.blocks:
            wanted = camel(bname)
            self.class_names[bname] = names.get(wanted if wanted.endswith("Block") else wanted + "Block")
        self.network_class = names.get(network_class_name(ir.name))
        self.by_start = residual_starts(ir)
        self.instances: dict[str, list[BlockInstance]] = {}
        self.slot_uses: dict[str, list[SlotUse]] = {}
        self.called_inside: set[str] = {  # blocks used inside blocks: their callers read `out_channels`
            item.block for t in ir.blocks.values() for item in walk(t.body) if isinstance(item, CallItem)
        }
        self.uses_math = False
        self.uses_zero_pad = False
        self.uses_projection = False
        self.unit_of: dict[int, int] = {}  # residual id -> stochastic-depth unit number (1-based)
        self.survival_rule = self._survival_rule()
        self.last_bns: dict[str, list[tuple[str, str | None]]] = {}  # block class -> BodyWriter.last_bns (BN, guard)
        self.block_params: dict[str, list[tuple[str, str]]] = {}  # block -> (local, `local: hint = default`)
        self.block_out: dict[str, str] = {}  # block -> its output channels, an expression of its arguments
        self.stage_ready: set[str] = set()  # blocks whose regular stages may use a make_stage method
        self._made_by: dict[str, list[Op]] = {}  # template item key -> the ops it made (ops_of)
        for op in ir.ops():
            self._made_by.setdefault(op.origin, []).append(op)

    # ---- analysis of uses
    def collect(self) -> None:
        def visit(inst: BlockInstance) -> None:
            self.instances.setdefault(inst.definition, []).append(inst)
            for child in inst.children:
                visit(child)

        for section in self.ir.sections:
            for inst in section.blocks:
                visit(inst)
        for name, insts in self.instances.items():
            uses: list[SlotUse] | None = None
            for inst in insts:
                rs = self.slots_of(inst)
                if uses is None:
                    uses = [SlotUse(r.kind) for r in rs]
                if len(rs) != len(uses):
                    raise CodegenError(f"uses of block `{name}` expand to different sections")
                for use, r in zip(uses, rs):
                    use.modes.add(residual_mode(self.ir, r))
                    use.survivals.add(r.survival)
                    use.by_shape &= r.by_shape
            self.slot_uses[name] = uses or []

    def ops_of(self, item: OpItem) -> list[Op]:
        """The ops every use of a block's op statement made (their origin is the item)."""
        return self._made_by.get(item.key, [])

    def non_square(self, item: OpItem) -> bool:
        """Whether some use of a block's op has a non-square kernel (given through a block argument)."""
        return any(isinstance(k := op.attrs.get("kernel"), tuple) and k[0] != k[1] for op in self.ops_of(item))

    def global_at_some_use(self, item: OpItem) -> bool:
        """Whether `avgpool k` is `avgpool global` at some use (k given as `global`)."""
        return any(op.kind is OpKind.GLOBAL_AVGPOOL for op in self.ops_of(item))

    def in_channels(self, inst: BlockInstance) -> int:
        return self.ir.op(self.ir.inputs(inst.nodes[0])[0]).shape[0]  # not for an empty block: see stage_items

    def slots_of(self, inst: BlockInstance) -> list[Residual]:
        return instance_slots(self.ir, inst, self.by_start)

    def _survival_rule(self) -> tuple[int, float] | None:
        """(units, last) when the network's survival decays linearly (Huang et al.)."""
        units = self.ir.units()
        self.unit_of = {r.id: depth for depth, r in enumerate(units, start=1)}
        if self.ir.survival is None or self.ir.survival[0] != "linear":
            return None
        return len(units), self.ir.survival[1]

    def linear_survival(self, r: Residual) -> bool:
        if self.survival_rule is None or r.id not in self.unit_of:
            return False
        n, last = self.survival_rule
        return 1.0 - self.unit_of[r.id] / n * (1.0 - last) == r.survival

    # ---- block classes
    def block_class(self, bname: str) -> BlockClass:
        template = self.ir.blocks[bname]
        uses = self.slot_uses[bname]
        locals_ = self.locals_of(bname)
        floats = frozenset(
            name
            for inst in self.instances[bname]
            for name, value in inst.args.items()
            if isinstance(value, float) and not isinstance(value, bool)
        )
        tr = Translator({**locals_, "in.channels": "in_channels"}, floats)  # in_channels: the class's first parameter
        params: list[tuple[str, str]] = []
        for f in template.formals:
            hint = uses_hint([i.args.get(f.name) for i in self.instances[bname]])
            if f.default is None:
                params.append((locals_[f.name], f"{locals_[f.name]}: {hint}"))
            elif tr.is_constant(f.default):
                params.append((locals_[f.name], f"{locals_[f.name]}: {hint} = {tr(f.default)}"))
            else:
                params.append((locals_[f.name], f"{locals_[f.name]}: {hint} | None = None"))
        # Python wants parameters without a default first; a spec may write `block b(w = 1, s)`.
        # Calls pass the required ones positionally (in this order) and the others by keyword.
        params = [p for p in params if "=" not in p[1]] + [p for p in params if "=" in p[1]]
        signature = ["in_channels: int"] + [text for _, text in params]
        slot_params = self.slot_params(uses)
        if slot_params:
            signature.append("*")
            signature += [p for _, p in slot_params]
        body = BodyWriter(self, tr, uses)
        for f in template.formals:
            if f.default is not None and not tr.is_constant(f.default):
                name = locals_[f.name]
                body.init += [f"if {name} is None:", f"    {name} = {tr(f.default)}"]
        body.write(template.body)
        for attr, _ in slot_params:
            body.init.append(f"self.{attr} = {attr}")
        if bname in self.called_inside:
            body.init.append(f"self.out_channels = {body.channels}")
        self.block_params[bname] = params
        self.block_out[bname] = body.channels
        if all(f.default is None or tr.is_constant(f.default) for f in template.formals) and not re.search(
            r"\bin_channels\b|\bself\.", body.channels
        ):
            self.stage_ready.add(bname)
        self.uses_math |= tr.uses_math
        cite = [
            f"{clean_comment(template.module or self.spec_path)}:{template.span.line}: {clean_comment(template.header)}"
        ]
        self.last_bns[self.class_names[bname]] = body.last_bns
        return BlockClass(self.class_names[bname], cite, signature, body.init, body.forward_lines())

    def locals_of(self, bname: str) -> dict[str, str]:
        """The Python names of a block's formals (parameters of its class and keywords of its calls)."""
        avoid = MODULE_NAMES | set(self.class_names.values()) | {self.network_class}
        return local_names([f.name for f in self.ir.blocks[bname].formals], avoid)

    def slot_params(self, uses: list[SlotUse]) -> list[tuple[str, str]]:
        """Keyword-only parameters: each slot's shortcut module, survival and plain switch."""
        out = []
        many = len(uses) > 1
        for i, use in enumerate(uses, start=1):
            suffix = str(i) if many else ""
            if use.takes_downsample:
                out.append((f"downsample{suffix}", f"downsample{suffix}: nn.Module | None = None"))
            if use.stochastic:
                out.append((f"survival{suffix}", f"survival{suffix}: float = 1.0"))
            if use.plain_flag:
                out.append((f"plain{suffix}", f"plain{suffix}: bool = False"))
        return out

    # ---- uses of blocks: constructor calls with the graph's values
    def call(self, inst: BlockInstance, in_channels: int, unit_var: str | None = None) -> tuple[str, int | None]:
        """`BasicBlock(64, 128, stride=2, downsample=projection(64, 128, stride=2))`, and the first
        stochastic-depth unit it uses through `unit_var` (None if its survival is written out)."""
        args, first_unit = self.call_args(inst, in_channels, unit_var)
        return f"{self.class_names[inst.definition]}({', '.join(args)})", first_unit

    def call_args(
        self, inst: BlockInstance, in_channels: int, unit_var: str | None = None
    ) -> tuple[list[str], int | None]:
        """The arguments of `call`'s constructor call (`["64", "128", "stride=2", ...]`)."""
        positional, keywords = self.block_arguments(inst)
        args = [str(in_channels), *positional, *keywords]
        uses = self.slot_uses[inst.definition]
        many = len(uses) > 1
        first_unit = None
        for i, (use, r) in enumerate(zip(uses, self.slots_of(inst)), start=1):
            suffix = str(i) if many else ""
            mode = residual_mode(self.ir, r)
            if mode in ("pad", "projection"):
                args.append(f"downsample{suffix}={self.shortcut_module(r)}")
            if use.stochastic and r.survival != 1.0:
                if self.linear_survival(r):
                    if first_unit is None:
                        first_unit = self.unit_of[r.id]
                    offset = self.unit_of[r.id] - first_unit
                    if unit_var is None:
                        unit = str(self.unit_of[r.id])
                    else:
                        unit = unit_var + (f" + {offset}" if offset else "")
                    args.append(f"survival{suffix}=survival_probability({unit})")
                else:
                    args.append(f"survival{suffix}={r.survival!r}")
            if use.plain_flag and mode == "none":
                args.append(f"plain{suffix}=True")
        return args, first_unit

    def shortcut_module(self, r: Residual) -> str:
        plan = self.ir.op(r.shortcut).shortcut
        stride = f", stride={plan.stride}" if plan.stride != 1 else ""
        if plan.mode == "pad":
            self.uses_zero_pad = True
            return f"ZeroPadShortcut({plan.in_channels}, {plan.out_channels}{stride})"
        self.uses_projection = True
        bn = "" if plan.bn else ", bn=False"
        return f"projection({plan.in_channels}, {plan.out_channels}{stride}{bn})"

    # ---- the network class
    def network(self) -> BlockClass:
        """The network class in the default layout, its modules on the paths the IR decided (ir/paths.py)."""
        if named_layout(self.ir):
            return self.named_network()
        ir = self.ir
        init: list[str] = []
        forward: list[str] = []
        names = Names({p.split(".")[0] for p in self.top_paths()})  # the shared activations' names avoid them
        relu_done = False
        activations: dict[OpKind, str] = {}
        for s in ir.sections:
            for op in self.top_ops(s):
                if op.kind in (OpKind.SHORTCUT, OpKind.CONCAT, OpKind.MUL):
                    what = {OpKind.CONCAT: "dense", OpKind.MUL: "gate"}.get(op.kind, "residual")
                    raise CodegenError(
                        f"a `{what} {{ }}` section directly in the {s.kind} ({op.span}) is not supported; "
                        "put it in a block and call the block there"
                    )
        fresh = False
        plans = {i: plan_stage(self, s) for i, s in enumerate(ir.sections) if s.kind == "stage"}
        methods = self.stage_methods([p for p in plans.values() if p is not None])
        tracked_in: int | None = None
        tracked_units: int | None = None
        for i, s in enumerate(ir.sections):
            if s.kind == "stage":
                attr, plan = s.path, plans[i]
                if plan is not None and tracked_in != plan.in_channels:
                    init.append(f"self.in_channels = {plan.in_channels}  # make_stage's input width")
                if plan is not None and plan.first_unit is not None and tracked_units != plan.first_unit - 1:
                    init.append(f"self.units = {plan.first_unit - 1}  # stochastic depth: residual units built so far")
                init.append(f"# {clean_comment(s.name)}: {clean_comment(s.description)}")
                if plan is None:
                    init += [f"self.{attr} = nn.Sequential("] + ["    " + line for line in stage_items(self, s)]
                    init.append(")")
                else:
                    init.append(f"self.{attr} = self.{methods[(plan.block, plan.rule)][0]}({self.stage_args(plan)})")
                    tracked_in = ir.op(s.blocks[-1].nodes[-1]).shape[0]
                    if plan.first_unit is not None:
                        tracked_units = plan.first_unit - 1 + plan.count
                forward.append(f"x = self.{attr}(x)")
                fresh = False
                continue
            init.append(f"# {s.kind}")
            items = section_items(ir, s)
            flatten_at = flatten_points([item if isinstance(item, Op) else None for item in items])
            for k, item in enumerate(items):
                if k in flatten_at:
                    forward.append("x = torch.flatten(x, 1)")
                if isinstance(item, BlockInstance):
                    init.append(f"self.{item.path} = {self.call(item, self.in_channels(item))[0]}")
                    forward.append(f"x = self.{item.path}(x)")
                    fresh = False
                    continue
                op = item
                if behaviour(op.kind).shared_in_place:
                    if not relu_done:
                        init.append("self.relu = nn.ReLU(inplace=True)")
                        relu_done = True
                    forward.append("x = self.relu(x)" if fresh else "x = torch.relu(x)")
                    fresh = False  # ReLU's backward reads its output
                    continue
                if op.kind in ACTIVATION_MODULES:
                    if op.kind not in activations:
                        activations[op.kind] = names.get(op.kind.value)
                        init.append(f"self.{activations[op.kind]} = {ACTIVATION_MODULES[op.kind]}")
                    forward.append(f"x = self.{activations[op.kind]}(x)")
                    fresh = False
                    continue
                init.append(f"self.{op.path} = {self.module_literal(op, op.in_shapes[0])}")
                forward.append(f"x = {apply_text(op.kind, f'self.{op.path}', 'x')}")
                fresh = not behaviour(op.kind).output_aliases_input or fresh
        out_shape = ir.op(ir.output_node).shape
        if len(out_shape) > 1:
            forward.append("x = torch.flatten(x, 1)")
        forward.append("return x")
        init += init_weights_lines(self.last_bns)
        signature = ["zero_init_residual: bool = False"]
        span = ir.span
        cite = [f"{clean_comment(self.spec_path)}:{span.line}: {clean_comment(span.source.line(span.line).strip())}"]
        extra = [line for name, lines in methods.values() for line in ["", *lines]]
        return BlockClass(self.network_class, cite, signature, init, forward, extra)

    def top_paths(self) -> list[str]:
        """The paths of the network class's own modules: stages, and stem and head ops and block uses."""
        out = [s.path for s in self.ir.sections if s.path is not None]
        for s in self.ir.sections:
            if s.kind != "stage":
                out += [item.path for item in section_items(self.ir, s) if item.path is not None]
        return out

    def named_network(self) -> BlockClass:
        """The network class with the module paths the spec's `name:` options chose (tree.py)."""
        writer = TreeWriter(self)
        init = writer.init_lines() + init_weights_lines(self.last_bns)
        forward = writer.forward_lines()
        if len(self.ir.op(self.ir.output_node).shape) > 1:
            forward.append("x = torch.flatten(x, 1)")
        forward.append("return x")
        span = self.ir.span
        cite = [f"{clean_comment(self.spec_path)}:{span.line}: {clean_comment(span.source.line(span.line).strip())}"]
        return BlockClass(self.network_class, cite, ["zero_init_residual: bool = False"], init, forward)

    def stage_methods(self, plans: list[StagePlan]) -> dict[tuple[str, Rule], tuple[str, list[str]]]:
        """One `make_stage` method per block and shortcut rule of the regular stages."""
        keys = list(dict.fromkeys((p.block, p.rule) for p in plans))
        out: dict[tuple[str, Rule], tuple[str, list[str]]] = {}
        names = Names(set())
        for block, rule in keys:
            name = names.get("make_stage" if len(keys) == 1 else f"make_{block}_stage")
            out[(block, rule)] = (name, make_stage_method(self, block, name, rule, self.block_out[block]))
            uses = self.slot_uses[block]
            if uses and uses[0].takes_downsample:
                self.uses_zero_pad |= rule.option is ShortcutOption.A
                self.uses_projection |= rule.option in (ShortcutOption.B, ShortcutOption.C)
        return out

    def block_arguments(self, inst: BlockInstance) -> tuple[list[str], list[str]]:
        """A use's arguments as Python: formals without a default positionally, then the others by
        keyword, leaving out what took or equals a constant default (the class works it out)."""
        template = self.ir.blocks[inst.definition]
        locals_ = self.locals_of(inst.definition)
        positional, keywords = [], []
        for f in template.formals:
            value = inst.args[f.name]
            if f.default is None:
                positional.append(literal(value))  # before every keyword (see block_class)
            elif f.name not in inst.defaulted:
                default = template.constant_defaults.get(f.name, _NO_DEFAULT)
                if default is _NO_DEFAULT or value != default or type(value) is not type(default):
                    keywords.append(f"{locals_[f.name]}={literal(value)}")
        return positional, keywords

    def stage_args(self, plan: StagePlan) -> str:
        """`64, blocks=3, stride=2`: the first block's arguments, as `call` writes them, and the count."""
        required, optional = self.block_arguments(plan.first)
        return ", ".join([*required, f"blocks={plan.count}", *optional])

    def module_literal(self, op: Op, in_shape: tuple[int, ...]) -> str:
        """The nn module of a stem or head op, with the graph's values (optable.py)."""
        a = op.attrs
        args = {
            name: kernel_literal(v) if name in ("kernel", "size") else str(v) if isinstance(v, tuple) else literal(v)
            for name, v in a.items()
        }
        how = behaviour(op.kind)
        if how.output_width is not None and how.flattens and a[how.output_width] == self.ir.classes:
            args[how.output_width] = "NUM_CLASSES"
        for name in how.float_args:
            if name in a:
                args[name] = repr(a[name])
        c_in = str(math.prod(in_shape)) if how.flattens else str(in_shape[0])
        module = module_text(op.kind, args, c_in, 2 if len(in_shape) > 1 else 1)
        if module is None:
            raise CodegenError(f"no module for {op.kind.value}")
        return module

    def top_ops(self, s: Section) -> list[Op]:
        return [self.ir.op(n) for n in s.nodes if self.ir.op(n).scope.block is None]

    # ---- the whole file
    def view(self, zero_init_default: bool) -> ModelView:
        self.collect()
        blocks = [self.block_class(b) for b in self.ir.blocks if b in self.instances]
        network = self.network()
        survival = []
        if self.survival_rule is not None and any(u.stochastic for us in self.slot_uses.values() for u in us):
            n, last = self.survival_rule
            survival = [
                f'"""Stochastic depth (Huang et al. 2016): unit l of {n} survives with p_l = 1 - l / {n} * (1 - {last!r})."""',
                f"return 1.0 - unit / {n} * (1.0 - {last!r})",
            ]
        for cls in blocks + [network]:
            cls.signature = [f"def __init__({', '.join(['self', *cls.signature])}) -> None:"]
        return ModelView(
            header=self.header(),
            input_shape="(" + ", ".join(str(d) for d in self.ir.input_shape) + ")",
            classes=self.ir.classes,
            uses_math=self.uses_math,
            uses_zero_pad=self.uses_zero_pad,
            uses_projection=self.uses_projection,
            survival=survival,
            helpers=[text for kind, text in HELPERS.items() if any(op.kind is kind for op in self.ir.ops())],
            blocks=blocks,
            network=network,
            zero_init_default=str(bool(zero_init_default)),
            zero_init_doc=(
                "`zero_init_residual` zeroes the last BN of every residual branch"
                if any(self.last_bns.values())
                else "it has no residual branch ending in a BN: `zero_init_residual` changes nothing"
            ),
        )

    def header(self) -> list[str]:
        ir, t = self.ir, self.ir.totals
        lines = [
            f"Generated by resdsl from {clean_comment(self.spec_path)}; a plain PyTorch file, yours to edit.",
            f"Network {clean_comment(ir.name)}: input {'x'.join(map(str, ir.input_shape))}, {ir.classes} classes, "
            f"shortcut option {ir.shortcut.value}.",
            f"{t.layers} layers, {t.params:,} parameters, {t.flops:,} FLOPs (multiply-adds) per image.",
        ]
        if ir.params_used:
            values = ", ".join(f"{p} = {clean_comment(literal(ir.params[p]))}" for p in ir.params_used)
            lines.append(f"Spec params (folded into the code below): {values}.")
        return lines


_NO_DEFAULT = object()


# ---------------------------------------------------------------- entry points


def prepare(ir: NetworkIR, spec_path: str, zero_init_residual: bool = False) -> ModelView:
    return Generator(ir, spec_path).view(zero_init_residual)


def render_model(ir: NetworkIR, spec_path: str | Path, zero_init_residual: bool = False) -> str:
    """The text of a standalone model.py for a checked IR."""
    from resdsl.backends.pytorch.templating import template_env

    view = prepare(ir, Path(spec_path).as_posix(), zero_init_residual)
    return format_python(template_env().get_template("model.py.j2").render(v=view))
