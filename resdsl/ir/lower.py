"""Syntax tree -> graph IR: evaluates params and arguments, expands blocks and stages into ops."""

from __future__ import annotations

from collections.abc import Callable
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
from resdsl.lang import syntax
from resdsl.lang.imports import Program
from resdsl.lang.signatures import (
    MAX_SPATIAL,
    OP_ALIASES,
    OPS,
    SECTIONS_IN_BODY,
    Param,
    Signature,
    _positive,
    bind,
    names_in,
    whole_hint,
)
from resdsl.lang.values import (
    CallValue,
    Env,
    Size,
    Value,
    describe,
    evaluate,
    source_text,
    unknown_name,
)

MAX_OPS = 200_000  # resource guard: a spec expanding past this is refused before it is built
MAX_CHANNELS = 1 << 20
MAX_CALL_DEPTH = 50  # blocks calling blocks; lowering recurses once per level

NETWORK_SETTINGS = ("input", "classes", "shortcut", "projection", "survival")

_KINDS = {
    "conv": OpKind.CONV,
    "bn": OpKind.BN,
    "relu": OpKind.RELU,
    "maxpool": OpKind.MAXPOOL,
    "avgpool": OpKind.AVGPOOL,
    "fc": OpKind.FC,
    "dropout": OpKind.DROPOUT,
}

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

    # bodies
    def body(self, stmts: list[syntax.Stmt], env: Env, ctx: _Ctx) -> None:
        for stmt in stmts:
            if isinstance(stmt, syntax.OpStmt):
                self.op(stmt, env, ctx)
            elif isinstance(stmt, syntax.InvokeStmt):
                self.invoke(stmt.call, env, ctx, {})
            elif isinstance(stmt, syntax.SectionStmt):
                self.section(stmt, env, ctx)
            elif isinstance(stmt, syntax.StageStmt):
                self.error("`stage` belongs in a network, not in a block or section", stmt.span, ctx=ctx)
            elif isinstance(stmt, syntax.ExpectStmt):
                self.error("`expect` belongs in a network", stmt.span, ctx=ctx)

    def op(self, stmt: syntax.OpStmt, env: Env, ctx: _Ctx) -> None:
        name = stmt.name
        if name not in OPS:
            if name in self.program.blocks:
                self.error(f"`{name}` is a block: call it with parentheses", stmt.name_span, f"`{name}(...)`", ctx)
            elif name in NETWORK_SETTINGS:
                self.error(
                    f"`{name}` is a network setting; it cannot appear inside a {ctx.section.kind}",
                    stmt.name_span,
                    ctx=ctx,
                )
            elif name == "preact":
                self.error(
                    "`preact` is a section: `preact { bn; relu }` as the first item of a residual",
                    stmt.name_span,
                    ctx=ctx,
                )
            else:
                choices = set(OPS) | set(self.program.blocks)
                alias = OP_ALIASES.get(name.lower())
                self.error(
                    f"unknown op `{name}`",
                    stmt.name_span,
                    (f"resdsl calls it `{alias}`" if alias else None)
                    or did_you_mean(name, choices)
                    or f"ops are {', '.join(OPS)}",
                    ctx,
                )
            return
        attrs = bind(name, OPS[name], stmt.args, env, stmt.span, self.errors)
        if attrs is None:
            return
        self._add_notes(ctx, before=len(self.errors))
        kind = _KINDS[name]
        if kind is OpKind.CONV:
            if attrs["pad"] is None:
                attrs["pad"] = attrs["kernel"][0] // 2
            if attrs["channels"] > MAX_CHANNELS:
                self.error(
                    f"{attrs['channels']:,} channels is more than the limit of {MAX_CHANNELS:,}",
                    stmt.args[1].span,
                    ctx=ctx,
                )
                return
            if attrs["channels"] % attrs["groups"]:
                self.error(
                    f"{attrs['channels']} channels do not split into {attrs['groups']} groups", stmt.span, ctx=ctx
                )
                return
        if kind is OpKind.AVGPOOL and attrs["kernel"] == "global":
            kind, attrs = OpKind.GLOBAL_AVGPOOL, {}
        elif kind in (OpKind.MAXPOOL, OpKind.AVGPOOL) and attrs["stride"] is None:
            attrs["stride"] = attrs["kernel"][0]
        self.emit(kind, attrs, stmt.span, ctx)

    def _add_notes(self, ctx: _Ctx, before: int) -> None:
        for err in self.errors[before:]:
            err.notes.extend(ctx.notes)

    def section(self, stmt: syntax.SectionStmt, env: Env, ctx: _Ctx) -> None:
        if stmt.name in SECTIONS_IN_BODY:
            self.residual_section(stmt, env, ctx)
        elif stmt.name == "preact":
            self.error("`preact { ... }` may only open a `residual { ... }`", stmt.name_span, ctx=ctx)
        elif stmt.name in ("stem", "head"):
            self.error(f"`{stmt.name}` belongs in a network", stmt.name_span, ctx=ctx)
        else:
            self.error(
                f"unknown section `{stmt.name}`",
                stmt.name_span,
                did_you_mean(stmt.name, SECTIONS_IN_BODY + ("preact",))
                or "sections inside blocks are `residual { }`, `dense { }` and `preact { }`",
                ctx,
            )

    def residual_section(self, stmt: syntax.SectionStmt, env: Env, ctx: _Ctx) -> None:
        kind = "add" if stmt.name == "residual" else "concat"
        sig = Signature(
            [],
            [
                Param("shortcut", _shortcut, "A, B, C, none or identity"),
                Param("survival", _survival, "a probability in (0, 1]"),
            ]
            if kind == "add"
            else [],
        )
        opts = bind(stmt.name, sig, stmt.args, env, stmt.span, self.errors)
        if opts is None or self.current < 0:
            if self.current < 0:
                self.error(f"`{stmt.name}` needs an input: it cannot come first", stmt.name_span, ctx=ctx)
            return
        option = opts.get("shortcut") or ctx.shortcut
        rid = self.residual_ids
        self.residual_ids += 1
        outer, self.residual = self.residual, rid
        x = self.current
        body = list(stmt.body)
        preact: list[int] = []
        mark = self.graph.number_of_nodes()
        if body and isinstance(body[0], syntax.SectionStmt) and body[0].name == "preact":
            if kind != "add":
                self.error("`preact` belongs to a residual, not to a dense section", body[0].name_span, ctx=ctx)
            self.body(body.pop(0).body, env, ctx)
            preact = list(range(mark, self.graph.number_of_nodes()))
        preact_out = self.current
        mark = self.graph.number_of_nodes()
        self.body(body, env, ctx)
        body_nodes = list(range(mark, self.graph.number_of_nodes()))
        self.residual = outer
        if not body_nodes:
            self.error(f"`{stmt.name}` has an empty body", stmt.span, ctx=ctx)
            return
        body_out = self.current
        shortcut = merge = None
        if kind == "concat":
            merge = self.emit(OpKind.CONCAT, {}, stmt.name_span, ctx, [x, body_out])
        elif option is not ShortcutOption.NONE:
            sources = [x, preact_out] if preact else [x]
            shortcut = self.emit(
                OpKind.SHORTCUT,
                {"option": option, "projection_bn": self.projection_bn},
                stmt.name_span,
                ctx,
                sources,
                Role.SHORTCUT,
            )
            self.graph.nodes[shortcut]["op"].residual = rid
            merge = self.emit(OpKind.ADD, {}, stmt.name_span, ctx, [body_out, shortcut])
        survival = opts.get("survival")
        self.residuals.append(
            Residual(
                rid,
                kind,
                option if kind == "add" else ShortcutOption.NONE,
                self.projection_bn,
                x,
                preact,
                body_nodes,
                shortcut,
                merge,
                survival if survival is not None else -1.0,
                stmt.span,
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
        args, shortcut = bound
        inst = BlockInstance(
            bdef.name, args, call.span, bdef.span, index if index is not None else len(ctx.section.blocks)
        )
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
        self.body(bdef.body, self.globals.child(args), sub)

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
    ) -> tuple[dict[str, Any], ShortcutOption | None] | None:
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
                shortcut = _shortcut(value)
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
        for f in bdef.formals:
            if f.name in overrides:
                values[f.name] = overrides[f.name]
            elif f.name in given:
                values[f.name] = self.eval(given[f.name].value, env, ctx)
            elif f.default is not None:
                values[f.name] = self.eval(f.default, self.globals.child(values), ctx)
            else:
                self.error(
                    f"block `{bdef.name}` needs its `{f.name}` argument",
                    call.span,
                    f"`{_signature(bdef)}` is defined at {bdef.span}",
                    ctx,
                )
                return None
        return values, shortcut

    def eval(self, expr: syntax.Expr, env: Env, ctx: _Ctx | None = None) -> Value:
        try:
            return evaluate(expr, env)
        except SpecError as err:
            if ctx:
                err.notes.extend(ctx.notes)
            self.errors.append(err)
            return None


def _shortcut(v: Value) -> ShortcutOption | None:
    if isinstance(v, str):
        for opt in ShortcutOption:
            if opt.value.lower() == v.lower():
                return opt
    return None


def _survival(v: Value) -> float | None:
    if isinstance(v, (int, float)) and not isinstance(v, bool) and 0 < v <= 1:
        return float(v)
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


def _settings(net: syntax.NetworkDef, builder: Builder, overrides: dict[str, Value]) -> dict[str, Any]:
    found: dict[str, tuple[Value, syntax.Expr | None, Span]] = {}
    for stmt in net.body:
        if not isinstance(stmt, syntax.OpStmt) or stmt.name not in NETWORK_SETTINGS:
            continue
        if stmt.name in found:
            builder.error(f"`{stmt.name}` is set twice", stmt.span)
            continue
        if len(stmt.args) != 1 or stmt.args[0].name is not None:
            builder.error(f"`{stmt.name}` takes one value", stmt.span, _SETTING_EXAMPLES[stmt.name])
            continue
        value = builder.eval(stmt.args[0].value, builder.globals.child({}))
        found[stmt.name] = (value, stmt.args[0].value, stmt.span)
    for name, value in overrides.items():
        if name in NETWORK_SETTINGS:
            span = found[name][2] if name in found else net.span
            found[name] = (value, None, span)
    out: dict[str, Any] = {}
    for name, (check, expects, default) in _SETTING_CHECKS.items():
        if name not in found:
            if default is _REQUIRED:
                builder.error(f"network `{net.name}` needs `{name}`", net.span, _SETTING_EXAMPLES[name])
            out[name] = default
            continue
        value, expr, span = found[name]
        checked = check(value)
        if checked is None and expr is None:
            from resdsl.diagnostics import UsageError

            raise UsageError(f"--set {name}: must be {expects}, got {describe(value)}; {_SETTING_EXAMPLES[name]}")
        if checked is None:
            where = expr.span
            builder.error(
                f"`{name}` must be {expects}, got {describe(value)}",
                where,
                _SETTING_EXAMPLES[name],
            )
            continue
        out[name] = checked
        if name == "input":
            out["input_span"] = span
    out.setdefault("input_span", net.span)
    return out


def _input(v: Value) -> tuple[int, ...] | None:
    if isinstance(v, Size) and len(v.dims) == 3 and all(0 < d <= MAX_SPATIAL for d in v.dims):
        return v.dims
    return None


def _survival_setting(v: Value) -> Any:
    if isinstance(v, CallValue) and v.name == "linear" and not v.args and set(v.kw()) == {"last"}:
        last = _survival(v.kw()["last"])
        return ("linear", last) if last is not None else None
    p = _survival(v)
    return ("uniform", p) if p is not None else None


_REQUIRED = object()
_SETTING_CHECKS: dict[str, tuple[Callable[[Value], Any], str, Any]] = {
    "input": (_input, f"channels x height x width, each 1..{MAX_SPATIAL}", _REQUIRED),
    "classes": (_positive, "a positive whole number", _REQUIRED),
    "shortcut": (_shortcut, "A, B, C, none or identity", ShortcutOption.IDENTITY),
    "projection": (lambda v: v if v in ("conv_bn", "conv") else None, "conv_bn or conv", "conv_bn"),
    "survival": (_survival_setting, "a probability in (0, 1] or linear(last: p)", None),
}
_SETTING_EXAMPLES = {
    "input": "e.g. `input 3x32x32`",
    "classes": "e.g. `classes 10`",
    "shortcut": "e.g. `shortcut A` (A | B | C | none | identity)",
    "projection": "e.g. `projection conv` (1x1 conv without BN) or `projection conv_bn`",
    "survival": "e.g. `survival linear(last: 0.5)`",
}


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
    settings = _settings(net, builder, overrides)
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
        net.name,
        builder.graph,
        0,
        settings["input"],
        settings["classes"],
        settings["shortcut"],
        sections,
        builder.residuals,
        params,
        program.blocks,
        net.span,
        expectations,
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
        b.body(stmt.body, env, _Ctx(section, settings["shortcut"]))
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
        Signature([], [Param("shortcut", _shortcut, "A, B, C, none or identity")]),
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
    from resdsl.lang.values import source_text

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
