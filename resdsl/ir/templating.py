"""Syntax -> block templates (resdsl.ir.template): bind each body once, fold the spec's params in."""

from __future__ import annotations

from dataclasses import is_dataclass
from typing import Any

from resdsl.diagnostics import Span, SpecError, did_you_mean
from resdsl.ir.limits import MAX_CALL_DEPTH, MAX_OPS
from resdsl.ir.modnames import EXAMPLE, path_problem
from resdsl.ir.naming import decide_block_names
from resdsl.ir.ops import KIND_OF, OP_ALIASES, OPS, REGISTRY
from resdsl.ir.settings import NETWORK_SETTINGS, SHORTCUT_CHOICES, check_shortcut, check_survival
from resdsl.ir.template import (
    BlockTemplate,
    CallItem,
    Formal,
    IfItem,
    Invalid,
    Item,
    OpItem,
    ResidualItem,
    op_bound,
    walk,
)
from resdsl.lang import syntax
from resdsl.lang.evaluate import Env, evaluate, source_text
from resdsl.lang.expr import names_in
from resdsl.lang.imports import Program
from resdsl.lang.signatures import SECTIONS_IN_BODY, Param, Signature, match
from resdsl.lang.values import Size, Value

SECTION_KINDS = {"residual": "add", "dense": "concat", "gate": "mul"}  # a section -> how it merges
SECTION_OF_KIND = {kind: section for section, kind in SECTION_KINDS.items()}


def residual_signature(kind: str) -> Signature:
    """`residual(shortcut: C, survival: 0.8) { }`; dense and gate sections take nothing."""
    if kind != "add":
        return Signature([])
    return Signature(
        [],
        [
            Param("shortcut", check_shortcut, SHORTCUT_CHOICES),
            Param("survival", check_survival, "a probability in (0, 1]"),
        ],
    )


