"""Module paths, decided once in the IR: where every block use and every op with a module of its own
lives in the generated network's module tree, the name `model.get_submodule(path)` takes and the
prefix of its state_dict keys (`layer2.0.bn1`, `features.denseblock1.denselayer1.norm1`).

`decide_paths` runs at the end of lowering, before any code is written; the code generator, `module_paths`,
`--verify`, `weights`, `responses` and `maps` all read what it wrote (`Op.path`, `BlockInstance.path`,
`Section.path`, `CallItem.attr`, `ResidualItem.shortcut_attr`), so they cannot disagree.

The network's own modules follow one of two layouts. The default one is torchvision's ResNet: the stem
and head ops by kind (`conv1`, `bn1`, `maxpool`, `fc`), a block used there by its name, stage k a
Sequential `layer{k}` of its block uses. Where the spec names modules (`name:` on a stem or head op, a
stage, the stem or head as a whole: resdsl.ir.modnames) every module takes the path it names, the
others default names that avoid those, and containers are made as the paths need. Inside a block,
each op's attribute comes from resdsl.ir.naming (`OpItem.attr`); a block used inside a block is its
caller's attribute named after it; a written `shortcut { }` is a Sequential `downsample` of the ops it
ran. Two modules on one path, or a path that is both a module and a container, are located errors.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from resdsl.diagnostics import SpecError
from resdsl.ir.graph import BlockInstance, NetworkIR, Op, Role, Section
from resdsl.ir.modnames import MODULE_ATTRIBUTES, fill
from resdsl.ir.naming import OWN_MODULE, attr_name, base_name
from resdsl.ir.ops import ACTIVATIONS, REGISTRY
from resdsl.ir.pynames import Names, safe_local
from resdsl.ir.template import BlockTemplate, CallItem, IfItem, Item, OpItem, ResidualItem, walk

# What a named layout's default names avoid besides the spec's names: nn.Module's own attributes and
# what the generated network class stores (`in_channels`, `units` for its make_stage methods).
_TAKEN = MODULE_ATTRIBUTES | {"in_channels", "units"}


@dataclass
class Entry:
    """One module of the network class, in forward order: its path and what it runs."""

    path: list[str]
    item: Op | BlockInstance
    section: Section


@dataclass
class Node:
    """A container of the network class (the root, `features`, `features.denseblock1`)."""

    children: dict[str, Node | Entry] = field(default_factory=dict)

    def entries(self) -> list[Entry]:
        out: list[Entry] = []
        for child in self.children.values():
            out += child.entries() if isinstance(child, Node) else [child]
        return out


def decide_paths(ir: NetworkIR) -> list[SpecError]:
    """Write every module's path into the IR; the collisions found, as located errors."""
    for template in ir.blocks.values():
        _name_calls_and_shortcuts(template, ir.blocks)
    errors: list[SpecError] = []
    for template in ir.blocks.values():
        errors += _parameters_in_containers(template) + _placeholders_outside(template)
    if named_layout(ir):
        _named_layout(ir, errors)
    else:
        _default_layout(ir)
        for op in ir.ops():  # a stem's or head's placeholder, in no container
            if op.scope.block is None and REGISTRY[op.kind].placeholder:
                errors.append(SpecError(_placeholder_problem(op.kind.value, None), op.span, _PLACEHOLDER_HINT))
    keyed: dict[str, dict[str, Item]] = {}
    for section in ir.sections:
        for inst in section.blocks:
            if inst.path is not None:
                _inside(ir, inst, keyed)
    return errors


def named_layout(ir: NetworkIR) -> bool:
    """Whether the spec names its network's modules (else the default layout)."""
    return any(s.module_name for s in ir.sections) or any(op.module_name for op in ir.ops() if op.scope.block is None)


def network_entries(ir: NetworkIR) -> list[Entry]:
    """The network class's own modules with their decided paths, in forward order: stem and head ops
    and block uses; a stage's block uses, or their ops where a stage lays its blocks out op by op."""
    out: list[Entry] = []
    for s in ir.sections:
        for item in section_items(ir, s):
            if isinstance(item, BlockInstance) and item.path is None:  # laid out op by op (`features.#`)
                out += [Entry(ir.op(n).path.split("."), ir.op(n), s) for n in item.nodes]  # type: ignore[union-attr]
            elif item.path is not None:
                out.append(Entry(item.path.split("."), item, s))
    return out


def container_tree(entries: list[Entry]) -> Node:
    """The containers that the entries' paths make, each holding its modules in forward order."""
    root = Node()
    for e in entries:
        node = root
        for part in e.path[:-1]:
            node = node.children.setdefault(part, Node())  # type: ignore[assignment]
        node.children[e.path[-1]] = e
    return root


