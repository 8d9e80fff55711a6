"""Where a run computes: torchrun's processes (rank, world size) and the device each one trains on."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from typing import Any

from resdsl.diagnostics import InputError, UsageError

LAUNCHED = "RESDSL_NPROC"  # set by `resdsl train --nproc N` for the processes it starts
DEVICE = re.compile(r"(cpu|cuda)(:\d+)?")


class Dist:
    """torchrun's environment: rank, world size, local rank; a no-op when run alone."""

    def __init__(self) -> None:
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self.local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        self.local_world = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
        self.active = self.world > 1

    def start(self, device_type: str) -> None:
        if not self.active:
            return
        import torch.distributed as dist

        dist.init_process_group(backend="nccl" if device_type == "cuda" else "gloo")

    def all_reduce(self, device: Any) -> Callable[[Any], Any]:
        """A function summing a tensor over every process (through `device`); the identity when run alone."""
        import torch.distributed as dist

        def reduce(t):
            if not self.active:
                return t
            moved = t.to(device)
            dist.all_reduce(moved)
            return moved.to(t.device)

        return reduce

    def broadcast(self, obj: Any) -> Any:
        """Rank 0's `obj`, on every rank."""
        if not self.active:
            return obj
        import torch.distributed as dist

        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def barrier(self) -> None:
        if self.active:
            import torch.distributed as dist

            dist.barrier()

    def stop(self) -> None:
        if self.active:
            import torch.distributed as dist

            if dist.is_initialized():
                dist.destroy_process_group()

    def finish(self) -> None:
        """After a run that succeeded: every rank reaches the end before any tears down, since gloo aborts
        a process ("terminate called without an active exception") whose peer closes the connection under
        it. Not on failure: the others would wait here for a rank that is gone (torchrun stops them)."""
        self.barrier()


def check_device_name(requested: str | None) -> None:
    """--device's spelling, checked before torch is imported."""
    if requested is not None and not DEVICE.fullmatch(requested):
        raise UsageError(f"--device {requested}: use cpu, cuda or cuda:N")


def pick_device(requested: str | None, dist: Dist) -> Any:
    """The torch.device to run on: --device, else CUDA when there is one; under torchrun, the local rank's GPU."""
    import torch

    check_device_name(requested)
    if requested is None:
        requested = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(requested)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise InputError(f"--device {requested}: CUDA is not available here; use --device cpu")
        if dist.active or device.index is None:
            device = torch.device("cuda", dist.local_rank if dist.active else 0)
        torch.cuda.set_device(device)
    return device
