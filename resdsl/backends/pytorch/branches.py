"""An `if` in a block's class: both branches written from the same state, then joined (BodyWriter's part
that writes `if`s; a mixin, so that it shares the writer's state without importing the writer)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from resdsl.backends.pytorch.names import Names
from resdsl.backends.pytorch.pyexpr import Translator, paren
from resdsl.backends.pytorch.sequential import Container, call_whole, last_of, render
from resdsl.ir.template import IfItem, Item


@dataclass
class _Branch:
    """What one branch of an `if` left: its lines and the writer's state after it."""

    init: list
    forward: list[str]
    channels: str
    fresh: bool
    last_bn: str | None
    taken: set[str]
    containers: dict[str, int | None]
    nodes: dict[str, Container]
    strides: list[str]
    spatial_known: bool


class BranchWriting:
    """The `if` statements of BodyWriter (resdsl.backends.pytorch.blocks), which holds the state used here."""

    # The writer's state this part reads and sets (BodyWriter.__init__ makes each).
    tr: Translator
    names: Names
    init: list
    forward: list[str]
    indent: int
    cur: str
    channels: str
    fresh: bool
    last_bn: str | None
    spatial_known: bool
    strides: list[str]
    containers: dict[str, int | None]
    nodes: dict[str, Container]
    made: list[Container]
    conditions: int
    body: Callable[[list[Item]], None]

    def conditional(self, item: IfItem) -> None:
        """`if` in a block: the test picks the modules built and, where the branches differ in forward,
        the lines run (then it is stored at construction: `self.cond1 = t != 1`)."""
        test = self.tr(item.test)
        entry = self.cur if self.cur != "out" else None  # the branches read `out`: `out = x` goes first
        self.cur = "out"
        before = (self.channels, self.fresh, self.last_bn, self.spatial_known)
        strides = list(self.strides)
        outer_init, outer_forward = self.init, self.forward
        taken, containers, nodes = set(self.names.taken), dict(self.containers), dict(self.nodes)
        branches: list[_Branch] = []
        for items in (item.then, item.orelse):  # each branch names modules afresh
            self.channels, self.fresh, self.last_bn, self.spatial_known = before
            self.strides = list(strides)
            self.names.taken, self.containers, self.nodes = set(taken), dict(containers), dict(nodes)
            self.init, self.forward = [], []
            self.indent += 1
            self.body(items)
            self.indent -= 1
            self.cur = "out"
            branches.append(_Branch(self.init, self.forward, self.channels, self.fresh, self.last_bn,
                                    self.names.taken, self.containers, self.nodes, self.strides,
                                    self.spatial_known))  # fmt: skip
        self.init, self.forward = outer_init, outer_forward
        then, orelse = branches
        self.names.taken = then.taken | orelse.taken
        self.containers = {  # a container both branches fill alike goes on as they left it
            c: n if orelse.containers.get(c, -1) == n else None
            for c, n in then.containers.items()
            if c in orelse.containers
        }
        for c in sorted(self.containers, key=lambda c: c.count(".")):  # and its container goes on, it last
            parent, _, place = c.rpartition(".")
            if parent and (self.containers.get(parent) is None or self.containers[parent] != int(place) + 1):
                self.containers[c] = None
        for c, n in self.containers.items():
            if n is not None:  # it may be filled further after the `if`: no branch calls it whole
                then.nodes[c].open = orelse.nodes[c].open = True
        self.nodes = {**then.nodes, **orelse.nodes}
        for b in branches:
            b.init = render(b.init)
            b.forward[:] = call_whole(b.forward, [c for c in self.made if c.calls is b.forward])
        self.spatial_known = then.spatial_known and orelse.spatial_known and then.strides == orelse.strides
        self.strides = then.strides
        self.fresh = then.fresh and orelse.fresh
        flag = self.names.get(f"cond{self.conditions + 1}")  # the stored test, where something reads it
        self.last_bn, bn_reads_flag = self.merged_last_bn(then, orelse, flag)
        same_forward = then.forward == orelse.forward
        if same_forward and then.channels == orelse.channels and not bn_reads_flag:
            self.names.taken.discard(flag)
            cond, negated = test, f"not {paren(test)}"
        else:
            self.conditions += 1
            self.init.append(f"self.{flag} = {test}")
            cond, negated = f"self.{flag}", f"not self.{flag}"
        if then.channels != orelse.channels:
            self.channels = f"({then.channels} if self.{flag} else {orelse.channels})"
        else:
            self.channels = then.channels
        if then.init:
            self.init += [f"if {cond}:"] + ["    " + line for line in then.init]
            if orelse.init:
                self.init += ["else:"] + ["    " + line for line in orelse.init]
        elif orelse.init:
            self.init += [f"if {negated}:"] + ["    " + line for line in orelse.init]
        pad = "    " * self.indent
        if same_forward:
            lines = [line[4:] for line in then.forward]
            if entry is not None and lines and lines[0].startswith(f"{pad}out = ") and lines[0].endswith("(out)"):
                lines[0], entry = lines[0][: -len("(out)")] + f"({entry})", None  # reads x itself
            self.forward += ([f"{pad}out = {entry}"] if entry is not None else []) + lines
            return
        if entry is not None:
            self.forward.append(f"{pad}out = {entry}")
        self.forward += [f"{pad}if {cond}:"] + (then.forward or [f"{pad}    pass"])
        if orelse.forward:
            self.forward += [f"{pad}else:"] + orelse.forward

    @staticmethod
    def merged_last_bn(then: _Branch, orelse: _Branch, flag: str) -> tuple[str | None, bool]:
        """The BN ending the residual branch after an `if`: the branches' own if they agree, the
        last module of their container where each ends it (`{m}.conv[-1]`), else the one built
        (then it reads the stored test: the second value says so)."""
        a, b = then.last_bn, orelse.last_bn
        if a == b or None in (a, b):
            return (a if a == b else None), False
        ends = [last_of(bn, branch.containers) for bn, branch in ((a, then), (b, orelse))]
        if ends[0] is not None and ends[0] == ends[1]:
            return f"{{m}}.{ends[0]}[-1]", False
        return f"({a} if {{m}}.{flag} else {b})", True