def section_items(ir: NetworkIR, s: Section) -> list[Op | BlockInstance]:
    """A section's ops outside blocks and its block uses, in forward order (empty uses left out)."""
    items: list[Op | BlockInstance] = []
    seen: set[int] = set()
    for n in s.nodes:
        op = ir.op(n)
        if op.scope.block is None:
            items.append(op)
        elif op.scope.block not in seen:
            seen.add(op.scope.block)
            items.append(s.blocks[op.scope.block])
    return items


def module_paths(ir: NetworkIR) -> dict[int, str]:
    """op id -> module path, for every op whose kind owns a module (a conv, BN, fc, pool or dropout)."""
    return {op.id: op.path for op in ir.ops() if op.path is not None and op.kind in OWN_MODULE}


def stage_modules(ir: NetworkIR) -> dict[str, tuple[str, str]]:
    """Each stage's label -> the paths of its first and last module (their input and output are the
    stage's): `layerN` itself in the default layout, the stage's name in a named one."""
    out: dict[str, tuple[str, str]] = {}
    for s in ir.sections:
        if s.kind != "stage":
            continue
        if s.path is not None:
            out[s.path] = (s.path, s.path)
            continue
        mine = [".".join(e.path) for e in network_entries(ir) if e.section is s]
        if mine:
            out[s.name] = (mine[0], mine[-1])
    return out


# ---------------------------------------------------------------- the network's modules


def _kind_totals(ir: NetworkIR) -> dict[str, int]:
    """How many stem and head ops of each base name take a default name (`attr_name` numbers them)."""
    totals: dict[str, int] = {}
    for s in ir.sections:
        if s.kind != "stage" and s.module_name is None:
            for n in s.nodes:
                op = ir.op(n)
                if op.scope.block is None and op.module_name is None:
                    totals[base_name(op.kind)] = totals.get(base_name(op.kind), 0) + 1
    return totals


def _default_layout(ir: NetworkIR) -> None:
    """torchvision's ResNet: `conv1`, `bn1`, `maxpool`, `layer1` ... `layer4` of block uses, `fc`."""
    names = Names(set())
    totals = _kind_totals(ir)
    counters: dict[str, int] = {}
    stage_no = 0
    for s in ir.sections:
        if s.kind == "stage":
            stage_no += 1
            s.path = names.get(f"layer{stage_no}")
            for j, inst in enumerate(i for i in s.blocks if i.nodes):  # the Sequential's elements, in order
                inst.path = f"{s.path}.{j}"
            continue
        for item in section_items(ir, s):
            if isinstance(item, BlockInstance):
                item.path = names.get(safe_local(item.definition))
            elif item.kind in OWN_MODULE:
                item.path = names.get(attr_name(base_name(item.kind), totals, counters))


def _named_layout(ir: NetworkIR, errors: list[SpecError]) -> None:
    """Every module on the path its `name:` (or its stage's or section's) chose; the others on default
    names that avoid those; containers as the paths need them."""
    root = Node()
    explicit = {op.module_name.split(".")[0] for op in ir.ops() if op.module_name and op.scope.block is None}
    explicit |= {s.module_name.split(".")[0] for s in ir.sections if s.module_name}
    defaults = Names(explicit | _TAKEN)
    totals = _kind_totals(ir)
    counters: dict[str, int] = {}
    stage_no = 0
    for s in ir.sections:
        if s.kind == "stage":
            stage_no += 1
            pattern = s.module_name or f"layer{stage_no}.{{i}}"
            for i, inst in enumerate(s.blocks):
                if not inst.nodes:
                    continue  # an empty block is the identity: nothing to build
                path = fill(pattern, i)
                # `features.#`: a plain chain of ops takes a position per module (VGG's conv_relu), a block
                # with a residual, dense or gate section one position as a whole (MobileNetV2's blocks)
                if not path.endswith(".#") or _has_sections(ir.blocks[inst.definition]):
                    _place(root, path, inst, s, errors)
                    continue
                for n in inst.nodes:
                    _place(root, path, ir.op(n), s, errors)
            continue
        for item in section_items(ir, s):
            if isinstance(item, BlockInstance):
                _place(root, defaults.get(item.definition), item, s, errors)
                continue
            path = item.module_name or s.module_name
            if path is None:
                path = defaults.get(attr_name(base_name(item.kind), totals, counters))
            _place(root, path, item, s, errors)
    if not errors:
        _reached_positions(root, [], errors)


_PARAMETER_HINT = 'give it one attribute name (`name: "layer_scale"`, as torchvision\'s ConvNeXt)'


