"""Checked IR -> a standalone PyTorch `model.py` (rendered by templates/model.py.j2).

The IR decides everything: which block definitions become classes, every layer's sizes, each
block instance's shortcut (identity, option A zero-pad or a projection) and its stochastic-depth
survival. This module turns those decisions into a view-model of Python source lines; the
template only lays them out. Block classes are written from the spec's block bodies: their
layer arguments are the spec's own expressions, translated to Python, so that one class serves
every use of the block (`BasicBlock(64, 128, stride=2)`).

Identifiers in the output come only from spec names the grammar accepted (letters, digits,
underscores), made safe against Python keywords and the file's own names, so no spec can inject
code; spec text copied into comments is stripped of control characters.
"""

from __future__ import annotations

import keyword
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from resdsl.diagnostics import ResdslError
from resdsl.ir.graph import BlockInstance, NetworkIR, Op, OpKind, Residual, Section
from resdsl.lang import syntax
from resdsl.lang.evaluate import Env, evaluate, source_text
from resdsl.lang.values import Size, Symbol

RESERVED = set(keyword.kwlist) | set(keyword.softkwlist) | {
    "self", "x", "out", "in_channels", "shortcut", "downsample", "survival", "plain", "torch", "nn", "F",
    "Tensor", "super", "int", "float", "bool", "str", "tuple", "range", "unit", "build_model",
}  # fmt: skip
MODULE_NAMES = {"ZeroPadShortcut", "projection", "survival_probability", "INPUT_SHAPE", "NUM_CLASSES"}
_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029\x85]")


class CodegenError(ResdslError):
    """The IR holds something the generator cannot write (a bug or an unsupported construct)."""

    def render(self) -> str:
        return f"error: cannot generate PyTorch code: {self}"


# ---------------------------------------------------------------- the view-model


@dataclass
class BlockClass:
    name: str
    cite: list[str]  # comment lines: where the block is defined, as written
    signature: list[str]  # __init__ parameters after self
    init: list[str]
    forward: list[str]


@dataclass
class ModelView:
    header: list[str]
    input_shape: str
    classes: int
    constants: list[str]
    uses_math: bool
    uses_zero_pad: bool
    uses_projection: bool
    survival: list[str]  # the stochastic-depth helper's body lines, or []
    blocks: list[BlockClass]
    network: BlockClass
    zero_init_default: str


# ---------------------------------------------------------------- names


def camel(name: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in name.split("_") if part) or "Block"


def safe_local(name: str) -> str:
    return name + "_" if name in RESERVED or keyword.iskeyword(name) else name


def clean_comment(text: str) -> str:
    return _CONTROL.sub(" ", text)


class Names:
    """Unique Python names: `taken` grows as names are handed out."""

    def __init__(self, taken: set[str]) -> None:
        self.taken = set(taken)

    def get(self, wanted: str) -> str:
        name = wanted if not keyword.iskeyword(wanted) else wanted + "_"
        while name in self.taken:
            name += "_"
        self.taken.add(name)
        return name


# ---------------------------------------------------------------- values and expressions


def literal(v: Any) -> str:
    """A Python literal for an evaluated spec value."""
    if isinstance(v, bool):
        return "True" if v else "False"
    if isinstance(v, Symbol) or isinstance(v, str):
        return '"' + str(v).replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, Size):
        return kernel_literal(v.dims)
    if isinstance(v, float):
        return repr(int(v)) if v.is_integer() and abs(v) < 1e15 else repr(v)
    if isinstance(v, list):
        return "[" + ", ".join(literal(i) for i in v) + "]"
    return repr(v)


def kernel_literal(dims: tuple[int, ...]) -> str:
    if len(set(dims)) == 1:
        return str(dims[0])
    return "(" + ", ".join(str(d) for d in dims) + ")"


_PY_OPS = {"and": "and", "or": "or"}
_FUNCS = {"min": "min", "max": "max", "int": "int", "round": "round", "floor": "math.floor", "ceil": "math.ceil"}


