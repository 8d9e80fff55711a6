"""The view-model of a generated model.py: its classes as lists of source lines, which
templates/model.py.j2 lays out (resdsl.backends.pytorch.layout finishes each class)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class BlockClass:
    name: str
    cite: list[str]  # comment lines: where the block is defined, as written
    signature: list[str]  # __init__ parameters after self
    init: list[str]
    forward: list[str]
    methods: list[str] = field(default_factory=list)  # further methods' lines, after forward


@dataclass
class ModelView:
    header: list[str]
    input_shape: str
    classes: int
    uses_math: bool
    uses_zero_pad: bool
    uses_projection: bool
    survival: list[str]  # the stochastic-depth helper's body lines, or []
    helpers: list[str]  # the classes of op kinds it uses that torch lacks (optable.HELPERS)
    blocks: list[BlockClass]
    network: BlockClass
    zero_init_default: str
    zero_init_doc: str  # what `zero_init_residual` does to this network