def _parameter_problem(op: str, path: str) -> str:
    return f"`{op}` is a parameter of its class, not a module: it cannot be `{path}`, inside a container"


_PLACEHOLDER_HINT = (
    'name the position it keeps, e.g. `name: "block.1"`, where the original holds a module without '
    "parameters (ConvNeXt's Permute)"
)


def _placeholder_problem(op: str, path: str | None) -> str:
    where = "it has no `name:` placing it in one" if path is None else f"`{path}` is not in one"
    return f"`{op}` keeps a position in a container, but {where}"


def _placeholders_outside(template: BlockTemplate) -> list[SpecError]:
    """A placeholder (nn.Identity) of a block that is no position of a container: it would keep nothing."""
    errors = []
    for item in walk(template.body):
        if isinstance(item, OpItem) and REGISTRY[item.kind].placeholder and "." not in (item.module_name or ""):
            path = item.module_name
            errors.append(SpecError(_placeholder_problem(item.op, path), item.span, _PLACEHOLDER_HINT))
    return errors


def _parameters_in_containers(template: BlockTemplate) -> list[SpecError]:
    """A bare parameter (a layer scale) named into a container of a block, or in a written `shortcut { }`
    (an nn.Sequential, which holds modules only)."""
    errors = []
    for item in walk(template.body):
        if isinstance(item, OpItem) and REGISTRY[item.kind].parameter and item.module_name and "." in item.module_name:
            span = item.module_name_span or item.span
            errors.append(SpecError(_parameter_problem(item.op, item.module_name), span, _PARAMETER_HINT))
        if isinstance(item, ResidualItem) and item.shortcut:
            for op in walk(item.shortcut):
                if isinstance(op, OpItem) and REGISTRY[op.kind].parameter:
                    errors.append(
                        SpecError(
                            f"`{op.op}` is a parameter, not a module: a written `shortcut {{ }}` (an nn.Sequential) "
                            "cannot hold it",
                            op.span,
                            "scale the body instead",
                        )
                    )
    return errors


def _has_sections(template: BlockTemplate) -> bool:
    """Whether a block's template holds a residual, dense or gate section (used or not at this use)."""
    return any(isinstance(item, ResidualItem) for item in walk(template.body))


def _place(root: Node, path: str, item: Op | BlockInstance, s: Section, errors: list[SpecError]) -> None:
    """Put a module on its path (a last `#`: the next position of its container)."""
    parts = path.split(".")
    node = root
    span = item.call_span if isinstance(item, BlockInstance) else item.module_name_span or item.span
    for k, part in enumerate(parts[:-1]):
        child = node.children.setdefault(part, Node())
        if isinstance(child, Entry):
            errors.append(
                SpecError(
                    f"`{'.'.join(parts[: k + 1])}` names both a module and a container of `{path}`",
                    span,
                    f"the module is {_what(child)}; give one of them another name",
                )
            )
            return
        node = child
    if parts[-1] == "#":
        parts[-1] = str(len(node.children))
    if isinstance(item, Op) and REGISTRY[item.kind].placeholder and len(parts) == 1:
        errors.append(SpecError(_placeholder_problem(item.kind.value, parts[0]), span, _PLACEHOLDER_HINT))
        return
    if isinstance(item, Op) and REGISTRY[item.kind].parameter and len(parts) > 1:
        hint = _PARAMETER_HINT + ", or put it in a block"
        errors.append(SpecError(_parameter_problem(item.kind.value, ".".join(parts)), span, hint))
        return
    other = node.children.get(parts[-1])
    if other is not None:
        what = f"the module is {_what(other)}" if isinstance(other, Entry) else "it holds other modules"
        errors.append(
            SpecError(
                f"two modules of the network are named `{'.'.join(parts)}`",
                span,
                f"{what}; give one of them another name (`name:`)",
            )
        )
        return
    entry = Entry(parts, item, s)
    node.children[parts[-1]] = entry
    item.path = ".".join(parts)


def _reached_positions(node: Node, prefix: list[str], errors: list[SpecError]) -> None:
    """A position of a container that holds names too, or that holds names itself, is reached by index in the
    generated code (`self.features[0]`, `self.a[1].x = ...`): nn.Sequential's k-th module, which must then be
    the one named `k` (a located error where it is not; positions of containers of positions may skip)."""
    mixed = any(not key.isdigit() for key in node.children)
    for index, (key, child) in enumerate(node.children.items()):
        inner = isinstance(child, Node) and any(not k.isdigit() for k in child.children)
        if key.isdigit() and int(key) != index and (mixed or inner) and prefix:
            container = ".".join(prefix)
            first = child if isinstance(child, Entry) else child.entries()[0]
            item = first.item
            span = item.call_span if isinstance(item, BlockInstance) else item.module_name_span or item.span
            errors.append(
                SpecError(
                    f"`{'.'.join(first.path)}`: `{container}` holds {index} module{'' if index == 1 else 's'} "
                    f"before it, so its position is `{container}.{index}`, not `{container}.{key}`",
                    span,
                    "a container's positions number its modules from 0 in the order they are placed, names included",
                )
            )
            return
        if isinstance(child, Node):
            _reached_positions(child, [*prefix, key], errors)


