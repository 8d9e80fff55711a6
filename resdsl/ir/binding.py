"""A block use bound to its template (resdsl.ir.template): the block a call names, or why none can be
used there (unknown, an op, recursive, too deep, too big), and the call's arguments matched to the
template's formals and evaluated. Reads templates and call expressions only, never a block's syntax."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from resdsl.diagnostics import Note, Span, SpecError, did_you_mean
from resdsl.ir.graph import ShortcutOption
from resdsl.ir.limits import MAX_CALL_DEPTH, MAX_OPS
from resdsl.ir.ops import OPS
from resdsl.ir.settings import SHORTCUT_CHOICES, check_shortcut
from resdsl.ir.template import BlockTemplate
from resdsl.ir.templating import Templates
from resdsl.lang.evaluate import Env, evaluate, source_text
from resdsl.lang.expr import Arg, Call, Expr
from resdsl.lang.values import Value, describe


@dataclass
class Bound:
    """A block call's evaluated arguments and its `shortcut:` option."""

    args: dict[str, Any]
    shortcut: ShortcutOption | None
    defaulted: set[str] = field(default_factory=set)  # arguments that took the block's default


@dataclass
class Reporter:
    """Where a use's errors go, each with the notes of the uses that led to it."""

    errors: list[SpecError]
    notes: list[Note]

    def error(self, message: str, span: Span | None, hint: str | None = None) -> None:
        self.errors.append(SpecError(message, span, hint, list(self.notes)))

    def eval(self, expr: Expr, env: Env) -> Value:
        """The value of `expr`, or None with its error reported."""
        try:
            return evaluate(expr, env)
        except SpecError as err:
            err.notes.extend(self.notes)
            self.errors.append(err)
            return None


def find_block(
    call: Call, templates: Templates, stack: list[str], ops_so_far: int, report: Reporter
) -> BlockTemplate | None:
    """The template `call` uses, called from the blocks in `stack`; None, reported, if it cannot be
    used. A call that would take the network past MAX_OPS raises."""
    name = call.name
    if not templates.has(name):
        if name in OPS:
            message = f"`{name}` is an op, not a block: write it without parentheses"
            report.error(message, call.name_span, f"e.g. `{OPS[name].example or name}`")
        else:
            hint = did_you_mean(name, templates.names()) or _known_blocks(templates.names())
            report.error(f"unknown block `{name}`", call.name_span, hint)
        return None
    if name in stack:
        chain = " -> ".join(stack[stack.index(name) :] + [name])
        hint = "blocks cannot be recursive; repeat them in a stage with `* n`"
        report.error(f"block `{name}` uses itself: {chain}", call.name_span, hint)
        return None
    if len(stack) >= MAX_CALL_DEPTH:
        chain = " -> ".join(stack[:3]) + " -> ... -> " + name
        message = f"blocks call blocks more than {MAX_CALL_DEPTH} levels deep ({chain})"
        report.error(message, call.name_span, "flatten the chain of blocks")
        return None
    size = templates.max_ops(name)
    if ops_so_far + size > MAX_OPS:
        raise SpecError(
            f"`{source_text(call)}` expands to {size:,} ops; the limit is {MAX_OPS:,}",
            call.span,
            "blocks that call blocks multiply their sizes; call fewer of them",
        )
    return templates.block(name)


def bind_block(
    template: BlockTemplate,
    call: Call,
    env: Env,
    defaults: Env,
    overrides: dict[str, Value],
    report: Reporter,
) -> Bound | None:
    """Bind `call`'s arguments (evaluated in `env`) to the template's formals; a formal not given
    takes an override (a stage's `stride: 1` after its first copy) or its default, evaluated in
    `defaults` with the arguments bound before it."""
    formals = template.formals
    names = [f.name for f in formals]
    positional = [a for a in call.args if a.name is None]
    where = f"`{template.signature}` is defined at {template.span}"
    if len(positional) > len(formals):
        count = f"{len(formals)} argument{'s' if len(formals) != 1 else ''} ({', '.join(names) or 'none'})"
        report.error(
            f"block `{template.name}` takes {count}, got {len(positional)}", positional[len(formals)].span, where
        )
        return None
    given: dict[str, Arg] = {f.name: a for f, a in zip(formals, positional)}
    shortcut: ShortcutOption | None = None
    ok = True
    for a in call.args:
        if a.name is None:
            continue
        if a.name == "shortcut" and "shortcut" not in names:
            value = report.eval(a.value, env)
            shortcut = check_shortcut(value)
            if shortcut is None:
                report.error(f"`shortcut` must be {SHORTCUT_CHOICES}, got {describe(value)}", a.value.span)
                ok = False
        elif a.name not in names:
            hint = did_you_mean(a.name, names) or f"its arguments: {', '.join(names) or 'none'}"
            if a.name == "name":  # `name:` places a block used inside a block; a stage names its own uses
                hint = f'{hint}; a stage names its blocks\' modules: `stage NAME(name: "features.#") = ...`'
            report.error(f"block `{template.name}` has no argument `{a.name}`", a.span, hint)
            ok = False
        elif a.name in given:
            report.error(f"argument `{a.name}` of `{template.name}` is given twice", a.span)
            ok = False
        else:
            given[a.name] = a
    if not ok:
        return None
    bound = Bound({}, shortcut)
    for f in formals:
        if f.name in overrides:
            bound.args[f.name] = overrides[f.name]
        elif f.name in given:
            bound.args[f.name] = report.eval(given[f.name].value, env)
        elif f.default is not None:
            bound.args[f.name] = report.eval(f.default, defaults.child(dict(bound.args)))
            bound.defaulted.add(f.name)
        else:
            report.error(f"block `{template.name}` needs its `{f.name}` argument", call.span, where)
            return None
    return bound


def _known_blocks(names: list[str]) -> str:
    names = sorted(names)
    if not names:
        return 'no blocks are defined: `import "std.rd"` for basic, bottleneck, ...'
    return "known blocks: " + ", ".join(names[:12]) + (" ..." if len(names) > 12 else "")
