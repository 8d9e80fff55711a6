"""What the writers of a generated file (blocks.py, stages.py, tree.py) may ask of the generator.

The writers take this protocol, not the generator class itself, so the code generator
(resdsl.backends.pytorch.codegen, which implements it) imports them and none of them imports it back.
"""

from __future__ import annotations

from typing import Protocol

from resdsl.backends.pytorch.slots import SlotUse
from resdsl.ir.graph import BlockInstance, NetworkIR, Op, Residual
from resdsl.ir.template import OpItem


class GenContext(Protocol):
    ir: NetworkIR
    class_names: dict[str, str]  # block -> its class's name
    slot_uses: dict[str, list[SlotUse]]  # block -> what each of its residual sections does across its uses
    block_params: dict[str, list[tuple[str, str]]]  # block -> (local, `local: hint = default`) of its class
    block_out: dict[str, str]  # block -> its output channels, an expression of its class's parameters
    stage_ready: set[str]  # blocks whose regular stages may use a make_stage method
    unit_of: dict[int, int]  # residual id -> stochastic-depth unit number (1-based)

    def ops_of(self, item: OpItem) -> list[Op]:
        """The ops every use of a block's op statement made."""
        ...

    def non_square(self, item: OpItem) -> bool: ...

    def global_at_some_use(self, item: OpItem) -> bool: ...

    def in_channels(self, inst: BlockInstance) -> int: ...

    def slots_of(self, inst: BlockInstance) -> list[Residual]: ...

    def linear_survival(self, r: Residual) -> bool: ...

    def locals_of(self, bname: str) -> dict[str, str]:
        """A block's formals -> their Python names in its class."""
        ...

    def call(self, inst: BlockInstance, in_channels: int, unit_var: str | None = None) -> tuple[str, int | None]:
        """The constructor call of one block use, and its output channels."""
        ...

    def call_args(
        self, inst: BlockInstance, in_channels: int, unit_var: str | None = None
    ) -> tuple[list[str], int | None]:
        """The arguments of that call, each as Python source (`"64"`, `"stride=2"`)."""
        ...

    def module_literal(self, op: Op, in_shape: tuple[int, ...]) -> str:
        """The module of one stem or head op."""
        ...