class Translator:
    """Spec expressions inside a block body -> Python expressions over the block's arguments."""

    def __init__(self, locals_: dict[str, str], globals_: dict[str, str], global_env: Env) -> None:
        self.locals = locals_  # formal -> Python local name
        self.globals = globals_  # param -> module constant name
        self.env = global_env
        self.used_globals: set[str] = set()
        self.uses_math = False

    def is_constant(self, e: syntax.Expr) -> bool:
        return not any(n in self.locals or n in self.globals for n in _names(e))

    def value(self, e: syntax.Expr) -> str:
        """A literal when the expression uses no argument or param, else its translation."""
        if self.is_constant(e):
            return literal(evaluate(e, self.env.child({})))
        return self.expr(e, top=True)

    def expr(self, e: syntax.Expr, top: bool = False) -> str:
        if isinstance(e, syntax.Number):
            return literal(e.value)
        if isinstance(e, (syntax.String, syntax.Bool)):
            return literal(e.value)
        if isinstance(e, syntax.SizeLit):
            return kernel_literal(e.dims)
        if isinstance(e, syntax.Name):
            if e.id in self.locals:
                return self.locals[e.id]
            if e.id in self.globals:
                self.used_globals.add(e.id)
                return self.globals[e.id]
            return literal(Symbol(e.id))
        if isinstance(e, syntax.ListExpr):
            return "[" + ", ".join(self.expr(i, True) for i in e.items) + "]"
        if isinstance(e, syntax.Call) and e.name in _FUNCS:
            self.uses_math |= e.name in ("floor", "ceil")
            return f"{_FUNCS[e.name]}(" + ", ".join(self.expr(a.value, True) for a in e.args) + ")"
        if isinstance(e, syntax.Unary):
            inner = self.expr(e.operand)
            text = f"not {inner}" if e.op == "not" else f"-{inner}"
            return text if top else f"({text})"
        if isinstance(e, syntax.BinOp) and e.op != "~=":
            text = f"{self.expr(e.left)} {_PY_OPS.get(e.op, e.op)} {self.expr(e.right)}"
            return text if top else f"({text})"
        if isinstance(e, syntax.Cond):
            then = self.expr(e.then, top=not isinstance(e.then, syntax.Cond))
            orelse = self.expr(e.orelse, top=True)
            text = f"{then} if {self.expr(e.test, top=True)} else {orelse}"
            return text if top else f"({text})"
        raise CodegenError(f"`{source_text(e)}` ({e.span}) cannot be written in Python inside a block")

    def whole(self, e: syntax.Expr) -> str:
        """A whole-number argument (channels, strides): `int(...)` where the spec divides."""
        text = self.value(e)
        if not self.is_constant(e) and _divides(e):
            return f"int({text})"
        return text


def _names(e: syntax.Expr) -> list[str]:
    if isinstance(e, syntax.Name):
        return [e.id]
    out: list[str] = []
    for child in vars(e).values():
        if isinstance(child, syntax.Expr):
            out += _names(child)
        elif isinstance(child, list):
            for item in child:
                if isinstance(item, syntax.Expr):
                    out += _names(item)
                elif isinstance(item, syntax.Arg):
                    out += _names(item.value)
    return out


def _divides(e: syntax.Expr) -> bool:
    if isinstance(e, syntax.BinOp) and e.op in ("/", "**"):
        return True
    if isinstance(e, syntax.Number) and isinstance(e.value, float):
        return True
    return any(_divides(c) for c in vars(e).values() if isinstance(c, syntax.Expr))


def paren(text: str) -> str:
    return text if re.fullmatch(r"[\w.]+", text) else f"({text})"


# ---------------------------------------------------------------- what the IR decided, per slot


@dataclass
class SlotUse:
    """What one residual/dense section of a block definition does across all its uses."""

    kind: str  # "add" | "concat"
    modes: set[str] = field(default_factory=set)  # "identity" | "pad" | "projection" | "none"
    survivals: set[float] = field(default_factory=set)

    @property
    def takes_downsample(self) -> bool:
        return bool(self.modes & {"pad", "projection"})

    @property
    def stochastic(self) -> bool:
        return any(p < 1.0 for p in self.survivals)

    @property
    def mixed_plain(self) -> bool:
        return "none" in self.modes and len(self.modes) > 1


def residual_mode(ir: NetworkIR, r: Residual) -> str:
    if r.kind == "concat":
        return "concat"
    if r.shortcut is None:
        return "none"
    return ir.op(r.shortcut).meta["shortcut"].mode


def instance_slots(ir: NetworkIR, inst: BlockInstance, by_node: dict[int, Residual]) -> list[Residual]:
    """The residual/dense sections inside one block use, outermost first, in spec order."""
    nodes = set(inst.nodes)
    found = {r.id: r for n in inst.nodes if (r := by_node.get(n)) is not None}
    rs = [r for r in found.values() if set(r.body) <= nodes]
    return sorted(rs, key=lambda r: (min(r.preact + r.body), -len(r.body)))


def residual_starts(ir: NetworkIR) -> dict[int, Residual]:
    """First node of each residual's preact+body -> the residual (outermost wins)."""
    out: dict[int, Residual] = {}
    for r in sorted(ir.residuals, key=lambda r: -len(r.body)):
        out.setdefault(min(r.preact + r.body), r)
    return out


# ---------------------------------------------------------------- generation


