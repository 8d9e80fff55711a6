"""The network class laid out by the spec's `name:` options (resdsl.ir.modnames): every stem and
head op and every block use of a stage has a module path (decided in the IR: resdsl.ir.paths), and
the modules are built as a tree of `nn.Sequential` containers with exactly those paths, so the
state_dict has the keys the spec chose (torchvision's `features.0`, `classifier.6`, `features.denseblock1.denselayer1.norm1`).

Without any `name:` the default layout of resdsl.backends.pytorch.codegen applies (`conv1`,
`layerN.i`, `fc`). Forward calls a container whole where its modules run one after the other
in it, and its modules one by one otherwise.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from resdsl.backends.pytorch.names import reach
from resdsl.backends.pytorch.optable import ACTIVATION_MODULES, apply_text, behaviour, flatten_points, module_text
from resdsl.backends.pytorch.pyexpr import split_keyword
from resdsl.backends.pytorch.stagetable import stage_table
from resdsl.ir.graph import BlockInstance, Op
from resdsl.ir.paths import Entry, Node, container_tree, network_entries

if TYPE_CHECKING:
    from resdsl.backends.pytorch.context import GenContext


def _step(a: str, b: str, count: int) -> int | None:
    """How much an argument grows per use from `a` (the run's first) to `b` (its `count`-th next)."""
    if a == b:
        return 0
    if not (re.fullmatch(r"-?\d+", a) and re.fullmatch(r"-?\d+", b)) or (int(b) - int(a)) % count:
        return None
    return (int(b) - int(a)) // count


def _affine(start: str, step: int | None) -> str:
    """`start + step * i` as Python (`64 + 32 * i`, `i + 1`, `64`)."""
    if not step:
        return start
    if step == 1:
        return "i" if start == "0" else f"i + {start}"
    return f"{step} * i" if start == "0" else f"{start} + {step} * i"


def access(path: list[str]) -> str:
    """`self.features.denseblock1`, `self.features[3]`."""
    return reach(["self", *path])


class TreeWriter:
    """The network class's __init__ and forward lines for a named layout."""

    def __init__(self, gen: GenContext) -> None:
        self.gen = gen
        self.ir = gen.ir
        self.entries = network_entries(gen.ir)  # on the paths the IR decided (resdsl.ir.paths)
        self.root = container_tree(self.entries)
        self.position = {tuple(e.path): k for k, e in enumerate(self.entries)}  # a path -> its entry's place
        self.flatten_at = flatten_points([e.item if isinstance(e.item, Op) else None for e in self.entries])
        self.exprs: list[str] = []  # each entry's module, as Python
        fresh = False
        for e in self.entries:
            self.exprs.append(self.module(e, fresh))
            fresh = isinstance(e.item, Op) and not behaviour(e.item.kind).stateless  # may ReLU work in place?

    def module(self, e: Entry, fresh: bool) -> str:
        item = e.item
        if isinstance(item, BlockInstance):
            return self.gen.call(item, self.gen.in_channels(item))[0]
        if behaviour(item.kind).shared_in_place or item.kind in ACTIVATION_MODULES:
            return module_text(item.kind, {}, "", inplace=fresh)
        return self.gen.module_literal(item, item.in_shapes[0])

    def expr(self, e: Entry) -> str:
        return self.exprs[self.position[tuple(e.path)]]

    def init_lines(self) -> list[str]:
        lines: list[str] = []
        for name, child in self.root.children.items():
            lines += self.build(["self"], name, child)
        return lines

    def build(self, prefix: list[str], name: str, child: Node | Entry) -> list[str]:
        owner = reach(prefix)
        if isinstance(child, Entry):
            return [self.assign(owner, name, self.expr(child))]
        kids = list(child.children.items())
        if all(isinstance(c, Entry) for _, c in kids) and [k for k, _ in kids] == [str(i) for i in range(len(kids))]:
            items = ["    " + self.expr(c) + "," for _, c in kids]
            if name.isdigit():  # as ruff formats it
                inner = ["    " + line for line in items]
                return [f"{owner}.add_module(", f'    "{name}",', "    nn.Sequential(", *inner, "    ),", ")"]
            return [self.assign(owner, name, "nn.Sequential("), *items, ")"]
        lines = [self.assign(owner, name, "nn.Sequential()")]
        inner = reach([*prefix, name])
        k = 0
        while k < len(kids):
            count, table = stage_table(self.gen, kids, k, inner)
            if count:
                lines += table
                k += count
                continue
            run = self.run_at(kids, k)
            if run is None:
                lines += self.build([*prefix, name], *kids[k])
                k += 1
                continue
            count, label, call = run
            lines += [f"for i in range({count}):", f"    {inner}.add_module({label}, {call})"]
            k += count
        return lines

    def run_at(self, kids: list[tuple[str, Node | Entry]], k: int) -> tuple[int, str, str] | None:
        """A run of block uses from `kids[k]` that a loop builds (DenseNet's `denselayer1` ... `6`): the
        same class, names numbered one by one, each argument the same or growing by a constant step;
        its length, the name and the call as expressions of `i`."""

        def parts(j: int) -> tuple[str, int, tuple[str, ...], list[str]] | None:
            name, child = kids[j]
            m = re.fullmatch(r"(.*?)(\d+)", name)
            if not isinstance(child, Entry) or not isinstance(child.item, BlockInstance) or m is None:
                return None
            inst = child.item
            args = self.gen.call_args(inst, self.gen.in_channels(inst))[0]
            split = [split_keyword(a) for a in args]
            cls = self.gen.class_names[inst.definition]
            return m.group(1), int(m.group(2)), (cls, *(key for key, _ in split)), [v for _, v in split]

        first = parts(k)
        if first is None:
            return None
        stem, number, shape, values = first
        steps: list[int | None] = []
        count = 1
        while k + count < len(kids):
            nxt = parts(k + count)
            if nxt is None or nxt[:3] != (stem, number + count, shape):
                break
            diffs = [_step(a, b, count) for a, b in zip(values, nxt[3])]
            if None in diffs or (steps and diffs != steps):
                break
            steps, count = diffs, count + 1  # type: ignore[assignment]
        if count < 3:
            return None
        args = [_affine(v, d) for v, d in zip(values, steps)]
        keys = shape[1:]
        call = f"{shape[0]}({', '.join(f'{key}={a}' if key else a for key, a in zip(keys, args))})"
        label = f'f"{stem}{{{_affine(str(number), 1)}}}"' if stem else f"str({_affine(str(number), 1)})"
        return count, label, call

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
                leaves = [self.position[tuple(x.path)] for x in node.entries()]
                if leaves == list(range(k, k + len(leaves))) and self._whole(node):
                    step, target = len(leaves), e.path[:depth]
                    break
            if k in self.flatten_at:
                lines.append("x = torch.flatten(x, 1)")
            item = e.item if step == 1 else None
            lines.append(
                f"x = {apply_text(item.kind, access(target), 'x') if isinstance(item, Op) else access(target) + '(x)'}"
            )
            k += step
        return lines

    def _node(self, path: list[str]) -> Node:
        node = self.root
        for p in path:
            node = node.children[p]  # type: ignore[assignment]
        return node

    def _whole(self, node: Node) -> bool:
        """A container runs as one Sequential unless its modules need a flatten between them."""
        return not any(self.position[tuple(e.path)] in self.flatten_at for e in node.entries()[1:])
