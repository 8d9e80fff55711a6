"""Facts about the residual sections ("slots") of block uses, read from the graph: what each
section does at each use (identity, zero-pad, projection, a written path, none), which the block's
class must then support."""

from __future__ import annotations

from dataclasses import dataclass, field

from resdsl.ir.graph import BlockInstance, NetworkIR, Residual


@dataclass
class SlotUse:
    """What one residual/dense section of a block does across all its uses (from the graph)."""

    kind: str  # "add" | "concat" | "mul"
    modes: set[str] = field(default_factory=set)  # "identity" | "pad" | "projection" | "none"
    survivals: set[float] = field(default_factory=set)
    by_shape: bool = True  # every use's shortcut is `identity_or_none` (identity where the body keeps the shape)

    @property
    def takes_downsample(self) -> bool:
        return bool(self.modes & {"pad", "projection"})

    @property
    def stochastic(self) -> bool:
        return any(p < 1.0 for p in self.survivals)

    @property
    def mixed_plain(self) -> bool:
        return "none" in self.modes and len(self.modes) > 1

    @property
    def decides_plain(self) -> bool:
        """Plain at some uses because the body changes the shape there: the class works out which
        from its own arguments (`self.use_shortcut = stride == 1 and in_channels == out`), as
        torchvision's InvertedResidual does, so its calls need no flag."""
        return self.mixed_plain and self.by_shape and self.modes == {"identity", "none"}

    @property
    def plain_flag(self) -> bool:
        """Whether the class takes a `plain` argument: plain at some uses, chosen by its callers."""
        return self.mixed_plain and not self.decides_plain


def residual_mode(ir: NetworkIR, r: Residual) -> str:
    if r.kind != "add":
        return r.kind  # "concat" | "mul"
    if r.path is not None:
        return "path"  # a `shortcut { }` written by hand: its modules live in the block's class
    if r.shortcut is None:
        return "none"
    return ir.op(r.shortcut).shortcut.mode


def instance_slots(ir: NetworkIR, inst: BlockInstance, by_node: dict[int, list[Residual]]) -> list[Residual]:
    """The residual/dense sections inside one block use, outermost first, in spec order."""
    nodes = set(inst.nodes)
    found = {r.id: r for n in inst.nodes for r in by_node.get(n, ())}
    rs = [r for r in found.values() if set(r.body) <= nodes]
    return sorted(rs, key=lambda r: (min(r.preact + r.body), -len(r.body)))


def residual_starts(ir: NetworkIR) -> dict[int, list[Residual]]:
    """First node of each residual's preact+body -> the residuals starting there (several where a
    section's body begins with another section: `residual { dense { ... }; ... }`)."""
    out: dict[int, list[Residual]] = {}
    for r in ir.residuals:
        out.setdefault(min(r.preact + r.body), []).append(r)
    return out