class Templates:
    """The templates of a program's blocks, each built on first use; and of stem/head bodies."""

    def __init__(self, program: Program, params: dict[str, Value]) -> None:
        self.program = program
        self.params = params
        self._built: dict[str, BlockTemplate] = {}
        self.naming_errors: list[SpecError] = []  # module-name collisions in the blocks built (ir/naming.py)
        self.section_reads: set[str] = set()  # the params that stem and head bodies read
        self._keys = 0  # items keyed so far (OpItem.key, CallItem.key, ResidualItem.key)

    def has(self, name: str) -> bool:
        """Whether the program defines (or imports) a block `name`."""
        return name in self.program.blocks

    def names(self) -> list[str]:
        """The program's block names, in definition order."""
        return list(self.program.blocks)

    def block(self, name: str) -> BlockTemplate:
        if name not in self._built:
            self._built[name] = self._block(self.program.blocks[name])
        return self._built[name]

    def all(self) -> dict[str, BlockTemplate]:
        """The templates of every block the program defines or imports, in definition order."""
        return {name: self.block(name) for name in self.program.blocks}

    def max_ops(self, name: str, stack: tuple[str, ...] = ()) -> int:
        """At most how many ops a use of block `name` emits, whatever its arguments (template.op_bound),
        counted once. A recursive or too deep call counts nothing: lowering reports it where it is built."""
        built = self._built.get(name)
        if built is not None and built.max_ops is not None:
            return built.max_ops
        if name in stack or len(stack) > MAX_CALL_DEPTH:
            return 0
        template, inner = self.block(name), stack + (name,)
        total = op_bound(template.body, lambda c: self.max_ops(c, inner) if self.has(c) else 0, MAX_OPS * 1000)
        template.max_ops = total
        return total

    def _block(self, bdef: syntax.BlockDef) -> BlockTemplate:
        formals = {f.name for f in bdef.formals}
        folder = Folder(self.params, formals)
        template = BlockTemplate(
            bdef.name,
            [Formal(f.name, folder.fold(f.default) if f.default else None, f.span) for f in bdef.formals],
            self.body(bdef.body, folder, "block"),
            bdef.span,
            bdef.module,
            bdef.span.source.line(bdef.span.line).strip(),
            _signature(bdef),
        )
        self._key(template.body, bdef.name)
        template.reads_input = _in_text(bdef, "channels") and _mentions(bdef, "in.channels")
        template.params_read = frozenset(folder.read)
        self.naming_errors += decide_block_names(template)
        for f in template.formals:
            if f.default is not None and not names_in(f.default) and not isinstance(f.default, syntax.ListExpr):
                try:
                    template.constant_defaults[f.name] = evaluate(f.default, Env({}))
                except SpecError:
                    pass
        return template

    def section(self, stmts: list[syntax.Stmt], names: dict[str, Value], where: str) -> list[Item]:
        """A stem or head body: no formals; the params and `names` (`classes`) folded."""
        folder = Folder({**self.params, **names}, set())
        items = self.body(stmts, folder, where)
        self._key(items, where)
        self.section_reads |= folder.read & set(self.params)
        return items

    def _key(self, items: list[Item], owner: str) -> None:
        """Give every op, call and section item its key, unique in the program: `basic:3`."""
        for item in walk(items):
            if isinstance(item, OpItem | CallItem | ResidualItem):
                item.key = f"{owner}:{self._keys}"
                self._keys += 1

    # ---- statements
    def body(self, stmts: list[syntax.Stmt], folder: Folder, where: str) -> list[Item]:
        items: list[Item] = []
        for stmt in stmts:
            if isinstance(stmt, syntax.OpStmt):
                items.append(self.op(stmt, folder, where))
            elif isinstance(stmt, syntax.InvokeStmt):
                callee = self.program.blocks.get(stmt.call.name)
                takes_name = callee is not None and any(f.name == "name" for f in callee.formals)
                items.append(_call_item(stmt.call, folder, where, takes_name))
            elif isinstance(stmt, syntax.SectionStmt):
                items.append(self.section_stmt(stmt, folder, where))
            elif isinstance(stmt, syntax.StageStmt):
                items.append(Invalid([SpecError("`stage` belongs in a network, not in a block or section", stmt.span)]))
            elif isinstance(stmt, syntax.ExpectStmt):
                items.append(Invalid([SpecError("`expect` belongs in a network", stmt.span)]))
            elif isinstance(stmt, syntax.IfStmt):
                items.extend(self.if_stmt(stmt, folder, where))
        return items

    def if_stmt(self, stmt: syntax.IfStmt, folder: Folder, where: str) -> list[Item]:
        """A test on the spec's params alone picks its branch now; one on the block's arguments is kept
        for lowering to decide at each use. A block's conditional branches hold ops only: the code
        generator writes one class per block, whose residual sections and inner blocks are fixed."""
        test = folder.fold(stmt.test)
        if isinstance(test, syntax.Literal) and isinstance(test.value, bool):
            return self.body(stmt.then if test.value else stmt.orelse, folder, where)
        then, orelse = self.body(stmt.then, folder, where), self.body(stmt.orelse, folder, where)
        if where == "block":
            for item in walk(then + orelse):
                if isinstance(item, (ResidualItem, CallItem)):
                    what = "a block" if isinstance(item, CallItem) else f"`{SECTION_OF_KIND[item.kind]} {{ }}`"
                    span = item.call.span if isinstance(item, CallItem) else item.name_span
                    hint = (
                        "pass the choice on to the block as an argument, or write two blocks"
                        if isinstance(item, CallItem)
                        else "put the `if` inside the section, or write two blocks"
                    )
                    return [Invalid([SpecError(f"{what} cannot be used inside `if` in a block", span, hint)])]
        return [IfItem(test, then, orelse, stmt.span)]

    def op(self, stmt: syntax.OpStmt, folder: Folder, where: str) -> Item:
        name = stmt.name
        if name not in OPS:
            return Invalid([self.unknown_op(stmt, where)])
        sig = OPS[name]
        module_name, name_span, error = _module_name(stmt, where)
        if error is not None:
            return Invalid([error])
        args = [syntax.Arg(a.name, folder.fold(a.value), a.span) for a in stmt.args if a.name != "name"]
        reads = {a.name or "": r for a in stmt.args if a.name != "name" and (r := folder.reads(a.value))}
        binding = match(name, sig, args, stmt.span)
        given = binding.given()
        values = {s.param.name: given.get(s.param.name) or _default(s.param) for s in binding.slots}
        kind = KIND_OF[name]
        kernel = given.get("kernel")
        derived: list[str] = []
        global_form = REGISTRY[kind].global_form
        if global_form is not None and isinstance(kernel, syntax.Name) and kernel.id == "global":
            kind = global_form
            values = {}
        elif kernel is not None:
            for arg, (rule, op, operand) in REGISTRY[kind].derived.items():
                if arg not in given:
                    values[arg] = _derived(kernel, rule, op, operand)
                    derived.append(arg)
        args_out = {k: v for k, v in values.items() if v is not None}
        return OpItem(
            name,
            kind,
            args_out,
            binding,
            stmt.span,
            stmt.name_span,
            tuple(derived),
            module_name,
            name_span,
            reads=reads,
        )

    def unknown_op(self, stmt: syntax.OpStmt, where: str) -> SpecError:
        name = stmt.name
        if name in self.program.blocks:
            return SpecError(f"`{name}` is a block: call it with parentheses", stmt.name_span, f"`{name}(...)`")
        if name in NETWORK_SETTINGS:
            return SpecError(f"`{name}` is a network setting; it cannot appear inside a {where}", stmt.name_span)
        if name == "preact":
            return SpecError(
                "`preact` is a section: `preact { bn; relu }` as the first item of a residual", stmt.name_span
            )
        choices = set(OPS) | set(self.program.blocks)
        alias = OP_ALIASES.get(name.lower())
        return SpecError(
            f"unknown op `{name}`",
            stmt.name_span,
            (f"resdsl calls it `{alias}`" if alias else None)
            or did_you_mean(name, choices)
            or f"ops are {', '.join(OPS)}",
        )

    def section_stmt(self, stmt: syntax.SectionStmt, folder: Folder, where: str) -> Item:
        if stmt.name in SECTIONS_IN_BODY:
            return self.residual(stmt, folder, where)
        if stmt.name == "preact":
            return Invalid([SpecError("`preact { ... }` may only open a `residual { ... }`", stmt.name_span)])
        if stmt.name == "shortcut":
            return Invalid([SpecError("`shortcut { ... }` goes inside a `residual { ... }`", stmt.name_span)])
        if stmt.name in ("stem", "head"):
            return Invalid([SpecError(f"`{stmt.name}` belongs in a network", stmt.name_span)])
        return Invalid(
            [
                SpecError(
                    f"unknown section `{stmt.name}`",
                    stmt.name_span,
                    did_you_mean(stmt.name, SECTIONS_IN_BODY + ("preact", "shortcut"))
                    or "sections inside blocks are `residual { }`, `dense { }`, `gate { }`, `preact { }` and "
                    "`shortcut { }`",
                )
            ]
        )

    def residual(self, stmt: syntax.SectionStmt, folder: Folder, where: str) -> ResidualItem:
        kind = SECTION_KINDS[stmt.name]
        args = [syntax.Arg(a.name, folder.fold(a.value), a.span) for a in stmt.args]
        options = match(stmt.name, residual_signature(kind), args, stmt.span)
        body = list(stmt.body)
        preact = None
        preact_error = None
        if body and isinstance(body[0], syntax.SectionStmt) and body[0].name == "preact":
            first = body.pop(0)
            if kind != "add":
                preact_error = SpecError(
                    f"`preact` belongs to a residual, not to a {stmt.name} section", first.name_span
                )
            preact = self.body(first.body, folder, where)  # type: ignore[attr-defined]
        written = [s for s in body if isinstance(s, syntax.SectionStmt) and s.name == "shortcut"]
        body = [s for s in body if s not in written]
        item = ResidualItem(
            kind, options, preact, self.body(body, folder, where), stmt.span, stmt.name_span, preact_error=preact_error
        )
        if written:
            path = self.shortcut_path(stmt, written, folder, where)
            if isinstance(path, Invalid):  # in the body: reported at every use, whatever the shortcut option
                item.body.append(path)
            else:
                item.shortcut, item.shortcut_span = path, written[0].name_span
        return item

    def shortcut_path(
        self, stmt: syntax.SectionStmt, written: list[syntax.SectionStmt], folder: Folder, where: str
    ) -> list[Item] | Invalid:
        """A residual's `shortcut { }`: ops (and `if`s) from the residual's input to its addition."""
        first = written[0]
        problem = None
        if len(written) > 1:
            problem = SpecError("a residual has one `shortcut { }`", written[1].name_span)
        elif stmt.name != "residual":
            problem = SpecError(
                f"`shortcut {{ }}` belongs to a residual, not to a {stmt.name} section", first.name_span
            )
        elif first.args:
            problem = SpecError("`shortcut { }` takes no arguments", first.args[0].span)
        elif any(a.name == "shortcut" for a in stmt.args):
            problem = SpecError(
                "this residual has both a `shortcut:` option and a `shortcut { }`",
                first.name_span,
                "keep one: the written path replaces the option",
            )
        if problem is not None:
            return Invalid([problem])
        items = self.body(first.body, folder, where)
        for item in walk(items):
            if isinstance(item, (ResidualItem, CallItem)):
                span = item.call.span if isinstance(item, CallItem) else item.name_span
                return Invalid([SpecError("a `shortcut { }` holds ops only (and `if`)", span)])
        return items