class Generator:
    def __init__(self, ir: NetworkIR, spec_path: str) -> None:
        self.ir = ir
        self.spec_path = spec_path
        self.global_env = Env(ir.params)
        names = Names(MODULE_NAMES | RESERVED)
        self.constants = {p: names.get(p.upper()) for p in ir.params}
        self.class_names: dict[str, str] = {}
        for bname in ir.blocks:
            wanted = camel(bname)
            self.class_names[bname] = names.get(wanted if wanted.endswith("Block") else wanted + "Block")
        self.network_class = names.get(camel(ir.name))
        self.by_start = residual_starts(ir)
        self.instances: dict[str, list[BlockInstance]] = {}
        self.slot_uses: dict[str, list[SlotUse]] = {}
        self.used_globals: set[str] = set()
        self.uses_math = False
        self.uses_zero_pad = False
        self.uses_projection = False
        self.unit_of: dict[int, int] = {}  # residual id -> stochastic-depth unit number (1-based)
        self.survival_rule = self._survival_rule()
        self.last_bns: dict[str, list[str]] = {}  # block class -> the last BN of each residual branch

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
                    use.modes.add(residual_mode(self.ir, r) if r.kind == "add" else "concat")
                    use.survivals.add(r.survival)
            self.slot_uses[name] = uses or []

    def in_channels(self, inst: BlockInstance) -> int:
        return self.ir.op(self.ir.inputs(inst.nodes[0])[0]).shape[0]

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
        bdef: syntax.BlockDef = self.ir.blocks[bname]
        uses = self.slot_uses[bname]
        locals_ = {f.name: safe_local(f.name) for f in bdef.formals}
        tr = Translator(locals_, self.constants, self.global_env)
        sample = self.instances[bname][0]
        signature = ["in_channels: int"]
        for f in bdef.formals:
            hint = _type_hint(sample.args.get(f.name))
            if f.default is None:
                signature.append(f"{locals_[f.name]}: {hint}")
            elif tr.is_constant(f.default):
                signature.append(f"{locals_[f.name]}: {hint} = {tr.value(f.default)}")
            else:
                signature.append(f"{locals_[f.name]}: {hint} | None = None")
        slot_params = self.slot_params(uses)
        if slot_params:
            signature.append("*")
            signature += [p for _, p in slot_params]
        body = BodyWriter(self, tr, uses)
        for f in bdef.formals:
            if f.default is not None and not tr.is_constant(f.default):
                name = locals_[f.name]
                body.init += [f"if {name} is None:", f"    {name} = {tr.value(f.default)}"]
        body.write(bdef.body, "in_channels", "x")
        for attr, _ in slot_params:
            body.init.append(f"self.{attr} = {attr}")
        body.init.append(f"self.out_channels = {body.channels}")
        self.used_globals |= tr.used_globals
        self.uses_math |= tr.uses_math
        cite = [
            f"{clean_comment(bdef.module or self.spec_path)}:{bdef.span.line}: "
            + clean_comment(bdef.span.source.line(bdef.span.line).strip())
        ]
        self.last_bns[self.class_names[bname]] = body.last_bns
        return BlockClass(self.class_names[bname], cite, signature, body.init, body.forward_lines())

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
            if use.mixed_plain:
                out.append((f"plain{suffix}", f"plain{suffix}: bool = False"))
        return out

    # ---- uses of blocks: constructor calls with the IR's values
    def call(self, inst: BlockInstance, in_channels: int, unit_var: str | None = None) -> tuple[str, int | None]:
        """`BasicBlock(64, 128, stride=2, downsample=projection(64, 128, stride=2))`, and the first
        stochastic-depth unit it uses through `unit_var` (None if its survival is written out)."""
        bdef: syntax.BlockDef = self.ir.blocks[inst.definition]
        args = [str(in_channels)]
        values: dict[str, Any] = {}
        for f in bdef.formals:
            value = inst.args[f.name]
            default = None
            if f.default is not None:
                try:
                    default = evaluate(f.default, self.global_env.child(values))
                except ResdslError:
                    default = None
            values[f.name] = value
            if f.default is None:
                args.append(literal(value))
            elif value != default or type(value) is not type(default):
                args.append(f"{safe_local(f.name)}={literal(value)}")
        uses = self.slot_uses[inst.definition]
        many = len(uses) > 1
        first_unit = None
        for i, (use, r) in enumerate(zip(uses, self.slots_of(inst)), start=1):
            suffix = str(i) if many else ""
            mode = residual_mode(self.ir, r) if r.kind == "add" else "concat"
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
            if use.mixed_plain and mode == "none":
                args.append(f"plain{suffix}=True")
        return f"{self.class_names[inst.definition]}({', '.join(args)})", first_unit

    def shortcut_module(self, r: Residual) -> str:
        plan = self.ir.op(r.shortcut).meta["shortcut"]
        stride = f", stride={plan.stride}" if plan.stride != 1 else ""
        if plan.mode == "pad":
            self.uses_zero_pad = True
            return f"ZeroPadShortcut({plan.in_channels}, {plan.out_channels}{stride})"
        self.uses_projection = True
        bn = "" if plan.bn else ", bn=False"
        return f"projection({plan.in_channels}, {plan.out_channels}{stride}{bn})"

    # ---- the network class
    def network(self) -> BlockClass:
        ir = self.ir
        init: list[str] = []
        forward: list[str] = []
        names = Names(set())
        relu_done = False
        kinds_count: dict[str, int] = {}
        for s in ir.sections:
            if s.kind != "stage":
                for op in self.top_ops(s):
                    base = _BASE.get(op.kind, op.kind.value)
                    kinds_count[base] = kinds_count.get(base, 0) + 1
        counters: dict[str, int] = {}
        fresh = False
        stage_no = 0
        for s in ir.sections:
            if s.kind == "stage":
                stage_no += 1
                attr = names.get(f"layer{stage_no}")
                init.append(f"# {clean_comment(s.name)}: {clean_comment(s.description)}")
                init += [f"self.{attr} = nn.Sequential("] + ["    " + line for line in self.stage_items(s)] + [")"]
                forward.append(f"x = self.{attr}(x)")
                fresh = False
                continue
            init.append(f"# {s.kind}")
            for item in self.section_items(s):
                if isinstance(item, BlockInstance):
                    attr = names.get(safe_local(item.definition))
                    init.append(f"self.{attr} = {self.call(item, self.in_channels(item))[0]}")
                    forward.append(f"x = self.{attr}(x)")
                    fresh = False
                    continue
                op = item
                if op.kind is OpKind.RELU:
                    if not relu_done:
                        init.append("self.relu = nn.ReLU(inplace=True)")
                        relu_done = True
                    forward.append("x = self.relu(x)" if fresh else "x = torch.relu(x)")
                    fresh = False  # ReLU's backward reads its output
                    continue
                attr = names.get(attr_name(_BASE[op.kind], kinds_count, counters))
                in_shape = op.meta["in_shapes"][0]
                init.append(f"self.{attr} = {_module_literal(op, in_shape)}")
                if op.kind is OpKind.FC and len(in_shape) > 1:
                    forward.append("x = torch.flatten(x, 1)")
                forward.append(f"x = self.{attr}(x)")
                fresh = op.kind is not OpKind.DROPOUT or fresh
        out_shape = ir.op(ir.output_node).shape
        if len(out_shape) > 1:
            forward.append("x = torch.flatten(x, 1)")
        forward.append("return x")
        init += self.init_weights_lines()
        signature = ["zero_init_residual: bool = False"]
        span = ir.span
        cite = [f"{clean_comment(self.spec_path)}:{span.line}: {clean_comment(span.source.line(span.line).strip())}"]
        return BlockClass(self.network_class, cite, signature, init, forward)

    def init_weights_lines(self) -> list[str]:
        lines = [
            "# He initialisation (fan_out, relu) for convolutions; BN weight 1, bias 0.",
            "for m in self.modules():",
            "    if isinstance(m, nn.Conv2d):",
            '        nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")',
            "    elif isinstance(m, nn.BatchNorm2d):",
            "        nn.init.ones_(m.weight)",
            "        nn.init.zeros_(m.bias)",
        ]
        zero = [(cls, bns) for cls, bns in self.last_bns.items() if bns]
        if zero:
            lines += [
                "if zero_init_residual:",
                "    # The last BN of each residual branch starts at 0: every block starts as an identity.",
                "    for m in self.modules():",
            ]
            for i, (cls, bns) in enumerate(zero):
                lines.append(f"        {'if' if i == 0 else 'elif'} isinstance(m, {cls}):")
                lines += [f"            nn.init.zeros_(m.{bn}.weight)" for bn in bns]
        return lines

    def top_ops(self, s: Section) -> list[Op]:
        return [self.ir.op(n) for n in s.nodes if self.ir.op(n).scope.block is None]

    def section_items(self, s: Section) -> list[Op | BlockInstance]:
        items: list[Op | BlockInstance] = []
        seen: set[int] = set()
        for n in s.nodes:
            op = self.ir.op(n)
            if op.scope.block is None:
                items.append(op)
            elif op.scope.block not in seen:
                seen.add(op.scope.block)
                items.append(s.blocks[op.scope.block])
        return items

    def stage_items(self, s: Section) -> list[str]:
        """One line per run of equal block uses: `*(BasicBlock(16, 16) for _ in range(17)),`;
        a run whose survival follows the linear rule loops over its units."""
        uses = []
        for inst in s.blocks:
            in_c = self.in_channels(inst)
            looped, unit = self.call(inst, in_c, unit_var="unit")
            uses.append((looped, unit, self.call(inst, in_c)[0]))
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
                lines += _generator(text, f"for unit in range({span})")
            else:
                lines += _generator(text, f"for _ in range({count})")
            i = j
        return lines

    # ---- the whole file
    def view(self, zero_init_default: bool) -> ModelView:
        self.collect()
        blocks = [self.block_class(b) for b in self.ir.blocks if b in self.instances]
        network = self.network()
        constants = [
            f"{self.constants[p]} = {literal(self.ir.params[p])}" for p in self.ir.params if p in self.used_globals
        ]
        survival = []
        if self.survival_rule is not None and any(u.stochastic for us in self.slot_uses.values() for u in us):
            n, last = self.survival_rule
            survival = [
                f'"""Stochastic depth (Huang et al. 2016): unit l of {n} survives with p_l = 1 - l / {n} * (1 - {last!r})."""',
                f"return 1.0 - unit / {n} * (1.0 - {last!r})",
            ]
        for cls in blocks + [network]:
            finish(cls)
        return ModelView(
            header=self.header(),
            input_shape="(" + ", ".join(str(d) for d in self.ir.input_shape) + ")",
            classes=self.ir.classes,
            constants=constants,
            uses_math=self.uses_math,
            uses_zero_pad=self.uses_zero_pad,
            uses_projection=self.uses_projection,
            survival=survival,
            blocks=blocks,
            network=network,
            zero_init_default=str(bool(zero_init_default)),
        )

    def header(self) -> list[str]:
        ir, t = self.ir, self.ir.totals
        lines = [
            f"Generated by resdsl from {clean_comment(self.spec_path)}: edit the spec, not this file.",
            f"Network {clean_comment(ir.name)}: input {'x'.join(map(str, ir.input_shape))}, {ir.classes} classes, "
            f"shortcut option {ir.shortcut.value}.",
            f"{t['layers']} layers, {t['params']:,} parameters, {t['flops']:,} FLOPs (multiply-adds) per image.",
        ]
        if ir.params:
            values = ", ".join(f"{p} = {clean_comment(literal(v))}" for p, v in ir.params.items())
            lines.append(f"Spec params: {values}.")
        return lines


