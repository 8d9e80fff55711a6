"""The `resdsl` console script (and `python -m resdsl`): the command line of resdsl.cli.main, started
with the cyclic garbage collector off.

Importing networkx, lark, click and resdsl creates tens of thousands of objects that live as long as
the process; collecting garbage among them found none and took about 8% of a `resdsl info` run
(docs/benchmarks.md). The commands that check or write something and exit (resdsl.cli.main.QUICK:
check, info, compile, viz) keep it off; every other command turns it back on before it runs.
Imported as a library (the tests), resdsl.cli.main leaves the collector alone.
"""

from __future__ import annotations

import gc

gc.disable()

from resdsl.cli.main import main  # noqa: E402 - after the collector is off

__all__ = ["main"]
