"""Syntax tree -> graph IR: evaluates params and arguments, expands blocks and stages into ops."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import networkx as nx

from resdsl.diagnostics import Note, Span, SpecError, collect, did_you_mean
from resdsl.ir.expect import expectation
from resdsl.ir.graph import (
    BlockInstance,
    Expectation,
    NetworkIR,
    Op,
    OpKind,
    Residual,
    Role,
    Scope,
    Section,
    ShortcutOption,
    residual_units,
)
from resdsl.ir.params import evaluate_params
from resdsl.ir.settings import NETWORK_SETTINGS, check_shortcut, network_settings
from resdsl.ir.template import CallItem, Item, OpItem, ResidualItem
from resdsl.ir.templating import Templates
from resdsl.lang import syntax
from resdsl.lang.evaluate import Env, evaluate, source_text, unknown_name
from resdsl.lang.expr import names_in
from resdsl.lang.imports import Program
from resdsl.lang.signatures import (
    OPS,
    SECTIONS_IN_BODY,
    Param,
    Signature,
    _positive,
    bind,
    evaluate_binding,
    whole_hint,
)
from resdsl.lang.values import Value, describe

MAX_OPS = 200_000  # resource guard: a spec expanding past this is refused before it is built
MAX_CHANNELS = 1 << 20
MAX_CALL_DEPTH = 50  # blocks calling blocks; lowering recurses once per level


# ---------------------------------------------------------------- the builder


class _TooBig(Exception):
    pass


@dataclass
class _Ctx:
    section: Section
    shortcut: ShortcutOption
    block: int | None = None
    block_stack: list[syntax.BlockDef] = field(default_factory=list)
    instance: BlockInstance | None = None
    notes: list[Note] = field(default_factory=list)


class Builder:
    def __init__(self, program: Program, params: dict[str, Value], errors: list[SpecError]) -> None:
        self.program = program
        self.params = params
        self.globals = Env(params)
        self.errors = errors
        self.graph = nx.DiGraph()
        self.current = -1
        self.residual: int | None = None
        self.residuals: list[Residual] = []
        self.residual_ids = 0  # ids in opening order, so a nested residual never shares its outer's
        self.instances: list[BlockInstance] = []
        self.projection_bn = True
        self._sizes: dict[str, int] = {}
        self._scopes: dict[tuple, Scope] = {}  # Scope is frozen: one object per (section, block)
        self.overridden: dict[str, Value] = {}  # params given by --set
        self.templates = Templates(program, params)

    def set_note(self, expr: syntax.Expr) -> str | None:
        """`n is 0 from --set n=0`, when an expression uses a param given on the command line."""
        used = [n for n in names_in(expr) if n in self.overridden]
        if not used:
            return None
        return "from the command line: " + ", ".join(f"--set {n}={self.overridden[n]}" for n in dict.fromkeys(used))

    # nodes
    def emit(
        self,
        kind: OpKind,
        attrs: dict[str, Any],
        span: Span,
        ctx: _Ctx | None,
        inputs: list[int] | None = None,
        role: Role = Role.MAIN,
    ) -> int:
        node = self.graph.number_of_nodes()
        if node >= MAX_OPS:
            raise _TooBig()
        key = (ctx.section.name, ctx.section.kind, ctx.block) if ctx else ("input", "input", None)
        scope = self._scopes.get(key)
        if scope is None:
            scope = self._scopes[key] = Scope(*key)
        self.graph.add_node(node, op=Op(node, kind, attrs, span, scope, role, self.residual))
        for port, src in enumerate(self.current_inputs(inputs)):
            self.graph.add_edge(src, node, port=port)
        if ctx:
            ctx.section.nodes.append(node)
            for inst in self._open_instances(ctx):
                inst.nodes.append(node)
        if role is Role.MAIN:
            self.current = node
        return node

    def current_inputs(self, inputs: list[int] | None) -> list[int]:
        if inputs is not None:
            return inputs
        return [self.current] if self.current >= 0 else []

    def _open_instances(self, ctx: _Ctx) -> list[BlockInstance]:
        out, inst = [], ctx.instance
        while inst is not None:
            out.append(inst)
            inst = getattr(inst, "_parent", None)
        return out

    def error(self, message: str, span: Span | None, hint: str | None = None, ctx: _Ctx | None = None) -> None:
        self.errors.append(SpecError(message, span, hint, list(ctx.notes) if ctx else None))

    # bodies (templates: resdsl.ir.template)
    def body(self, items: list[Item], env: Env, ctx: _Ctx) -> None:
        for item in items:
            if isinstance(item, OpItem):
                self.op(item, env, ctx)
            elif isinstance(item, CallItem):
                self.invoke(item.call, env, ctx, {})
            elif isinstance(item, ResidualItem):
                self.residual_section(item, env, ctx)
            else:
                for err in item.errors:
                    self.errors.append(SpecError(err.message, err.span, err.hint, err.notes + ctx.notes))

    def op(self, item: OpItem, env: Env, ctx: _Ctx) -> None:
        attrs = evaluate_binding(item.binding, env, self.errors)  # located at the argument: no notes
        if attrs is not None:
            attrs = self._derived(item, attrs, env)
        if attrs is None:
            return
        kind = item.kind
        if kind is OpKind.CONV:
            if attrs["channels"] > MAX_CHANNELS:
                self.error(
                    f"{attrs['channels']:,} channels is more than the limit of {MAX_CHANNELS:,}",
                    item.binding.slots[1].expr.span,
                    ctx=ctx,
                )
                return
            if attrs["channels"] % attrs["groups"]:
                self.error(
                    f"{attrs['channels']} channels do not split into {attrs['groups']} groups", item.span, ctx=ctx
                )
                return
        if kind is OpKind.AVGPOOL and attrs["kernel"] == "global":
            kind, attrs = OpKind.GLOBAL_AVGPOOL, {}
        elif kind is OpKind.GLOBAL_AVGPOOL:
            attrs = {}
        self.emit(kind, attrs, item.span, ctx)

    def _derived(self, item: OpItem, attrs: dict[str, Any], env: Env) -> dict[str, Any] | None:
        """Defaults that follow from other arguments (a conv's padding, a pool's stride), as the
        template writes them, checked like given values."""
        for slot in item.binding.slots:
            name = slot.param.name
            if attrs.get(name) is not None or name not in item.args or slot.expr is not None:
                continue
            if item.kind is OpKind.AVGPOOL and attrs["kernel"] == "global":
                continue
            try:
                value = slot.param.check(evaluate(item.args[name], env))
            except SpecError:
                value = None
            if value is None:
                self.errors.append(
                    SpecError(
                        f"`{item.op}` cannot work out its `{name}` from a kernel given through a block argument",
                        item.span,
                        f"give `{name}:` explicitly, or pass the kernel as a single number",
                    )
                )
                return None
            attrs[name] = value
        return attrs

    def residual_section(self, item: ResidualItem, env: Env, ctx: _Ctx) -> None:
        kind = item.kind
        name = "residual" if kind == "add" else "dense"
        opts = evaluate_binding(item.options, env, self.errors)
        if opts is None or self.current < 0:
            if self.current < 0:
                self.error(f"`{name}` needs an input: it cannot come first", item.name_span, ctx=ctx)
            return
        option = opts.get("shortcut") or ctx.shortcut
        rid = self.residual_ids
        self.residual_ids += 1
        outer, self.residual = self.residual, rid
        x = self.current
        preact: list[int] = []
        mark = self.graph.number_of_nodes()
        if item.preact is not None:
            if item.preact_error is not None:
                err = item.preact_error
                self.errors.append(SpecError(err.message, err.span, err.hint, list(ctx.notes)))
            self.body(item.preact, env, ctx)
            preact = list(range(mark, self.graph.number_of_nodes()))
        preact_out = self.current
        mark = self.graph.number_of_nodes()
        self.body(item.body, env, ctx)
        body_nodes = list(range(mark, self.graph.number_of_nodes()))
        self.residual = outer
        if not body_nodes:
            self.error(f"`{name}` has an empty body", item.span, ctx=ctx)
            return
        body_out = self.current
        shortcut = merge = None
        if kind == "concat":
            merge = self.emit(OpKind.CONCAT, {}, item.name_span, ctx, [x, body_out])
        elif option is not ShortcutOption.NONE:
            sources = [x, preact_out] if preact else [x]
            shortcut = self.emit(
                OpKind.SHORTCUT,
                {"option": option, "projection_bn": self.projection_bn},
                item.name_span,
                ctx,
                sources,
                Role.SHORTCUT,
            )
            self.graph.nodes[shortcut]["op"].residual = rid
            merge = self.emit(OpKind.ADD, {}, item.name_span, ctx, [body_out, shortcut])
        survival = opts.get("survival")
        self.residuals.append(
            Residual(
                id=rid,
                kind=kind,
                option=option if kind == "add" else ShortcutOption.NONE,
                projection_bn=self.projection_bn,
                input=x,
                preact=preact,
                body=body_nodes,
                shortcut=shortcut,
                merge=merge,
                survival=survival if survival is not None else -1.0,
                span=item.span,
            )
        )
        if merge is not None:
            self.graph.nodes[merge]["op"].residual = rid

    def invoke(
        self, call: syntax.Call, env: Env, ctx: _Ctx, overrides: dict[str, Value], index: int | None = None
    ) -> None:
        bdef = self.program.blocks.get(call.name)
        if bdef is None:
            if call.name in OPS:
                self.error(
                    f"`{call.name}` is an op, not a block: write it without parentheses",
                    call.name_span,
                    f"e.g. `{OPS[call.name].example or call.name}`",
                    ctx,
                )
            else:
                self.error(
                    f"unknown block `{call.name}`",
                    call.name_span,
                    did_you_mean(call.name, self.program.blocks) or _known_blocks(self.program),
                    ctx,
                )
            return
        if bdef in ctx.block_stack:
            chain = " -> ".join(b.name for b in ctx.block_stack[ctx.block_stack.index(bdef) :] + [bdef])
            self.error(
                f"block `{bdef.name}` uses itself: {chain}",
                call.name_span,
                "blocks cannot be recursive; repeat them in a stage with `* n`",
                ctx,
            )
            return
        if len(ctx.block_stack) >= MAX_CALL_DEPTH:
            chain = " -> ".join(b.name for b in ctx.block_stack[:3]) + " -> ... -> " + bdef.name
            self.error(
                f"blocks call blocks more than {MAX_CALL_DEPTH} levels deep ({chain})",
                call.name_span,
                "flatten the chain of blocks",
                ctx,
            )
            return
        size = self.static_ops(bdef)
        if self.graph.number_of_nodes() + size > MAX_OPS:
            raise SpecError(
                f"`{source_text(call)}` expands to {size:,} ops; the limit is {MAX_OPS:,}",
                call.span,
                "blocks that call blocks multiply their sizes; call fewer of them",
            )
        bound = self.bind_block(bdef, call, env, ctx, overrides)
        if bound is None:
            return
        args, shortcut, defaulted = bound
        inst = BlockInstance(
            bdef.name, args, call.span, bdef.span, index if index is not None else len(ctx.section.blocks)
        )
        inst.defaulted = defaulted
        parent = ctx.instance
        inst._parent = parent  # type: ignore[attr-defined]
        if parent is None:
            ctx.section.blocks.append(inst)
        else:
            parent.children.append(inst)
        self.instances.append(inst)
        inst.shortcut = shortcut
        sub = _Ctx(
            ctx.section,
            shortcut or ctx.shortcut,
            ctx.block if parent is not None else len(ctx.section.blocks) - 1,
            ctx.block_stack + [bdef],
            inst,
            ctx.notes + [Note(f"in block `{bdef.name}` used here", call.span)],
        )
        self.body(self.templates.block(bdef.name).body, self.globals.child(args), sub)

    def static_ops(self, bdef: syntax.BlockDef, stack: tuple[str, ...] = ()) -> int:
        """At most how many ops a call of `bdef` emits: statements are unconditional, so this
        does not depend on its arguments (a residual counts its shortcut and merge)."""
        if bdef.name in self._sizes:
            return self._sizes[bdef.name]
        if bdef.name in stack or len(stack) > MAX_CALL_DEPTH:
            return 0  # recursion and too-deep calls are reported when the call is built
        total = self._stmts_ops(bdef.body, stack + (bdef.name,))
        self._sizes[bdef.name] = total
        return total

    def _stmts_ops(self, stmts: list[syntax.Stmt], stack: tuple[str, ...]) -> int:
        total = 0
        for stmt in stmts:
            if isinstance(stmt, syntax.OpStmt):
                total += 1
            elif isinstance(stmt, syntax.InvokeStmt):
                callee = self.program.blocks.get(stmt.call.name)
                total += self.static_ops(callee, stack) if callee else 0
            elif isinstance(stmt, syntax.SectionStmt):
                total += self._stmts_ops(stmt.body, stack) + 2
            if total > MAX_OPS * 1000:
                break  # far past the limit: stop counting (and multiplying) here
        return total

    def bind_block(
        self, bdef: syntax.BlockDef, call: syntax.Call, env: Env, ctx: _Ctx, overrides: dict[str, Value]
    ) -> tuple[dict[str, Any], ShortcutOption | None, set[str]] | None:
        """A block call's evaluated arguments (defaults may use earlier ones and params) and its
        `shortcut:` option."""
        positional = [a for a in call.args if a.name is None]
        formals = {f.name: f for f in bdef.formals}
        if len(positional) > len(bdef.formals):
            self.error(
                f"block `{bdef.name}` takes {len(bdef.formals)} argument{'s' if len(bdef.formals) != 1 else ''} ({', '.join(formals) or 'none'}), got {len(positional)}",
                positional[len(bdef.formals)].span,
                f"`{_signature(bdef)}` is defined at {bdef.span}",
                ctx,
            )
            return None
        given: dict[str, syntax.Arg] = {f.name: a for f, a in zip(bdef.formals, positional)}
        shortcut: ShortcutOption | None = None
        ok = True
        for a in call.args:
            if a.name is None:
                continue
            if a.name == "shortcut" and "shortcut" not in formals:
                value = self.eval(a.value, env, ctx)
                shortcut = check_shortcut(value)
                if shortcut is None:
                    self.error(
                        f"`shortcut` must be A, B, C, none or identity, got {describe(value)}", a.value.span, ctx=ctx
                    )
                    ok = False
                continue
            if a.name not in formals:
                self.error(
                    f"block `{bdef.name}` has no argument `{a.name}`",
                    a.span,
                    did_you_mean(a.name, formals) or f"its arguments: {', '.join(formals) or 'none'}",
                    ctx,
                )
                ok = False
            elif a.name in given:
                self.error(f"argument `{a.name}` of `{bdef.name}` is given twice", a.span, ctx=ctx)
                ok = False
            else:
                given[a.name] = a
        if not ok:
            return None
        values: dict[str, Any] = {}
        defaulted: set[str] = set()
        for f in self.templates.block(bdef.name).formals:
            if f.name in overrides:
                values[f.name] = overrides[f.name]
            elif f.name in given:
                values[f.name] = self.eval(given[f.name].value, env, ctx)
            elif f.default is not None:
                values[f.name] = self.eval(f.default, self.globals.child(values), ctx)
                defaulted.add(f.name)
            else:
                self.error(
                    f"block `{bdef.name}` needs its `{f.name}` argument",
                    call.span,
                    f"`{_signature(bdef)}` is defined at {bdef.span}",
                    ctx,
                )
                return None
        return values, shortcut, defaulted

    def eval(self, expr: syntax.Expr, env: Env, ctx: _Ctx | None = None) -> Value:
        try:
            return evaluate(expr, env)
        except SpecError as err:
            if ctx:
                err.notes.extend(ctx.notes)
            self.errors.append(err)
            return None


def _signature(bdef: syntax.BlockDef) -> str:
    """`basic(width, stride = 1)`, as written."""
    formals = [f.name + (f" = {source_text(f.default)}" if f.default is not None else "") for f in bdef.formals]
    return f"{bdef.name}({', '.join(formals)})"


def _known_blocks(program: Program) -> str:
    names = sorted(program.blocks)
    if not names:
        return 'no blocks are defined: `import "std.rd"` for basic, bottleneck, ...'
    return "known blocks: " + ", ".join(names[:12]) + (" ..." if len(names) > 12 else "")


# ---------------------------------------------------------------- the network


def lower(program: Program, overrides: dict[str, Value] | None = None) -> NetworkIR:
    """Build the IR of a program's network; every error found is raised together."""
    overrides = dict(overrides or {})
    errors: list[SpecError] = []
    params = evaluate_params(program, overrides, errors)
    collect(errors)
    net = program.network
    assert net is not None
    builder = Builder(program, params, errors)
    builder.overridden = {k: v for k, v in overrides.items() if k in program.params}
    settings = network_settings(net, builder.globals.child({}), overrides, errors)
    collect(errors)
    builder.projection_bn = settings["projection"] == "conv_bn"
    builder.emit(OpKind.INPUT, {"shape": settings["input"]}, settings["input_span"], None)
    sections: list[Section] = []
    expectations: list[Expectation] = []
    env = Env({"classes": settings["classes"]}, builder.globals)
    try:
        for stmt in net.body:
            _network_stmt(stmt, builder, env, settings, sections, expectations)
    except _TooBig:
        raise SpecError(
            f"the network expands past {MAX_OPS:,} ops; refusing to build it",
            net.span,
            "check the repeat counts and params (e.g. --set n=...)",
        ) from None
    _check_sections(net, sections, errors)
    collect(errors)
    builder.residuals.sort(key=lambda r: r.id)  # ir.residuals[op.residual] is the op's residual
    _assign_survival(builder.residuals, settings["survival"])
    ir = NetworkIR(
        name=net.name,
        graph=builder.graph,
        input_node=0,
        input_shape=settings["input"],
        classes=settings["classes"],
        shortcut=settings["shortcut"],
        sections=sections,
        residuals=builder.residuals,
        params=params,
        blocks=builder.templates.all(),
        span=net.span,
        expectations=expectations,
    )
    ir.output_node = builder.current
    ir.survival = settings["survival"]
    return ir


