"""The `nn.Sequential` containers a block's `name:` options make (`conv.0.0`, `conv.0.1`, ...):
built as one nested literal where their modules are made in one place, as torchvision writes
`nn.Sequential(nn.Conv2d(...), nn.BatchNorm2d(...), nn.ReLU6())`, and called whole in forward
where their modules run one after the other (`out = self.conv(x)`, not `self.conv[0][0](x)`, ...).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field


@dataclass(eq=False)
class Container:
    """One container of a block's class: `ref` is how Python reaches it from `self` (`conv[0]`)."""

    ref: str
    scope: list  # the __init__ lines it was made among: its modules made there go into its literal
    calls: list[str]  # the forward lines of that scope, where its modules are called
    head: str = ""  # the text around its literal: `self.conv = ` ... ``, `self.conv.add_module("0", ` ... `)`
    tail: str = ""
    children: list[str | Container] = field(default_factory=list)
    sealed: bool = False  # filled further by add_module lines elsewhere (an `if`): not whole in its literal
    open: bool = False  # may still be filled after the `if` that made it: never called whole

    @property
    def depth(self) -> int:
        return self.ref.count("[")

    def literal(self) -> str:
        return f"nn.Sequential({', '.join(c if isinstance(c, str) else c.literal() for c in self.children)})"

    def line(self) -> str:
        return f"{self.head}{self.literal()}{self.tail}"


def render(lines: list[str | Container]) -> list[str]:
    """__init__ lines with each container's literal written out."""
    return [line if isinstance(line, str) else line.line() for line in lines]


def dotted(ref: str) -> str:
    """`conv[0][1]` -> `conv.0.1`: a container's path as `name:` writes it."""
    return re.sub(r"\[(\d+)\]", r".\1", ref)


def call_whole(lines: list[str], containers: list[Container]) -> list[str]:
    """Forward lines with each run `out = self.c[0](src)`, `out = self.c[1](out)`, ... that calls all
    of a container's modules in order replaced by `out = self.c(src)`; the innermost first, so that
    `conv[0]`'s run becomes one call before `conv`'s is looked for."""
    for c in sorted(containers, key=lambda c: -c.depth):
        n = len(c.children)
        if n == 0 or c.sealed or c.open:
            continue
        first = re.compile(rf"(\s*)out = self\.{re.escape(c.ref)}\[0\]\((\w+)\)\Z")
        out: list[str] = []
        i = 0
        while i < len(lines):
            m = first.match(lines[i])
            rest = [f"{m.group(1)}out = self.{c.ref}[{k}](out)" for k in range(1, n)] if m else []
            if m and lines[i + 1 : i + n] == rest:
                out.append(f"{m.group(1)}out = self.{c.ref}({m.group(2)})")
                i += n
            else:
                out.append(lines[i])
                i += 1
        lines = out
    return lines


def last_of(bn: str, containers: dict[str, int | None]) -> str | None:
    """`{m}.conv[3]` -> `conv` where it is the last of `conv`'s modules in that branch."""
    m = re.fullmatch(r"\{m\}\.(.+)\[(\d+)\]", bn)
    if m is None or containers.get(dotted(m.group(1))) != int(m.group(2)) + 1:
        return None
    return m.group(1)
