"""The cyclic garbage collector paused while a spec is parsed, lowered and checked."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def paused_gc() -> Iterator[None]:
    """No cyclic collections inside: a check allocates a syntax tree and an IR (hundreds of thousands
    of objects for a large spec) that stay alive to its end, so collections during it find little
    garbage and cost more the more is alive: with them a 1 MB spec took twice as long, growing faster
    than the spec. Reference counting still frees everything as usual; what cycles are left over are
    collected after, as the collector was (nested uses leave it to the outermost)."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
