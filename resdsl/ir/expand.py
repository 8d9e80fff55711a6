"""Block uses -> ops: the `Builder` expands block templates (resdsl.ir.template) into the graph.

Each use of a block (a template's `CallItem`, or a stage's item) is bound to its template
(resdsl.ir.binding), then the template's body is evaluated with the use's values into the ops,
shortcuts and merges it emits; every error found is collected with the notes of the uses that led
to it (`in block X used here`). Blocks are read through their templates only, never their syntax.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import networkx as nx

from resdsl.diagnostics import Note, Span, SpecError, too_many
from resdsl.ir.binding import Reporter, bind_block, find_block
from resdsl.ir.graph import (
    BlockInstance,
    Op,
    OpKind,
    Residual,
    Role,
    Scope,
    Section,
    ShortcutOption,
    inputs_of,
)
from resdsl.ir.limits import MAX_OPS
from resdsl.ir.ops import GLOBAL_FORMS, REGISTRY
from resdsl.ir.passes import infer_op
from resdsl.ir.template import BlockTemplate, CallItem, IfItem, Invalid, Item, OpItem, ResidualItem, walk
from resdsl.ir.templating import SECTION_OF_KIND, Templates
from resdsl.lang.evaluate import Env
from resdsl.lang.expr import Call, Expr, names_in
from resdsl.lang.signatures import evaluate_binding
from resdsl.lang.values import Value, describe

POOL_DEFAULTS = {"ceil": False, "count_pad": True}


class TooBig(Exception):
    pass


@dataclass
class Ctx:
    section: Section
    shortcut: ShortcutOption
    block: int | None = None
    block_stack: list[str] = field(default_factory=list)  # the templates being expanded, outermost first
    instance: BlockInstance | None = None
    notes: list[Note] = field(default_factory=list)


@dataclass
class _GraphSoFar:
    """The graph being built, as shape inference reads it (resdsl.ir.passes.GraphView)."""

    graph: nx.DiGraph

    def op(self, node: int) -> Op:
        return self.graph._node[node]["op"]

    def inputs(self, node: int) -> list[int]:
        return inputs_of(self.graph, node)


class Builder:
    def __init__(self, templates: Templates, errors: list[SpecError]) -> None:
        self.templates = templates
        self.params = templates.params
        self.globals = Env(templates.params)
        self.errors = errors
        self.graph = nx.DiGraph()
        self.current = -1
        self.residual: int | None = None
        self.residuals: list[Residual] = []
        self.residual_ids = 0  # ids in opening order, so a nested residual never shares its outer's
        self.instances: list[BlockInstance] = []
        self.projection_bn = True
        self._empty: set[str] = set()  # blocks reported as having no ops
        self._scopes: dict[tuple, Scope] = {}  # Scope is frozen: one object per (section, block)
        self.overridden: dict[str, Value] = {}  # params given by --set
        self._shaped = 0  # nodes below this have their shapes inferred (see `shape`)
        self.role = Role.MAIN  # the role of the ops emitted now: SHORTCUT inside a written `shortcut { }`
        self._so_far = _GraphSoFar(self.graph)

    def shape(self, node: int) -> tuple[int, ...] | SpecError | None:
        """The output shape of a node built so far, for `in.channels`: inferred now, in node order,
        by the shapes pass's own rules (which runs again on the finished graph). A shape error is
        returned, to be reported where lowering needs the shape; None if an earlier one hides it."""
        error: SpecError | None = None
        while self._shaped <= node:
            op = self._so_far.op(self._shaped)
            try:
                infer_op(self._so_far, op)
            except SpecError as err:
                op.shape, error = None, err
            self._shaped += 1
        shape = self._so_far.op(node).shape
        return shape if shape is not None else error

    def set_note(self, expr: Expr) -> str | None:
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
        ctx: Ctx | None,
        inputs: list[int] | None = None,
        role: Role = Role.MAIN,
    ) -> int:
        graph = self.graph
        node = len(graph._node)  # number_of_nodes(), without the call
        if node >= MAX_OPS:
            raise TooBig()
        key = (ctx.section.name, ctx.section.kind, ctx.block) if ctx else ("input", "input", None)
        scope = self._scopes.get(key)
        if scope is None:
            scope = self._scopes[key] = Scope(*key)
        op_role = self.role if role is Role.MAIN else role
        graph.add_node(node, op=Op(node, kind, attrs, span, scope, op_role, self.residual))
        if inputs is None:
            inputs = [self.current] if self.current >= 0 else []
        for port, src in enumerate(inputs):
            graph.add_edge(src, node, port=port)
        if ctx:
            ctx.section.nodes.append(node)
            inst = ctx.instance  # the open block instances, innermost first
            while inst is not None:
                inst.nodes.append(node)
                inst = getattr(inst, "_parent", None)
        if role is Role.MAIN:
            self.current = node
        return node

    def error(self, message: str, span: Span | None, hint: str | None = None, ctx: Ctx | None = None) -> None:
        self.errors.append(SpecError(message, span, hint, list(ctx.notes) if ctx else None))

    # bodies (templates: resdsl.ir.template)
    def body(self, items: list[Item], env: Env, ctx: Ctx) -> None:
        for item in items:
            if too_many(self.errors):
                return
            if isinstance(item, OpItem):
                self.op(item, env, ctx)
            elif isinstance(item, CallItem):
                self.invoke(item.call, env, ctx, {}, origin=item.key)
            elif isinstance(item, ResidualItem):
                self.residual_section(item, env, ctx)
            elif isinstance(item, IfItem):
                test = self.eval(item.test, env, ctx)
                if test is None:
                    continue
                if not isinstance(test, bool):
                    hint = "compare it, e.g. `if stride > 1 { ... }`"
                    self.error(f"`if` needs true or false, got {describe(test)}", item.test.span, hint, ctx)
                    continue
                self.body(item.then if test else item.orelse, env, ctx)
                for skipped in walk(item.orelse if test else item.then):  # the class builds both branches
                    if isinstance(skipped, Invalid):
                        self.body([skipped], env, ctx)
            else:
                for err in item.errors:
                    self.errors.append(SpecError(err.message, err.span, err.hint, err.notes + ctx.notes))

    def op(self, item: OpItem, env: Env, ctx: Ctx) -> None:
        attrs = evaluate_binding(item.binding, env, self.errors)  # located at the argument: no notes
        if attrs is None:
            return
        self._derived(item, attrs)
        kind, rule = item.kind, REGISTRY[item.kind]
        problem = rule.check(attrs) if rule.check is not None else None
        if problem is not None:
            message, slot = problem
            self.error(message, item.span if slot is None else item.binding.slots[slot].expr.span, ctx=ctx)
            return
        for name, default in POOL_DEFAULTS.items():  # kept out of the IR unless used: older runs' fingerprints
            if name in attrs and attrs[name] == default:
                del attrs[name]
        attrs = {name: v for name, v in attrs.items() if v is not None}  # an optional argument not given
        if rule.global_form is not None and attrs["kernel"] == "global":
            kind, attrs = rule.global_form, {}
        elif kind in GLOBAL_FORMS:  # `avgpool global` as written: no arguments
            attrs = {}
        node = self.emit(kind, attrs, item.span, ctx)
        op = self.graph._node[node]["op"]
        op.module_name, op.module_name_span, op.origin = item.module_name, item.module_name_span, item.key

    def _derived(self, item: OpItem, attrs: dict[str, Any]) -> None:
        """Defaults that follow from the kernel (a conv's padding, a pool's stride), by the rules the
        templates write (resdsl.ir.ops: OpDef.derived), applied to this use's kernel: per dimension,
        so a non-square kernel, or one given through a block argument as a size, works too."""
        for name in item.derived:
            if attrs.get(name) is None and attrs.get("kernel") not in (None, "global"):
                attrs[name] = REGISTRY[item.kind].derive(name, attrs)

    def residual_section(self, item: ResidualItem, env: Env, ctx: Ctx) -> None:
        kind = item.kind
        name = SECTION_OF_KIND[kind]
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
        by_shape = kind == "add" and option is ShortcutOption.IDENTITY_OR_NONE
        if by_shape:
            option = ShortcutOption.IDENTITY if self.shape(x) == self.shape(body_out) else ShortcutOption.NONE
        shortcut = merge = None
        path: list[int] | None = None
        if kind == "add" and item.shortcut is not None and option is not ShortcutOption.NONE:
            self.current, self.role = preact_out, Role.SHORTCUT  # the pre-activated input, as projections take
            mark = self.graph.number_of_nodes()
            self.body(item.shortcut, env, ctx)
            path = list(range(mark, self.graph.number_of_nodes()))
            for n in path:
                self.graph._node[n]["op"].residual = rid
            path_out, self.current, self.role = self.current, body_out, Role.MAIN
            merge = self.emit(OpKind.ADD, {}, item.shortcut_span or item.name_span, ctx, [body_out, path_out])
        elif kind in ("concat", "mul"):
            merge_kind = OpKind.CONCAT if kind == "concat" else OpKind.MUL
            merge = self.emit(merge_kind, {}, item.name_span, ctx, [x, body_out])
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
            self.graph._node[shortcut]["op"].residual = rid
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
                path=path,
                by_shape=by_shape,
            )
        )
        for node in (shortcut, merge):
            if node is not None:
                self.graph._node[node]["op"].origin = item.key
        if merge is not None:
            self.graph._node[merge]["op"].residual = rid

    def invoke(
        self,
        call: Call,
        env: Env,
        ctx: Ctx,
        overrides: dict[str, Value],
        index: int | None = None,
        origin: str = "",
    ) -> None:
        """A use of a block (a template's `CallItem`, or a stage's item): bind it, then expand its template."""
        report = Reporter(self.errors, ctx.notes)
        template = find_block(call, self.templates, ctx.block_stack, self.graph.number_of_nodes(), report)
        if template is None:
            return
        reads: dict[str, Any] = {}
        if template.reads_input:
            shape = self.shape(self.current)
            if not isinstance(shape, tuple):
                if isinstance(shape, SpecError):  # the root cause, which the shapes pass would report later
                    self.errors.append(shape)
                return
            if len(shape) != 3:
                what = f"`in.channels`: the input of `{template.name}` is {shape[0]} numbers after an fc, not CxHxW"
                self.error(what, call.span, ctx=ctx)
                return
            reads["in.channels"] = shape[0]
        bound = bind_block(template, call, env, self.globals.child(reads), overrides, report)
        if bound is None:
            return
        inst = BlockInstance(
            template.name,
            bound.args,
            call.span,
            template.span,
            index if index is not None else len(ctx.section.blocks),
        )
        inst.defaulted, inst.origin = bound.defaulted, origin
        parent = ctx.instance
        inst._parent = parent  # type: ignore[attr-defined]
        if parent is None:
            ctx.section.blocks.append(inst)
        else:
            parent.children.append(inst)
        self.instances.append(inst)
        inst.shortcut = bound.shortcut
        sub = Ctx(
            ctx.section,
            bound.shortcut or ctx.shortcut,
            ctx.block if parent is not None else len(ctx.section.blocks) - 1,
            ctx.block_stack + [template.name],
            inst,
            ctx.notes + [Note(f"in block `{template.name}` used here", call.span)],
        )
        errors_before = len(self.errors)
        self.body(template.body, self.globals.child({**bound.args, **reads}), sub)
        if not inst.nodes and len(self.errors) == errors_before:
            self.empty_block(template, call, ctx)

    def empty_block(self, template: BlockTemplate, call: Call, ctx: Ctx) -> None:
        """A use that emitted no ops and found no error: the block is empty (`block e() { }`), which
        would leave a stage with nothing in it. Reported once, at the block, with its first use; a
        block that only calls empty blocks is left to them."""
        if template.name in self._empty:
            return
        self._empty.add(template.name)
        if any(isinstance(item, CallItem) for item in walk(template.body)):
            return
        s = template.span
        self.errors.append(
            SpecError(
                f"block `{template.name}` has no ops: using it does nothing",
                Span(s.source, s.line, s.col, s.line, s.col + len("block")),
                "give it at least one op (e.g. `relu`), or remove its uses",
                ctx.notes + [Note(f"`{template.name}` used here", call.span)],
            )
        )

    def eval(self, expr: Expr, env: Env, ctx: Ctx | None = None) -> Value:
        return Reporter(self.errors, ctx.notes if ctx else []).eval(expr, env)
