"""The network class laid out by the spec's `name:` options (resdsl.ir.modnames): every stem and
head op and every block use of a stage gets a module path, and the modules are built as a tree of
`nn.Sequential` containers with exactly those paths, so the state_dict has the keys the spec
chose (torchvision's `features.0`, `classifier.6`, `features.denseblock1.denselayer1.norm1`).

Without any `name:` the default layout of resdsl.backends.pytorch.codegen applies (`conv1`,
`layerN.i`, `fc`). Forward calls a container whole where its modules run one after the other
in it, and its modules one by one otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from resdsl.backends.pytorch.names import Names, reach
from resdsl.backends.pytorch.optable import ACTIVATION_MODULES, behaviour, module_text
from resdsl.backends.pytorch.pyexpr import CodegenError
from resdsl.ir.graph import BlockInstance, NetworkIR, Op, Section
from resdsl.ir.modnames import fill
from resdsl.ir.naming import attr_name, base_name
from resdsl.ir.template import ResidualItem, walk

if TYPE_CHECKING:
    from resdsl.backends.pytorch.context import GenContext

_TAKEN = {"forward", "training", "modules", "children", "parameters", "state_dict", "in_channels", "units"}


@dataclass
class Entry:
    """One module of the network class, in forward order."""

    path: list[str]
    item: Op | BlockInstance
    section: Section


@dataclass
class Node:
    children: dict[str, Node | Entry] = field(default_factory=dict)

    def entries(self) -> list[Entry]:
        out: list[Entry] = []
        for child in self.children.values():
            out += child.entries() if isinstance(child, Node) else [child]
        return out


def named(ir: NetworkIR) -> bool:
    """Whether the spec names its modules (else the default layout)."""
    return any(s.module_name for s in ir.sections) or any(op.module_name for op in ir.ops() if op.scope.block is None)


def layout(ir: NetworkIR) -> tuple[list[Entry], Node]:
    """Every module of the network with its path, in forward order, and the container tree."""
    root = Node()
    entries: list[Entry] = []
    explicit = {op.module_name.split(".")[0] for op in ir.ops() if op.module_name and op.scope.block is None}
    explicit |= {s.module_name.split(".")[0] for s in ir.sections if s.module_name}
    defaults = Names(explicit | _TAKEN)
    kinds: dict[str, int] = {}
    for s in ir.sections:
        if s.kind != "stage":
            for op in _top_ops(ir, s):
                if op.module_name is None and s.module_name is None:  # default names: numbered among these
                    kinds[base_name(op.kind)] = kinds.get(base_name(op.kind), 0) + 1
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
                if not path.endswith(".#") or _has_sections(ir, inst.definition):
                    entries.append(_place(root, path, inst, s))
                    continue
                for n in inst.nodes:
                    entries.append(_place(root, path, ir.op(n), s))
            continue
        seen: set[int] = set()
        for n in s.nodes:
            op = ir.op(n)
            if op.scope.block is not None:
                if op.scope.block not in seen:
                    seen.add(op.scope.block)
                    inst = s.blocks[op.scope.block]
                    entries.append(_place(root, defaults.get(inst.definition), inst, s))
                continue
            path = op.module_name or s.module_name
            if path is None:
                path = defaults.get(attr_name(base_name(op.kind), kinds, counters))
            entries.append(_place(root, path, op, s))
    return entries, root


def _has_sections(ir: NetworkIR, block: str) -> bool:
    """Whether a block's template holds a residual, dense or gate section (used or not at this use)."""
    return any(isinstance(item, ResidualItem) for item in walk(ir.blocks[block].body))


def _top_ops(ir: NetworkIR, s: Section) -> list[Op]:
    return [ir.op(n) for n in s.nodes if ir.op(n).scope.block is None]


def _place(root: Node, path: str, item: Op | BlockInstance, s: Section) -> Entry:
    parts = path.split(".")
    node = root
    for k, part in enumerate(parts[:-1]):
        child = node.children.setdefault(part, Node())
        if isinstance(child, Entry):
            raise CodegenError(f"`{'.'.join(parts[: k + 1])}` names a module and a container of `{path}`")
        node = child
    last = parts[-1] if parts[-1] != "#" else str(len(node.children))
    parts[-1] = last
    if last in node.children:
        raise CodegenError(f"two modules are named `{'.'.join(parts)}` (check the `name:` options)")
    entry = Entry(parts, item, s)
    node.children[last] = entry
    return entry