def _signature(bdef: syntax.BlockDef) -> str:
    """`basic(width, stride = 1)`, as written."""
    formals = [f.name + (f" = {source_text(f.default)}" if f.default is not None else "") for f in bdef.formals]
    return f"{bdef.name}({', '.join(formals)})"


def _in_text(bdef: syntax.BlockDef, word: str) -> bool:
    """Whether the text of a block definition holds `word` at all (a token cannot be split, so a name
    made of it is there, `in.channels` as much as `in . channels`); `_mentions` then walks it to be sure."""
    span = bdef.span
    return any(word in span.source.line(n) for n in range(span.line, span.end_line + 1))


def _mentions(node: Any, name: str) -> bool:
    """Whether a syntax node (a block definition) reads `name` anywhere."""
    if isinstance(node, syntax.Name):
        return node.id == name
    if isinstance(node, list):
        return any(_mentions(n, name) for n in node)
    if is_dataclass(node) and not isinstance(node, type):
        return any(_mentions(getattr(node, f), name) for f in syntax.node_fields(type(node)))
    return False


def _call_item(call: syntax.Call, folder: Folder, where: str, takes_name: bool) -> Item:
    """A block used in a body; inside a block, `name:` places its module (`se(name: "block.2")`),
    unless the block has a parameter `name` of its own (`takes_name`), which it then passes."""
    given = [] if takes_name else [a for a in call.args if a.name == "name"]
    rest = [a for a in call.args if a not in given]
    folded = folder.fold(syntax.Call(call.span, call.name, rest, call.name_span))
    if not given:
        return CallItem(call.name, folded)  # type: ignore[arg-type]
    arg = given[-1]
    if where != "block":
        message = f"`name:` of a block use is for a block used inside a block, not in a {where}"
        return Invalid([SpecError(message, arg.span, f"name the ops inside `{call.name}` instead")])
    name, span, error = _module_name(syntax.OpStmt(call.span, call.name, call.args, call.name_span), where)
    if error is not None:
        return Invalid([error])
    return CallItem(call.name, folded, module_name=name, module_name_span=span)  # type: ignore[arg-type]


