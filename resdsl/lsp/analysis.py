"""One document checked as `resdsl check` checks it, from the editor's text: the program, the
checked IR (when there is one), every error, and the syntax trees the other features read."""

from __future__ import annotations

import os
import time
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from resdsl.diagnostics import ResdslError, SpecError, SpecErrors
from resdsl.ir.graph import NetworkIR
from resdsl.ir.pipeline import load_network
from resdsl.lang import syntax
from resdsl.lang.imports import STDLIB, Program, display_path, load_program, normalize
from resdsl.lang.parser import parse_text


class ParseCache:
    """Parsed files by (display path, text): the standard library and unchanged imports are parsed
    once per server, not at every keystroke. A file's errors are cached too (raised again)."""

    def __init__(self, size: int = 64) -> None:
        self.size = size
        self._items: OrderedDict[tuple[str, str], syntax.Module | SpecError] = OrderedDict()

    def parse(self, text: str, path: str) -> syntax.Module:
        key = (path, text)
        item = self._items.get(key)
        if item is None:
            try:
                item = parse_text(text, path)
            except SpecError as err:
                item = err
            self._items[key] = item
            if len(self._items) > self.size:
                self._items.popitem(last=False)
        else:
            self._items.move_to_end(key)
        if isinstance(item, SpecError):
            raise item.with_traceback(None)  # not a traceback that grows at every raise
        return item


@dataclass
class Analysis:
    """What the server knows about one document after a check."""

    path: Path  # resolved
    text: str
    program: Program | None = None
    module: syntax.Module | None = None  # this document's syntax tree (None: it does not parse)
    ir: NetworkIR | None = None
    errors: list[ResdslError] = field(default_factory=list)
    seconds: float = 0.0  # wall clock of the check
    cpu_seconds: float = 0.0  # this process's CPU time for it (the wall clock less waiting on a busy machine)

    @property
    def display(self) -> str:
        return display_path(self.path)

    def modules(self) -> list[syntax.Module]:
        """Every parsed file of the program (imports first), or this document's alone."""
        if self.program is not None:
            return self.program.modules
        return [self.module] if self.module is not None else []


def analyze(path: Path, text: str, cache: ParseCache, sources: Mapping[Path, str] | None = None) -> Analysis:
    """Check `text` as the spec at `path` (imports resolved beside it; `sources`: other unsaved buffers)."""
    start, cpu = time.perf_counter(), time.process_time()
    path = Path(os.path.realpath(path))
    text = normalize(text)  # as a file is read: CRLF and a BOM from an editor's buffer
    result = Analysis(path, text)
    texts = dict(sources or {})
    texts[path] = text
    try:
        result.program = load_program(path, sources=texts, parse=cache.parse)
        result.module = result.program.modules[-1]
        if result.program.network is not None:
            result.ir = load_network(path, {}, result.program)
    except SpecErrors as err:
        result.errors = list(err.errors)
    except ResdslError as err:
        result.errors = [err]
    if result.module is None:
        try:
            result.module = cache.parse(text, display_path(path))
        except SpecError:
            pass
    result.seconds = time.perf_counter() - start
    result.cpu_seconds = time.process_time() - cpu
    return result


def resolve_display(shown: str) -> Path:
    """The file a span's display path names (`<std>/std.rd`, a path relative to the current folder)."""
    if shown.startswith("<std>/"):
        return STDLIB.resolve() / shown.removeprefix("<std>/")
    return Path(os.path.abspath(shown))