def stage_modules(ir: NetworkIR) -> dict[str, tuple[str, str]]:
    """Each stage's label -> the paths of its first and last module (their input and output are
    the stage's): `layerN` for the default layout."""
    stages = [s for s in ir.sections if s.kind == "stage"]
    if not named(ir):
        return {f"layer{i}": (f"layer{i}", f"layer{i}") for i in range(1, len(stages) + 1)}
    entries, _ = layout(ir)
    out: dict[str, tuple[str, str]] = {}
    for s in stages:
        mine = [".".join(e.path) for e in entries if e.section is s]
        if mine:
            out[s.name] = (mine[0], mine[-1])
    return out


def access(path: list[str]) -> str:
    """`self.features.denseblock1`, `self.features[3]`."""
    return reach(["self", *path])


class TreeWriter:
    """The network class's __init__ and forward lines for a named layout."""

    def __init__(self, gen: GenContext) -> None:
        self.gen = gen
        self.ir = gen.ir
        self.entries, self.root = layout(gen.ir)
        self.exprs: dict[int, str] = {}
        self.index = {id(e): k for k, e in enumerate(self.entries)}
        fresh = False
        for e in self.entries:
            self.exprs[id(e)] = self.module(e, fresh)
            fresh = isinstance(e.item, Op) and not behaviour(e.item.kind).stateless  # may ReLU work in place?

    def module(self, e: Entry, fresh: bool) -> str:
        item = e.item
        if isinstance(item, BlockInstance):
            return self.gen.call(item, self.gen.in_channels(item))[0]
        if behaviour(item.kind).shared_in_place or item.kind in ACTIVATION_MODULES:
            return module_text(item.kind, {}, "", inplace=fresh)
        return self.gen.module_literal(item, item.in_shapes[0])

    def init_lines(self) -> list[str]:
        lines: list[str] = []
        for name, child in self.root.children.items():
            lines += self.build(["self"], name, child)
        return lines

    def build(self, prefix: list[str], name: str, child: Node | Entry) -> list[str]:
        owner = reach(prefix)
        if isinstance(child, Entry):
            return [self.assign(owner, name, self.exprs[id(child)])]
        kids = list(child.children.items())
        if all(isinstance(c, Entry) for _, c in kids) and [k for k, _ in kids] == [str(i) for i in range(len(kids))]:
            items = ["    " + self.exprs[id(c)] + "," for _, c in kids]
            if name.isdigit():  # as ruff formats it
                inner = ["    " + line for line in items]
                return [f"{owner}.add_module(", f'    "{name}",', "    nn.Sequential(", *inner, "    ),", ")"]
            return [self.assign(owner, name, "nn.Sequential("), *items, ")"]
        lines = [self.assign(owner, name, "nn.Sequential()")]
        for kid, c in kids:
            lines += self.build([*prefix, name], kid, c)
        return lines

    @staticmethod
    def assign(owner: str, name: str, expr: str) -> str:
        if not name.isdigit():
            return f"{owner}.{name} = {expr}"
        return f'{owner}.add_module("{name}", {expr})'

    def forward_lines(self) -> list[str]:
        lines: list[str] = []
        k = 0
        while k < len(self.entries):
            e = self.entries[k]
            step, target = 1, e.path
            for depth in range(1, len(e.path)):
                node = self._node(e.path[:depth])
                leaves = [self.index[id(x)] for x in node.entries()]
                if leaves == list(range(k, k + len(leaves))) and self._whole(node):
                    step, target = len(leaves), e.path[:depth]
                    break
            if self._flattens(e):
                lines.append("x = torch.flatten(x, 1)")
            lines.append(f"x = {access(target)}(x)")
            k += step
        return lines

    def _node(self, path: list[str]) -> Node:
        node = self.root
        for p in path:
            node = node.children[p]  # type: ignore[assignment]
        return node

    def _whole(self, node: Node) -> bool:
        """A container runs as one Sequential unless an fc after its first module needs a flatten."""
        return not any(self._flattens(e) for e in node.entries()[1:])

    @staticmethod
    def _flattens(e: Entry) -> bool:
        return isinstance(e.item, Op) and behaviour(e.item.kind).flattens and len(e.item.in_shapes[0]) > 1
