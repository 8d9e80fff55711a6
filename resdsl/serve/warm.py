"""Imported once by the workers' forkserver (worker.py): the pipeline, the back ends and a first
analysis of a small spec, so that every forked worker starts with the parser and templates loaded."""

from __future__ import annotations

import gc

from resdsl.serve import analyze

WARM_UP = """\
import "std.rd"
network warm_up {
    input 3x8x8
    classes 2
    stem { conv 3x3, 4; bn; relu }
    stage s = basic(4) * 1
    head { avgpool global; fc classes }
}
"""


def _warm_up() -> None:
    req = analyze.Request(path="<warm-up>.rd", roots=(), text=WARM_UP, sets={})
    try:
        analyze.check(req)
        analyze.model(req)
    except Exception:  # only a head start; a real request reports any problem
        pass


_warm_up()
gc.freeze()  # what is loaded stays out of the workers' collections: fewer copy-on-write pages to fault in
