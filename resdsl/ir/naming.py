"""Module names decided in the IR: the attribute every op of a block's class gets, and the
collisions that would make the generated module wrong or unbuildable, refused at `resdsl check`.

An unnamed op with a module of its own gets torchvision's name: `conv1`, `bn1`, ... always
numbered; `maxpool`, `avgpool`, `fc`, `dropout` numbered only where the class has several
(`attr_name`). `decide_block_names` writes that name into each `OpItem.attr` of a block template, in
the order the class builds its modules, so the code generator reads it instead of guessing.

A `name:` may not take a name the generated class gives another module (`relu`, `downsample`,
`conv1`, a block used inside the block), an attribute or method of `nn.Module` (`forward`,
`training`, `parameters`, `float`), a Python keyword, or begin with an underscore (dunders,
nn.Module's private state). Two ops of one class may share a name only in the two branches of an
`if` (one of them is built).
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from resdsl.diagnostics import Span, SpecError
from resdsl.ir.ops import ACTIVATIONS, REGISTRY, OpKind
from resdsl.ir.template import BlockTemplate, CallItem, IfItem, Item, OpItem, ResidualItem, walk

BASE_NAMES = {kind: rule.module for kind, rule in REGISTRY.items() if rule.module}  # kinds with a module of their own
OWN_MODULE = frozenset(BASE_NAMES)  # ReLU and the other activations share one stateless module per class


# What a generated block class stores besides its modules (its constructor's arguments and facts).
BLOCK_CLASS_FIELDS = frozenset({"in_channels", "out_channels", "stride", "extra", "units"})
_NUMBERED_FIELDS = re.compile(r"(downsample|survival|plain)\d*\Z|cond\d+\Z")  # per residual section / `if`


_FIELD_USES = {
    "downsample": "the residual's shortcut module (a projection or zero-padding, as torchvision names it)",
    "survival": "the stochastic-depth survival probability",
    "plain": "the flag of the plain counterpart (no shortcut)",
    "cond": "the flag of an `if`",
    "in_channels": "the block's input width",
    "out_channels": "the block's output width",
}


_NUMBERED = {rule.module for rule in REGISTRY.values() if rule.numbered}


def base_name(kind: OpKind) -> str:
    return BASE_NAMES.get(kind, kind.value)


def attr_name(base: str, totals: dict[str, int], counters: dict[str, int]) -> str:
    """torchvision's names: conv1, bn1, ... always numbered; maxpool, avgpool, fc, dropout only
    when their scope (a class) has several."""
    counters[base] = counters.get(base, 0) + 1
    if base in _NUMBERED or totals.get(base, 0) > 1:
        return f"{base}{counters[base]}"
    return base


def kind_totals(items: list[Item]) -> dict[str, int]:
    """How many modules of each base name a body writes itself (for numbering); a written shortcut's
    modules live in its own container and do not count."""
    totals: dict[str, int] = {}
    for item in _built(items):
        totals[base_name(item.kind)] = totals.get(base_name(item.kind), 0) + 1
    return totals


def _built(items: list[Item]) -> Iterator[OpItem]:
    """The op items of a body in the order its class builds them (preact, then body; both branches
    of an `if`), without a written shortcut's ops."""
    for item in items:
        if isinstance(item, OpItem):
            yield item
        elif isinstance(item, ResidualItem):
            yield from _built((item.preact or []) + item.body)
        elif isinstance(item, IfItem):
            yield from _built(item.then)
            yield from _built(item.orelse)


def decide_block_names(template: BlockTemplate) -> list[SpecError]:
    """Give every unnamed own-module op of a block its attribute (`OpItem.attr`) and check the
    `name:`s against those, the class's other names and each other."""
    totals = kind_totals(template.body)
    counters: dict[str, int] = {}
    generated: dict[str, str] = {}  # name -> what the class uses it for
    for item in _built(template.body):
        if item.module_name is None and item.kind in OWN_MODULE:
            item.attr = attr_name(base_name(item.kind), totals, counters)
            generated[item.attr] = f"the name resdsl gives the block's unnamed `{item.op}` at {_at(item.span)}"
        elif item.module_name is not None:
            item.attr = item.module_name
        elif item.kind in ACTIVATIONS:  # unnamed activations share one module per kind
            generated.setdefault(item.kind.value, f"the class's shared `{item.op}` module")
    for item in _calls(template.body):
        if item.module_name is None:
            generated.setdefault(item.block, f"the attribute of the block `{item.block}` used inside this one")
    errors: list[SpecError] = []
    # an unnamed placeholder keeps no position: its own error (ir/paths.py) says so, not the gap it leaves
    unplaced = any(
        isinstance(i, OpItem) and REGISTRY[i.kind].placeholder and not i.module_name for i in walk(template.body)
    )
    _check_scope(template.body, generated, {}, errors, None if unplaced else {})
    return errors


