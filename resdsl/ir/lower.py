"""Syntax tree -> graph IR: the network's settings, stem, stages and head, expanded by the Builder."""

from __future__ import annotations

from dataclasses import is_dataclass
from typing import Any

from resdsl.diagnostics import Span, SpecError, collect, did_you_mean, too_many
from resdsl.ir.expand import Builder, Ctx, TooBig
from resdsl.ir.expect import expectation
from resdsl.ir.graph import (
    Expectation,
    NetworkIR,
    OpKind,
    Residual,
    Section,
    residual_units,
)
from resdsl.ir.limits import MAX_OPS
from resdsl.ir.modnames import is_indexed, path_problem
from resdsl.ir.ops import OPS
from resdsl.ir.params import evaluate_params
from resdsl.ir.paths import decide_paths
from resdsl.ir.settings import NETWORK_SETTINGS, SHORTCUT_CHOICES, check_shortcut, network_settings
from resdsl.ir.templating import Templates
from resdsl.lang import syntax
from resdsl.lang.evaluate import Env, source_text, unknown_name
from resdsl.lang.expr import names_in
from resdsl.lang.imports import Program
from resdsl.lang.signatures import (
    SECTIONS_IN_BODY,
    Param,
    Signature,
    _positive,
    bind,
    whole_hint,
)
from resdsl.lang.values import Value, describe

# ---------------------------------------------------------------- the network


def lower(program: Program, overrides: dict[str, Value] | None = None) -> NetworkIR:
    """Build the IR of a program's network; every error found is raised together."""
    overrides = dict(overrides or {})
    errors: list[SpecError] = []
    params = evaluate_params(program, overrides, errors)
    collect(errors)
    net = program.network
    assert net is not None
    builder = Builder(Templates(program, params), errors)
    builder.overridden = {k: v for k, v in overrides.items() if k in program.params}
    settings = network_settings(net, builder.globals.child({}), overrides, errors)
    collect(errors)
    builder.projection_bn = settings["projection"] == "conv_bn"
    builder.emit(OpKind.INPUT, {"shape": settings["input"]}, settings["input_span"], None)
    sections: list[Section] = []
    names: set[str] = set()  # the sections' names: a stage defined twice is found without a scan
    expectations: list[Expectation] = []
    env = Env({"classes": settings["classes"]}, builder.globals)
    try:
        for stmt in net.body:
            if too_many(errors):
                break
            _network_stmt(stmt, builder, env, settings, sections, names, expectations)
    except TooBig:
        raise SpecError(
            f"the network expands past {MAX_OPS:,} ops; refusing to build it",
            net.span,
            "check the repeat counts and params (e.g. --set n=...)",
        ) from None
    _check_sections(net, sections, errors)
    blocks = builder.templates.all()
    errors += builder.templates.naming_errors
    collect(errors)
    builder.residuals.sort(key=lambda r: r.id)  # ir.residuals[op.residual] is the op's residual
    rule, survival_mode = settings["survival"] or (None, "per_batch")
    _assign_survival(builder.residuals, rule)
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
        blocks=blocks,
        span=net.span,
        expectations=expectations,
    )
    ir.output_node = builder.current
    ir.survival, ir.survival_mode = rule, survival_mode
    ir.params_used = _params_used(program, net, sections, blocks, builder.templates.section_reads)
    errors += decide_paths(ir)
    collect(errors)
    return ir


def _params_used(
    program: Program, net: syntax.NetworkDef, sections: list[Section], blocks: dict, section_reads: set[str]
) -> list[str]:
    """The params the network reads: in its own statements (stage counts, arguments, settings), in the
    stem and head, in the templates of the blocks it uses, and in the definitions of those params."""
    used = set(section_reads) | _names(net.body)
    stack = [inst for s in sections for inst in s.blocks]
    while stack:
        inst = stack.pop()
        used |= blocks[inst.definition].params_read
        stack += inst.children
    todo = [p for p in used if p in program.params]
    while todo:
        for name in names_in(program.params[todo.pop()].value):
            if name in program.params and name not in used:
                used.add(name)
                todo.append(name)
    return [p for p in program.params if p in used]


def _names(node: Any) -> set[str]:
    """Every name read anywhere under a syntax node."""
    out: set[str] = set()
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, syntax.Name):
            out.add(item.id)
        elif isinstance(item, list):
            stack.extend(item)
        else:
            kind = type(item)
            names = _FIELDS.get(kind)
            if names is None:
                names = _FIELDS[kind] = syntax.node_fields(kind) if is_dataclass(kind) and kind is not type else ()
            stack.extend(getattr(item, f) for f in names)
    return out


_FIELDS: dict[type, tuple[str, ...]] = {}  # a syntax node class's fields (none for other values)