def _network_stmt(
    stmt: syntax.Stmt,
    b: Builder,
    env: Env,
    settings: dict[str, Any],
    sections: list[Section],
    expectations: list[Expectation],
) -> None:
    if isinstance(stmt, syntax.OpStmt):
        if stmt.name not in NETWORK_SETTINGS:
            hint = did_you_mean(stmt.name, NETWORK_SETTINGS)
            if stmt.name in OPS:
                hint = f"ops go inside `stem {{ }}`, `head {{ }}` or a block: `stem {{ {stmt.name} ... }}`"
            b.error(
                f"unknown network setting `{stmt.name}`",
                stmt.name_span,
                hint or f"settings are {', '.join(NETWORK_SETTINGS)}",
            )
    elif isinstance(stmt, syntax.SectionStmt):
        if stmt.name not in ("stem", "head"):
            hint = did_you_mean(stmt.name, ("stem", "head"))
            if stmt.name in SECTIONS_IN_BODY:
                hint = f"`{stmt.name} {{ }}` goes inside a block; define one with `block NAME(...) {{ ... }}`"
            b.error(
                f"unknown network section `{stmt.name}`",
                stmt.name_span,
                hint or "a network has `stem { }`, `stage NAME = ...` and `head { }`",
            )
            return
        if stmt.args:
            b.error(f"`{stmt.name}` takes no arguments", stmt.args[0].span)
        section = Section(stmt.name, stmt.name, stmt.span, "")
        sections.append(section)
        items = b.templates.section(stmt.body, {"classes": settings["classes"]}, where=stmt.name)
        b.body(items, env, _Ctx(section, settings["shortcut"]))
    elif isinstance(stmt, syntax.StageStmt):
        _stage(stmt, b, env, settings, sections)
    elif isinstance(stmt, syntax.ExpectStmt):
        expectations.append(expectation(stmt, env))
    elif isinstance(stmt, syntax.InvokeStmt):
        b.error("blocks go into stages: `stage NAME = block(...) * n`", stmt.span)