def _what(entry: Entry) -> str:
    """`the `conv` at line 4`, for a message about a module already placed."""
    item = entry.item
    if isinstance(item, BlockInstance):
        return f"the use of `{item.definition}` at line {item.call_span.line}"
    return f"the `{item.kind.value}` at line {item.span.line}"


# ---------------------------------------------------------------- inside block uses


def _name_calls_and_shortcuts(template: BlockTemplate, blocks: dict[str, BlockTemplate]) -> None:
    """The attribute of each block used inside this one (named after the block, `_` added while taken)
    and of each written shortcut's Sequential (`downsample`, numbered by section where there are several)."""
    taken = {item.attr for item in walk(template.body) if isinstance(item, OpItem) and item.attr}
    taken |= {item.kind.value for item in walk(template.body) if isinstance(item, OpItem) and item.kind in ACTIVATIONS}
    taken |= {item.module_name for item in walk(template.body) if isinstance(item, CallItem) and item.module_name}
    names = Names({name.split(".")[0] for name in taken})
    for item in walk(template.body):
        if isinstance(item, CallItem):  # a `name:` as given (checked with the ops' names), else the block's
            item.attr = item.module_name or names.get(safe_local(item.block))
    total = _slot_count(template.body, blocks, (template.name,))
    slot = 0
    for item in _preorder(template.body, blocks, (template.name,)):
        if isinstance(item, ResidualItem):
            slot += 1
            if item.shortcut is not None:
                item.shortcut_attr = "downsample" + (str(slot) if total > 1 else "")
        else:
            slot += item  # a call: its callee's sections are numbered among this block's


def _preorder(items: list[Item], blocks: dict[str, BlockTemplate], stack: tuple[str, ...]) -> Iterator:
    """This block's sections in the order the class numbers them (a section before what it holds,
    both branches of an `if`), and for each call the number of sections its callee holds."""
    for item in items:
        if isinstance(item, ResidualItem):
            yield item
            yield from _preorder((item.preact or []) + item.body, blocks, stack)
        elif isinstance(item, IfItem):
            yield from _preorder(item.then, blocks, stack)
            yield from _preorder(item.orelse, blocks, stack)
        elif isinstance(item, CallItem) and item.block in blocks and item.block not in stack:
            yield _slot_count(blocks[item.block].body, blocks, (*stack, item.block))


def _slot_count(items: list[Item], blocks: dict[str, BlockTemplate], stack: tuple[str, ...]) -> int:
    return sum(1 if isinstance(x, ResidualItem) else x for x in _preorder(items, blocks, stack))


def _inside(ir: NetworkIR, inst: BlockInstance, keyed: dict[str, dict[str, Item]]) -> None:
    """The paths of a block use's nested uses and of its ops, under the use's own path; `keyed` holds
    each template's items by key, found once per template."""
    assert inst.path is not None
    items = keyed.get(inst.definition)
    if items is None:
        body = ir.blocks[inst.definition].body
        items = keyed[inst.definition] = {
            item.key: item for item in walk(body) if isinstance(item, OpItem | CallItem | ResidualItem)
        }
    nested: set[int] = set()
    for child in inst.children:
        call = items.get(child.origin)
        if isinstance(call, CallItem) and call.attr is not None:
            child.path = f"{inst.path}.{call.attr}"
            nested.update(child.nodes)
            _inside(ir, child, keyed)
    for node in inst.nodes:
        op = ir.op(node)
        if node in nested:
            continue
        if op.role is Role.SHORTCUT:  # a written shortcut's Sequential holds one module per op that ran
            r = ir.residuals[op.residual] if op.residual is not None else None
            section = items.get(ir.op(r.merge).origin) if r is not None and r.merge is not None else None
            if isinstance(section, ResidualItem) and section.shortcut_attr and r is not None and r.path:
                op.path = f"{inst.path}.{section.shortcut_attr}.{r.path.index(node)}"
            continue
        item = items.get(op.origin)
        if isinstance(item, OpItem) and item.attr is not None:
            op.path = f"{inst.path}.{item.attr}"