def _network_stmt(
    stmt: syntax.Stmt,
    b: Builder,
    env: Env,
    settings: dict[str, Any],
    sections: list[Section],
    names: set[str],
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
        opts = bind(stmt.name, Signature([], [_name_param(section=True)]), stmt.args, env, stmt.span, b.errors)
        section = Section(stmt.name, stmt.name, stmt.span, "", module_name=(opts or {}).get("name"))
        sections.append(section)
        names.add(section.name)
        items = b.templates.section(stmt.body, {"classes": settings["classes"]}, where=stmt.name)
        b.body(items, env, Ctx(section, settings["shortcut"]))
    elif isinstance(stmt, syntax.StageStmt):
        _stage(stmt, b, env, settings, sections, names)
    elif isinstance(stmt, syntax.ExpectStmt):
        expectations.append(expectation(stmt, env))
    elif isinstance(stmt, syntax.InvokeStmt):
        b.error("blocks go into stages: `stage NAME = block(...) * n`", stmt.span)
    elif isinstance(stmt, syntax.IfStmt):
        keyword = Span(stmt.span.source, stmt.span.line, stmt.span.col, stmt.span.line, stmt.span.col + 2)
        b.error("`if` goes inside a block, `stem { }` or `head { }`, not in the network's body", keyword)


def _stage(
    stmt: syntax.StageStmt, b: Builder, env: Env, settings: dict[str, Any], sections: list[Section], names: set[str]
) -> None:
    if stmt.name in names:
        b.error(f"stage `{stmt.name}` is defined twice", stmt.name_span)
        return
    opts = bind(
        f"stage {stmt.name}",
        Signature([], [Param("shortcut", check_shortcut, SHORTCUT_CHOICES), _name_param()]),
        stmt.args,
        env,
        stmt.span,
        b.errors,
    )
    if opts is None:
        return
    description = ", ".join(_item_text(i) for i in stmt.items)
    section = Section(stmt.name, "stage", stmt.span, description, shortcut=opts["shortcut"], module_name=opts["name"])
    sections.append(section)
    names.add(section.name)
    ctx = Ctx(section, opts["shortcut"] or settings["shortcut"])
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
    if section.module_name and len(section.blocks) > 1 and not is_indexed(section.module_name):
        b.error(
            f"stage `{stmt.name}` would give its {len(section.blocks)} blocks one name, {section.module_name!r}",
            stmt.name_span,
            "number them with `{i}` (0, 1, ...), `{n}` (1, 2, ...) or a last `.#`",
        )


def _name_param(section: bool = False) -> Param:
    """`name:` of a stage (a pattern for its block uses) or of a stem or head (`classifier.#`)."""

    def check(v: Value) -> str | None:
        if not isinstance(v, str) or path_problem(v, dotted=True, indexed=not section) is not None:
            return None
        return v if not section or v.endswith(".#") else None

    if section:
        return Param("name", check, 'a path ending in `.#` that numbers its ops, e.g. "classifier.#"')
    return Param("name", check, 'a module path; `{i}`, `{n}` or a last `#` number the uses, e.g. "layer1.{i}"')


def _repeat(item: syntax.StageItem, count: int, b: Builder, env: Env, ctx: Ctx) -> None:
    """`block(...) * n`: n copies; copies after the first get `stride: 1` (torchvision's _make_layer).
    Each copy goes through `Builder.invoke`, as a block used inside a block does."""
    name = item.call.name
    template = b.templates.block(name) if b.templates.has(name) else None
    before = b.graph.number_of_nodes()
    per_block = b.templates.max_ops(name) if template else 0
    if count > 1 and before + per_block * count > MAX_OPS:
        raise SpecError(
            f"`{_item_text(item)}` expands to {count:,} blocks of {per_block:,} ops ({per_block * count:,} ops); the limit is {MAX_OPS:,}",
            item.span,
            "lower the repeat count",
        )
    for i in range(count):
        overrides = {"stride": 1} if i > 0 and template and template.formal("stride") else {}
        errors_before = len(b.errors)
        b.invoke(item.call, env, ctx, overrides)
        if len(b.errors) > errors_before:
            return  # the same error would repeat in every copy


def _item_text(item: syntax.StageItem) -> str:

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
        elif setting[0] == "span":  # from `first` at unit 1 to `last` at unit L: drop 0.1 * l / (L - 1) (ConvNeXt)
            first, last = 1.0 - setting[1], 1.0 - setting[2]
            r.survival = 1.0 - (first + (last - first) * (depth - 1) / max(len(units) - 1, 1))
        else:
            r.survival = 1.0 - depth / len(units) * (1.0 - setting[1])
    for r in residuals:
        if r.survival < 0:
            r.survival = 1.0