def _check_scope(
    items: list[Item],
    generated: dict[str, str],
    explicit: dict[str, list[OpItem | CallItem]],
    errors: list[SpecError],
    counts: dict[str, int | None] | None,
) -> None:
    """Check the `name:`s of one branch; `explicit` holds the names given before it (a path's first
    part -> the ops named under it), each `if` branch starting from the names before the `if`; `counts`
    the modules each container holds so far (None where an `if` makes it depend on the branch)."""
    for item in items:
        if isinstance(item, IfItem):
            before = {k: list(v) for k, v in explicit.items()}  # copies: a branch adds to explicit's lists
            for branch in (item.then, item.orelse):
                inner = {k: list(v) for k, v in before.items()}
                _check_scope(branch, generated, inner, errors, None if counts is None else dict(counts))
                for k, ops in inner.items():
                    explicit.setdefault(k, [])
                    explicit[k] += [op for op in ops if op not in explicit[k]]
            for op in walk(item.then + item.orelse) if counts is not None else ():  # containers the branches fill
                if isinstance(op, OpItem) and op.module_name and "." in op.module_name:
                    parts = op.module_name.split(".")
                    counts.update({".".join(parts[:k]): None for k in range(1, len(parts))})
        elif isinstance(item, ResidualItem):
            _check_scope((item.preact or []) + item.body, generated, explicit, errors, counts)
        elif isinstance(item, OpItem | CallItem) and item.module_name is not None:
            error = _collision(item, generated, explicit) or _position(item, counts)
            if error is not None:
                errors.append(error)
            explicit.setdefault(item.module_name.split(".")[0], []).append(item)


def _position(item: OpItem | CallItem, counts: dict[str, int | None] | None) -> SpecError | None:
    """A position in a block's container that is not the container's next (`conv.1` before any `conv.0`): the
    code generator numbers containers in the order their modules run. `counts` is updated (None: not checked)."""
    assert item.module_name is not None
    if counts is None or (isinstance(item, OpItem) and REGISTRY[item.kind].parameter):
        return None  # not checked, or a parameter, which no container holds (ir/paths.py says so)
    parts = item.module_name.split(".")
    for k in range(1, len(parts)):
        container, path = ".".join(parts[:k]), ".".join(parts[: k + 1])
        if path in counts and k < len(parts) - 1:
            continue  # a container already made at this position
        count = counts.setdefault(container, 0)
        if count is None or not parts[k].isdigit():
            return None  # an `if` decided it (the code generator says so), or not a position (checked elsewhere)
        if int(parts[k]) != count:
            return SpecError(
                f"bad module name {item.module_name!r}: `{container}` holds {count} module{'' if count == 1 else 's'} here, so its next is "
                f"`{container}.{count}`",
                item.module_name_span or _span(item),
                "a block's containers are numbered in the order their modules run; where the original holds "
                f'a module without parameters there, write `placeholder name: "{container}.{count}"`',
            )
        counts[container] = count + 1
        if k < len(parts) - 1:
            counts[path] = 0
    return None


def _collision(
    item: OpItem | CallItem, generated: dict[str, str], explicit: dict[str, list[OpItem | CallItem]]
) -> SpecError | None:
    assert item.module_name is not None
    parts = item.module_name.split(".")
    head, span = parts[0], item.module_name_span or _span(item)
    if head in BLOCK_CLASS_FIELDS or _NUMBERED_FIELDS.match(head):
        what = _FIELD_USES.get(head.rstrip("0123456789"), "one of the class's own fields")
        return SpecError(
            f"bad module name {item.module_name!r}: the generated class uses `{head}` for {what}",
            span,
            _rename_hint(item),
        )
    if head in generated:
        return SpecError(
            f"bad module name {item.module_name!r}: `{head}` is {generated[head]}", span, _rename_hint(item)
        )
    for other in explicit.get(head, []):
        assert other.module_name is not None
        containers = len(parts) > 1 and len(other.module_name.split(".")) > 1
        if not containers or other.module_name == item.module_name:
            return SpecError(
                f"two modules of one block are named {item.module_name!r}"
                if other.module_name == item.module_name
                else f"`{head}` names both a module and a container of this block",
                span,
                f"the other is at {_at(_span(other))}; names in the two branches of an `if` may repeat",
            )
    return None


def _calls(items: list[Item]) -> Iterator[CallItem]:
    for item in items:
        if isinstance(item, CallItem):
            yield item
        elif isinstance(item, ResidualItem):
            yield from _calls((item.preact or []) + item.body)


def _rename_hint(item: OpItem | CallItem) -> str:
    base = item.block if isinstance(item, CallItem) else base_name(item.kind)
    return f'choose another name, e.g. `name: "{base}_a"`'


def _span(item: OpItem | CallItem) -> Span:
    return item.call.span if isinstance(item, CallItem) else item.span


def _at(span: Span) -> str:
    return f"line {span.line}"