def finish(cls: BlockClass) -> None:
    """Lay out a class's lines as ruff would: the def line wrapped, long calls split."""
    cls.signature = def_lines(["self", *cls.signature], indent=4)
    cls.init = [out for line in cls.init for out in wrap_indented(line, 8)]
    cls.forward = [out for line in cls.forward for out in wrap_indented(line, 8)]


def def_lines(params: list[str], indent: int) -> list[str]:
    one = f"def __init__({', '.join(params)}) -> None:"
    if indent + len(one) <= 88:
        return [one]
    inner = ", ".join(params)
    if indent + 4 + len(inner) <= 88:
        return ["def __init__(", "    " + inner, ") -> None:"]
    return ["def __init__("] + ["    " + p + "," for p in params] + [") -> None:"]


def wrap_indented(line: str, indent: int) -> list[str]:
    stripped = line.lstrip(" ")
    lead = " " * (len(line) - len(stripped))
    return [lead + part for part in wrap_call(stripped, indent + len(lead))]


def _generator(call: str, loop: str) -> list[str]:
    """`*(call for ...),` on one line, or as ruff splits it when it is too long for a stage."""
    one = f"*({call} {loop}),"
    if 12 + len(one) <= 88:
        return [one]
    return ["*(", *("    " + line for line in wrap_call(call, 16)), f"    {loop}", "),"]