def _module_name(stmt: syntax.OpStmt, where: str) -> tuple[str | None, Span | None, SpecError | None]:
    """An op's `name: "..."` (resdsl.ir.modnames): one attribute in a block, a path in a stem or head."""
    given = [a for a in stmt.args if a.name == "name"]
    if not given:
        return None, None, None
    arg = given[-1]
    if len(given) > 1:
        return None, None, SpecError("`name` is given twice", arg.span)
    if not isinstance(arg.value, syntax.String):
        return None, None, SpecError("`name` must be a string", arg.value.span, 'e.g. `bn name: "norm1"`')
    problem = path_problem(arg.value.value, dotted=True)
    if problem is None and where == "block" and not all(p.isdigit() for p in arg.value.value.split(".")[1:]):
        problem = "a name inside a block is one attribute, or a container and positions in it (`conv.0.1`)"
    if problem is not None:
        hint = 'e.g. `bn name: "norm1"`' if where == "block" else EXAMPLE
        return None, None, SpecError(f"bad module name {arg.value.value!r}: {problem}", arg.value.span, hint)
    return arg.value.value, arg.value.span, None


def _default(p: Param) -> syntax.Expr | None:
    """The catalogue's default of a parameter as a literal expression (None: derived or required)."""
    return None if p.default is None else syntax.Literal(None, p.default)  # type: ignore[arg-type]