def _stage(stmt: syntax.StageStmt, b: Builder, env: Env, settings: dict[str, Any], sections: list[Section]) -> None:
    if any(s.name == stmt.name for s in sections):
        b.error(f"stage `{stmt.name}` is defined twice", stmt.name_span)
        return
    opts = bind(
        f"stage {stmt.name}",
        Signature([], [Param("shortcut", check_shortcut, "A, B, C, none or identity")]),
        stmt.args,
        env,
        stmt.span,
        b.errors,
    )
    if opts is None:
        return
    description = ", ".join(_item_text(i) for i in stmt.items)
    section = Section(stmt.name, "stage", stmt.span, description, shortcut=opts["shortcut"])
    sections.append(section)
    ctx = _Ctx(section, opts["shortcut"] or settings["shortcut"])
    for item in stmt.items:
        count = 1
        if item.count is not None:
            value = b.eval(item.count, env)
            count = _positive(value) if value is not None else None
            if count is None:
                unknown = unknown_name(value, item.count, env.names())
                if unknown is not None:
                    b.errors.append(unknown)
                elif value is not None:
                    b.error(
                        f"a repeat count must be a positive whole number, got {describe(value)}",
                        item.count.span,
                        b.set_note(item.count) or whole_hint(value, item.count),
                    )
                continue
        _repeat(item, count, b, env, ctx)