def _type_hint(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "int" if value.is_integer() else "float"
    if isinstance(value, str):
        return "str"
    if isinstance(value, Size):
        return "int | tuple[int, int]"
    return "object"


_BASE = {
    OpKind.CONV: "conv",
    OpKind.BN: "bn",
    OpKind.MAXPOOL: "maxpool",
    OpKind.AVGPOOL: "avgpool",
    OpKind.GLOBAL_AVGPOOL: "avgpool",
    OpKind.FC: "fc",
    OpKind.DROPOUT: "dropout",
}


def attr_name(base: str, totals: dict[str, int], counters: dict[str, int]) -> str:
    """torchvision's names: conv1, bn1, ... always numbered; maxpool, avgpool, fc, dropout only
    when their scope (a class) has several."""
    counters[base] = counters.get(base, 0) + 1
    if base in ("conv", "bn") or totals.get(base, 0) > 1:
        return f"{base}{counters[base]}"
    return base


def _module_literal(op: Op, in_shape: tuple[int, ...]) -> str:
    """The nn module of an op with the IR's concrete values (network-level ops)."""
    a = op.attrs
    k = op.kind
    if k is OpKind.CONV:
        return _conv(str(in_shape[0]), str(a["channels"]), kernel_literal(a["kernel"]), str(a["stride"]),
                     str(a["pad"]), a["bias"], str(a["groups"]))  # fmt: skip
    if k is OpKind.BN:
        return f"nn.BatchNorm2d({in_shape[0]})"
    if k is OpKind.FC:
        n = 1
        for d in in_shape:
            n *= d
        return f"nn.Linear({n}, {a['out']}" + ("" if a["bias"] else ", bias=False") + ")"
    if k in (OpKind.MAXPOOL, OpKind.AVGPOOL):
        return _pool(k, kernel_literal(a["kernel"]), str(a["stride"]), str(a["pad"]))
    if k is OpKind.GLOBAL_AVGPOOL:
        return "nn.AdaptiveAvgPool2d(1)"
    if k is OpKind.DROPOUT:
        return f"nn.Dropout({a['p']!r})"
    raise CodegenError(f"no module for {k.value}")


def _conv(c_in: str, c_out: str, kernel: str, stride: str, pad: str, bias: bool, groups: str) -> str:
    args = [c_in, c_out, kernel]
    if stride != "1":
        args.append(f"stride={stride}")
    if pad != "0":
        args.append(f"padding={pad}")
    if groups != "1":
        args.append(f"groups={groups}")
    if not bias:
        args.append("bias=False")
    return f"nn.Conv2d({', '.join(args)})"


def _pool(kind: OpKind, kernel: str, stride: str, pad: str) -> str:
    """PyTorch's stride defaults to the kernel, as resdsl's does for square kernels."""
    cls = "nn.MaxPool2d" if kind is OpKind.MAXPOOL else "nn.AvgPool2d"
    args = [kernel]
    square = not kernel.startswith("(")
    if stride != kernel or not square:
        args.append(f"stride={stride}")
    if pad != "0":
        args.append(f"padding={pad}")
    return f"{cls}({', '.join(args)})"


# ---------------------------------------------------------------- block bodies


class BodyWriter:
    """Walks a block's statements: __init__ lines (modules) and forward lines (their use)."""

    def __init__(self, gen: Generator, tr: Translator, uses: list[SlotUse]) -> None:
        self.gen = gen
        self.tr = tr
        self.uses = uses
        self.many = len(uses) > 1
        self.slot = 0
        self.init: list[str] = []
        self.forward: list[str] = []
        self.indent = 0
        self.counters: dict[str, int] = {}
        self.totals: dict[str, int] = {}
        self.relu_done = False
        self.channels = "in_channels"
        self.cur = "x"
        # May `cur` be modified in place? Never the block's input, nor a tensor autograd keeps
        # (a ReLU's output), nor one that may alias another (dropout at test time, a block's output).
        self.fresh = False
        self.depth = 0
        self.last_bns: list[str] = []
        self.names = Names(set())
        self.last_bn: str | None = None

    def emit(self, line: str) -> None:
        self.forward.append("    " * self.indent + line)

    def forward_lines(self) -> list[str]:
        return self.forward + [f"return {self.cur}"]

    def write(self, stmts: list[syntax.Stmt], channels: str, cur: str) -> None:
        self.totals = _kind_totals(stmts, self.gen.ir.blocks)
        self.channels, self.cur = channels, cur
        self.body(stmts)

    def body(self, stmts: list[syntax.Stmt]) -> None:
        for stmt in stmts:
            if isinstance(stmt, syntax.OpStmt):
                self.op(stmt)
            elif isinstance(stmt, syntax.InvokeStmt):
                self.invoke(stmt.call)
            elif isinstance(stmt, syntax.SectionStmt):
                self.section(stmt)

    def assign(self, expr: str, fresh: bool) -> None:
        self.emit(f"out = {expr}")
        self.cur, self.fresh = "out", fresh

    def op(self, stmt: syntax.OpStmt) -> None:
        from resdsl.ir.lower import OPS

        name = stmt.name
        sig = OPS[name]
        given: dict[str, syntax.Expr] = {}
        positional = [a for a in stmt.args if a.name is None]
        for p, a in zip(sig.positional, positional):
            given[p.name] = a.value
        for a in stmt.args:
            if a.name is not None:
                given[a.name] = a.value
        defaults = {p.name: p.default for p in sig.params()}
        tr = self.tr

        def arg(key: str, whole: bool = True) -> str:
            if key in given:
                return tr.whole(given[key]) if whole else tr.value(given[key])
            return literal(defaults[key])

        if name == "relu":
            if not self.relu_done:
                self.init.append("self.relu = nn.ReLU(inplace=True)")
                self.relu_done = True
            # ReLU's backward reads its output: nothing may change that output in place afterwards.
            self.assign(f"self.relu({self.cur})" if self.fresh else f"torch.relu({self.cur})", False)
            return
        if name == "conv":
            kernel = arg("kernel")
            pad = arg("pad") if "pad" in given else _half(kernel, given.get("kernel"), tr)
            attr = self.attr("conv")
            bias = arg("bias", whole=False)
            module = _conv(self.channels, arg("channels"), kernel, arg("stride"), pad, True, arg("groups"))
            if bias != "True":
                module = module[:-1] + f", bias={bias})"
            self.init.append(f"self.{attr} = {module}")
            self.channels = arg("channels")
        elif name == "bn":
            attr = self.attr("bn")
            self.init.append(f"self.{attr} = nn.BatchNorm2d({self.channels})")
            self.last_bn = attr
        elif name in ("maxpool", "avgpool"):
            if "kernel" in given and isinstance(given["kernel"], syntax.Name) and given["kernel"].id == "global":
                attr = self.attr("avgpool")
                self.init.append(f"self.{attr} = nn.AdaptiveAvgPool2d(1)")
            else:
                kernel = arg("kernel")
                stride = arg("stride") if "stride" in given else _first(kernel)
                kind = OpKind.MAXPOOL if name == "maxpool" else OpKind.AVGPOOL
                attr = self.attr(name)
                self.init.append(f"self.{attr} = {_pool(kind, kernel, stride, arg('pad'))}")
        elif name == "fc":
            raise CodegenError("`fc` inside a block is not supported by the code generator; put it in the head")
        elif name == "dropout":
            attr = self.attr("dropout")
            self.init.append(f"self.{attr} = nn.Dropout({arg('p', whole=False)})")
            self.assign(f"self.{attr}({self.cur})", self.fresh)
            return
        else:
            raise CodegenError(f"no code for op `{name}`")
        self.assign(f"self.{attr}({self.cur})", True)

    def attr(self, base: str) -> str:
        return self.names.get(attr_name(base, self.totals, self.counters))

    def invoke(self, call: syntax.Call) -> None:
        """A block used inside a block: its arguments are translated, its slots passed through."""
        bdef = self.gen.ir.blocks[call.name]
        cls = self.gen.class_names[call.name]
        args = [self.channels]
        positional = [a for a in call.args if a.name is None]
        args += [self.tr.whole(a.value) for a in positional[: len(bdef.formals)]]
        for a in call.args:
            if a.name is not None and a.name != "shortcut":
                args.append(f"{safe_local(a.name)}={self.tr.whole(a.value)}")
        callee_uses = self.gen.slot_uses.get(call.name, [])
        callee_many = len(callee_uses) > 1
        for i in range(1, len(callee_uses) + 1):
            use = self.uses[self.slot + i - 1]  # what this block's own uses need passed on
            mine = self.slot_suffix(self.slot + i - 1)
            theirs = str(i) if callee_many else ""
            if use.takes_downsample:
                args.append(f"downsample{theirs}=downsample{mine}")
            if use.stochastic:
                args.append(f"survival{theirs}=survival{mine}")
            if use.mixed_plain:
                args.append(f"plain{theirs}=plain{mine}")
        self.slot += len(callee_uses)
        attr = self.names.get(safe_local(call.name))
        self.init.append(f"self.{attr} = {cls}({', '.join(args)})")
        self.assign(f"self.{attr}({self.cur})", False)
        self.channels = f"self.{attr}.out_channels"

    def slot_suffix(self, index: int) -> str:
        return str(index + 1) if self.many else ""

    def section(self, stmt: syntax.SectionStmt) -> None:
        use = self.uses[self.slot]
        suffix = self.slot_suffix(self.slot)
        self.slot += 1
        self.depth += 1
        x = "x" if self.depth == 1 else f"x{self.depth}"
        sc = "shortcut" if self.depth == 1 else f"shortcut{self.depth}"
        if self.cur != x:
            self.emit(f"{x} = {self.cur}")
        self.cur, self.fresh = x, False
        in_channels = self.channels
        body = list(stmt.body)
        preact = body.pop(0) if body and isinstance(body[0], syntax.SectionStmt) and body[0].name == "preact" else None
        if stmt.name == "dense":
            self.body(body)
            self.assign(f"torch.cat([{x}, {self.cur}], 1)", True)
            self.channels = f"{paren(in_channels)} + {paren(self.channels)}"
            self.depth -= 1
            return
        if preact is not None:
            self.body(preact.body)
        plain_only = use.modes == {"none"}
        shortcut = x
        if use.takes_downsample:
            source = self.cur if preact is not None else x
            if preact is not None and {"pad", "projection"} <= use.modes:
                self.emit(f"if isinstance(self.downsample{suffix}, ZeroPadShortcut):")
                self.emit(f"    source = {x}")
                self.emit("else:")
                self.emit(f"    source = {self.cur}")
                source = "source"
            elif preact is not None and "pad" in use.modes:
                source = x
            self.emit(f"{sc} = {x} if self.downsample{suffix} is None else self.downsample{suffix}({source})")
            shortcut = sc
        self.last_bn = None
        if use.stochastic:
            self.emit(f"if self.training and torch.rand(1).item() >= self.survival{suffix}:")
            self.emit(f"    out = {shortcut}  # stochastic depth: this batch skips the residual branch")
            self.emit("else:")
            self.indent += 1
        self.body(body)
        if self.last_bn and self.last_bn not in self.last_bns:
            self.last_bns.append(self.last_bn)
        if use.stochastic:
            self.emit("if not self.training:")
            self.emit(f"    out = out * self.survival{suffix}  # test time: the branch's expected share")
        if not plain_only:
            add = f"out += {shortcut}" if self.fresh else f"out = {self.cur} + {shortcut}"
            if use.mixed_plain:
                self.emit(f"if not self.plain{suffix}:")
                self.emit("    " + add)
            else:
                self.emit(add)
        if use.stochastic:
            self.indent -= 1
            self.fresh = False
        elif not plain_only:
            self.fresh = True
        self.cur = "out"
        self.depth -= 1


def _kind_totals(stmts: list[syntax.Stmt], blocks: dict[str, syntax.BlockDef]) -> dict[str, int]:
    """How many ops of each kind a block body writes itself (for numbering)."""
    totals: dict[str, int] = {}

    def walk(body: list[syntax.Stmt]) -> None:
        for s in body:
            if isinstance(s, syntax.OpStmt):
                totals[s.name] = totals.get(s.name, 0) + 1
            elif isinstance(s, syntax.SectionStmt):
                walk(s.body)

    walk(stmts)
    return totals


def _half(kernel: str, expr: syntax.Expr | None, tr: Translator) -> str:
    """The default padding: half the kernel (its height), as lowering computes it."""
    if expr is None or tr.is_constant(expr):
        first = int(_first(kernel))
        return str(first // 2)
    return f"{paren(kernel)} // 2"


def _first(kernel: str) -> str:
    return kernel[1:].split(",")[0] if kernel.startswith("(") else kernel


# ---------------------------------------------------------------- entry points


def prepare(ir: NetworkIR, spec_path: str, zero_init_residual: bool = False) -> ModelView:
    return Generator(ir, spec_path).view(zero_init_residual)


def render_model(ir: NetworkIR, spec_path: str | Path, zero_init_residual: bool = False) -> str:
    """The text of a standalone model.py for a checked IR."""
    from resdsl.backends.pytorch.templating import template_env

    env = template_env()
    view = prepare(ir, Path(spec_path).as_posix(), zero_init_residual)
    return env.get_template("model.py.j2").render(v=view)


def wrap_call(line: str, indent: int, width: int = 88) -> list[str]:
    """A line as ruff would format it: unchanged if it fits, else its outermost call's
    arguments on their own lines with a trailing comma."""
    if indent + len(line) <= width:
        return [line]
    open_at = line.find("(")
    if open_at < 0 or not line.endswith(")") and not line.endswith("),"):
        return [line]
    tail = line[line.rfind(")") :]
    inner = line[open_at + 1 : line.rfind(")")]
    parts = _split_args(inner)
    if indent + 4 + len(", ".join(parts)) <= width:
        return [line[: open_at + 1], "    " + ", ".join(parts), tail]
    return [line[: open_at + 1]] + ["    " + p + "," for p in parts] + [tail]


def _split_args(text: str) -> list[str]:
    parts, depth, start = [], 0, 0
    quote = ""
    for i, ch in enumerate(text):
        if quote:
            if ch == quote:
                quote = ""
            continue
        if ch in "\"'":
            quote = ch
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(text[start:i].strip())
            start = i + 1
    parts.append(text[start:].strip())
    return [p for p in parts if p]


# ---------------------------------------------------------------- verification (imports torch)


def load_module(source: str, name: str = "resdsl_generated_model"):
    """Execute generated source as a fresh module."""
    import types

    module = types.ModuleType(name)
    module.__file__ = f"<{name}>"
    exec(compile(source, module.__file__, "exec"), module.__dict__)
    return module


def measure_model(model, input_shape: tuple[int, ...], stage_names: list[str]) -> dict[str, Any]:
    """Parameter count, stage output shapes, stem output shape, output shape and the MACs of every
    conv and linear layer, from one forward pass of a batch of 1 (meta tensors work)."""
    import torch
    from torch import nn

    shapes: dict[str, tuple[int, ...]] = {}
    macs = [0]
    hooks = []

    def count(module, inputs, output) -> None:
        if isinstance(module, nn.Conv2d):
            kh, kw = module.kernel_size
            macs[0] += output[0].numel() * (module.in_channels // module.groups) * kh * kw
        elif isinstance(module, nn.Linear):
            macs[0] += module.in_features * module.out_features

    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            hooks.append(m.register_forward_hook(count))
    for name in stage_names:
        stage = getattr(model, name)
        hooks.append(
            stage.register_forward_hook(lambda m, i, o, name=name: shapes.__setitem__(name, tuple(o.shape[1:])))
        )
    if stage_names:
        first = getattr(model, stage_names[0])
        hooks.append(first.register_forward_pre_hook(lambda m, i: shapes.__setitem__("<stem>", tuple(i[0].shape[1:]))))
    device = next(model.parameters()).device
    model.eval()
    with torch.no_grad():
        out = model(torch.zeros((1, *input_shape), device=device))
    for h in hooks:
        h.remove()
    return {
        "params": sum(p.numel() for p in model.parameters()),
        "shapes": shapes,
        "output": tuple(out.shape[1:]),
        "macs": macs[0],
    }


def verify_model(ir: NetworkIR, source: str) -> list[str]:
    """Build the generated module on the meta device and compare it with the IR: parameter
    count, each stage's output shape, the output shape and the FLOPs. Returns the mismatches."""
    import torch

    stages = [s for s in ir.sections if s.kind == "stage"]
    names = [f"layer{i}" for i in range(1, len(stages) + 1)]
    try:
        module = load_module(source)
        with torch.device("meta"):
            model = module.build_model()
        got = measure_model(model, ir.input_shape, names)
    except Exception as err:  # noqa: BLE001 - any failure of generated code is the generator's bug
        return [f"the generated module fails to build or run: {type(err).__name__}: {err}"]
    problems = []
    if got["params"] != ir.totals["params"]:
        problems.append(f"parameters: the module has {got['params']:,}, the IR {ir.totals['params']:,}")
    for name, s in zip(names, stages):
        want = ir.op(s.nodes[-1]).shape
        if got["shapes"].get(name) != want:
            problems.append(f"stage {s.name} ({name}): the module gives {got['shapes'].get(name)}, the IR {want}")
    sections = ir.sections
    if stages and sections[0].kind == "stem" and sections[0].nodes:
        want = ir.op(sections[0].nodes[-1]).shape
        if got["shapes"].get("<stem>") != want:
            problems.append(f"stem: the module gives {got['shapes'].get('<stem>')}, the IR {want}")
    if got["output"] != (ir.classes,):
        problems.append(f"output: the module gives {got['output']}, the IR ({ir.classes},)")
    if got["macs"] != ir.totals["flops"]:
        problems.append(f"FLOPs: the module's convs and linears do {got['macs']:,}, the IR {ir.totals['flops']:,}")
    return problems