def _derived(kernel: syntax.Expr, rule, op: str | None, operand: Any) -> syntax.Expr:
    """A default computed from the kernel: folded when the kernel is a constant (a non-square
    result as a Size, which the code generator writes as a tuple), else an expression of the
    block's argument. Lowering applies the rule itself to each use's kernel (resdsl.ir.expand)."""
    if isinstance(kernel, (syntax.SizeLit, syntax.Literal, syntax.Number)):
        value = kernel.dims if isinstance(kernel, syntax.SizeLit) else kernel.value
        dims = getattr(value, "dims", value)
        dims = dims if isinstance(dims, tuple) else (dims, dims)
        if len(dims) == 2 and all(isinstance(d, int) and not isinstance(d, bool) for d in dims):
            result = rule(dims)
            return syntax.Literal(kernel.span, Size(result) if isinstance(result, tuple) else result)
    if op is None:
        return kernel
    return syntax.BinOp(kernel.span, op, kernel, syntax.Literal(kernel.span, operand))


class Folder:
    """Replaces the spec's params by their values and evaluates what uses no block argument.

    A sub-expression whose evaluation fails is left as written: lowering evaluates it at every
    use and reports the error there, with the use's notes. Bare words (`global`, `A`) stay names,
    so that a misspelt name is still reported as one.
    """

    def __init__(self, params: dict[str, Value], formals: set[str]) -> None:
        self.params = params
        self.formals = formals
        self.read: set[str] = set()  # the params folded in so far

    def reads(self, e: syntax.Expr) -> tuple[str, ...]:
        """The params an expression reads (those `fold` replaces)."""
        return tuple(dict.fromkeys(n for n in names_in(e) if n not in self.formals and n in self.params))

    def fold(self, e: syntax.Expr) -> syntax.Expr:
        if isinstance(e, syntax.Name):
            if e.id not in self.formals and e.id in self.params:
                self.read.add(e.id)
                return syntax.Literal(e.span, self.params[e.id], e.id)
            return e
        if isinstance(e, syntax.BinOp):
            out: syntax.Expr = syntax.BinOp(e.span, e.op, self.fold(e.left), self.fold(e.right))
        elif isinstance(e, syntax.Unary):
            out = syntax.Unary(e.span, e.op, self.fold(e.operand))
        elif isinstance(e, syntax.Cond):
            test = self.fold(e.test)
            if isinstance(test, syntax.Literal) and isinstance(test.value, bool):
                return self.fold(e.then if test.value else e.orelse)
            out = syntax.Cond(e.span, test, self.fold(e.then), self.fold(e.orelse))
        elif isinstance(e, syntax.Call):
            args = [syntax.Arg(a.name, self.fold(a.value), a.span) for a in e.args]
            out = syntax.Call(e.span, e.name, args, e.name_span)
        elif isinstance(e, syntax.ListExpr):
            out = syntax.ListExpr(e.span, [self.fold(i) for i in e.items])
        else:
            return e
        if names_in(out) or isinstance(out, (syntax.Call, syntax.ListExpr)) and not _is_function(out):
            return out
        try:
            return syntax.Literal(e.span, evaluate(out, Env({})))
        except SpecError:
            return out


def _is_function(e: syntax.Expr) -> bool:
    """min/max/int/round/floor/ceil evaluate to numbers; other calls (`linear(...)`) stay calls."""
    return isinstance(e, syntax.Call) and e.name in ("min", "max", "int", "round", "floor", "ceil")