def _repeat(item: syntax.StageItem, count: int, b: Builder, env: Env, ctx: _Ctx) -> None:
    """`block(...) * n`: n copies; copies after the first get `stride: 1` (torchvision's _make_layer)."""
    bdef = b.program.blocks.get(item.call.name)
    before = b.graph.number_of_nodes()
    per_block = b.static_ops(bdef) if bdef else 0
    if count > 1 and before + per_block * count > MAX_OPS:
        raise SpecError(
            f"`{_item_text(item)}` expands to {count:,} blocks of {per_block:,} ops ({per_block * count:,} ops); the limit is {MAX_OPS:,}",
            item.span,
            "lower the repeat count",
        )
    for i in range(count):
        overrides = {"stride": 1} if i > 0 and bdef and any(f.name == "stride" for f in bdef.formals) else {}
        errors_before = len(b.errors)
        b.invoke(item.call, env, ctx, overrides)
        if len(b.errors) > errors_before:
            return  # the same error would repeat in every copy


def _item_text(item: syntax.StageItem) -> str:
    from resdsl.lang.evaluate import source_text

    if item.count is None:
        return source_text(item.call)
    count = source_text(item.count)
    return f"{source_text(item.call)} x " + (f"({count})" if " " in count else count)


def _check_sections(net: syntax.NetworkDef, sections: list[Section], errors: list[SpecError]) -> None:
    kinds = [s.kind for s in sections]
    for name in ("stem", "head"):
        if kinds.count(name) > 1:
            dup = [s for s in sections if s.kind == name][1]
            errors.append(SpecError(f"`{name}` appears twice", dup.span))
    if "stem" in kinds and kinds.index("stem") != 0:
        errors.append(SpecError("`stem` must come before the stages", sections[kinds.index("stem")].span))
    if "head" in kinds and kinds.index("head") != len(kinds) - 1:
        errors.append(SpecError("`head` must come after the stages", sections[kinds.index("head")].span))
    if not any(s.nodes for s in sections) and not errors:
        errors.append(
            SpecError(f"network `{net.name}` has no layers", net.span, "add `stem { ... }`, stages and `head { ... }`")
        )


def _assign_survival(residuals: list[Residual], setting: Any) -> None:
    """Stochastic depth: p_l = 1 - l/L (1 - p_L) over the network's residual units (Huang et al.)."""
    units = residual_units(residuals)
    for depth, r in enumerate(units, start=1):
        if r.survival >= 0:
            continue
        if setting is None:
            r.survival = 1.0
        elif setting[0] == "uniform":
            r.survival = setting[1]
        else:
            r.survival = 1.0 - depth / len(units) * (1.0 - setting[1])
    for r in residuals:
        if r.survival < 0:
            r.survival = 1.0
