"""How long does `resdsl lsp` take to re-check ResNet-152 as it is edited? A real server over stdio
(`resdsl lsp`), the spec opened, then edited (a comment appended, so the text differs each time):
the time from sending `didChange` to receiving its diagnostics, and the server's own time for the
check (which it logs), after a first, untimed check (start-up: imports, Lark's tables, std.rd parsed
once). Then the same check in this process with and without the server's cache of parsed files.

    .venv/bin/python benchmarks/lsp_recheck.py            # print the figures
    .venv/bin/python benchmarks/lsp_recheck.py --write    # and record them in docs/benchmarks.md
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import statistics
import sys
import time
from pathlib import Path

from _bench import machine, replace_section, report, resdsl_command
from lsprotocol import types
from pygls.lsp.client import LanguageClient

ROOT = Path(__file__).resolve().parent.parent
SECTION = "## Language server re-check (benchmarks/lsp_recheck.py)"
SPEC = ROOT / "specs" / "resnet152.rd"
TARGET_MS = 50.0


async def over_stdio(rounds: int) -> tuple[list[float], list[tuple[float, float]], float]:
    """(round trips, the server's own check times (wall, CPU), the first check's round trip), in ms."""
    client = LanguageClient("lsp-recheck", "1")
    published: asyncio.Queue = asyncio.Queue()
    logged: list[tuple[float, float]] = []

    @client.feature(types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
    def _diagnostics(params: types.PublishDiagnosticsParams) -> None:
        published.put_nowait((time.perf_counter(), params))

    @client.feature(types.WINDOW_LOG_MESSAGE)
    def _log(params: types.LogMessageParams) -> None:
        m = re.search(r"in ([0-9.]+) ms \(([0-9.]+) ms CPU\)", params.message)
        if m:
            logged.append((float(m.group(1)), float(m.group(2))))

    command = resdsl_command()
    await client.start_io(command[0], *command[1:], "lsp")
    await client.initialize_async(types.InitializeParams(capabilities=types.ClientCapabilities()))
    client.initialized(types.InitializedParams())
    uri, text = SPEC.as_uri(), SPEC.read_text()

    async def send(version: int, body: str, opening: bool = False) -> float:
        start = time.perf_counter()
        if opening:
            item = types.TextDocumentItem(uri=uri, language_id="resdsl", version=version, text=body)
            client.text_document_did_open(types.DidOpenTextDocumentParams(text_document=item))
        else:
            client.text_document_did_change(
                types.DidChangeTextDocumentParams(
                    text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=version),
                    content_changes=[types.TextDocumentContentChangeWholeDocument(text=body)],
                )
            )
        while True:
            at, params = await published.get()
            if params.version == version:
                assert not params.diagnostics, params.diagnostics
                return (at - start) * 1000

    first = await send(1, text, opening=True)
    trips = [await send(v, f"{text}# edit {v}\n") for v in range(2, rounds + 2)]
    await client.shutdown_async(None)
    client.exit(None)
    await client.stop()
    return trips, logged[1:], first


def in_process(rounds: int) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
    """The check in this process, (wall, CPU) in ms: with the server's parse cache warm, and with a
    fresh one each time."""
    from resdsl.lsp.analysis import ParseCache, analyze

    text, warm = SPEC.read_text(), ParseCache()
    analyze(SPEC, text, warm)
    cached, fresh = [], []
    for i in range(rounds):
        for cache, out in ((warm, cached), (ParseCache(), fresh)):
            a = analyze(SPEC, f"{text}# {i}\n", cache)
            out.append((a.seconds * 1000, a.cpu_seconds * 1000))
    return cached, fresh


def phases(rounds: int) -> dict[str, float]:
    """Where a warm re-check's CPU time goes (median ms): parse (the edited file; std.rd from the
    cache), lower (templates and the graph), passes (shapes, params, FLOPs, checks) and the recipe."""
    from resdsl.ir.lower import lower
    from resdsl.ir.passes import analyze as run_passes
    from resdsl.lang.imports import load_program
    from resdsl.lang.recipe import build_recipe
    from resdsl.lsp.analysis import ParseCache

    path, text, cache = SPEC.resolve(), SPEC.read_text(), ParseCache()
    load_program(path, text, parse=cache.parse)
    times: dict[str, list[float]] = {"parse": [], "lower": [], "passes": [], "recipe": []}
    clock = time.process_time
    for i in range(rounds):
        t0 = clock()
        program = load_program(path, f"{text}# {i}\n", parse=cache.parse)
        t1 = clock()
        ir = lower(program, {})
        t2 = clock()
        run_passes(ir)
        t3 = clock()
        build_recipe(program, ir.classes, ir.params, {})
        t4 = clock()
        for name, took in zip(times, (t1 - t0, t2 - t1, t3 - t2, t4 - t3)):
            times[name].append(took * 1000)
    return {name: statistics.median(v) for name, v in times.items()}


def _row(name: str, times: list[float], cpu: list[float] | None = None) -> str:
    q = statistics.quantiles(times, n=4)
    own = f"{statistics.median(cpu):.1f} ms" if cpu else ""
    return f"| {name} | {statistics.median(times):.1f} ms | {q[0]:.1f}-{q[2]:.1f} ms | {max(times):.1f} ms | {own} |"


def _pair(name: str, times: list[tuple[float, float]]) -> str:
    return _row(name, [w for w, _ in times], [c for _, c in times])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--write", action="store_true", help="record the figures in docs/benchmarks.md")
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    trips, server, first = asyncio.run(over_stdio(args.rounds))
    cached, fresh = in_process(args.rounds)
    split = phases(args.rounds)
    load_after = os.getloadavg()[0]
    median = statistics.median(trips)
    cpu = statistics.median(c for _, c in server)
    verdict = (
        "reached"
        if median < TARGET_MS
        else f"missed on the wall clock, {'reached' if cpu < TARGET_MS else 'missed'} in CPU time"
    )
    text = "\n".join(
        [
            SECTION,
            "",
            f"Measured by `benchmarks/lsp_recheck.py` on {machine()}; {args.rounds} edits of "
            f"`specs/resnet152.rd` (557 ops); load average {load_before:.1f} before and {load_after:.1f} after"
            " (the machine is shared with other sessions' builds and tests; above its core count, processes"
            " wait for a core).",
            "",
            "| re-check of ResNet-152 | median | quartiles | slowest | CPU time, median |",
            "|---|---:|---:|---:|---:|",
            _row("`didChange` -> its diagnostics, over stdio (what an editor waits)", trips),
            _pair("the server's own check (its log)", server),
            _pair("the same check in-process, the parse cache warm", cached),
            _pair("in-process, a fresh parse cache (std.rd parsed again)", fresh),
            "",
            f"The first check after start-up (imports done, Lark's tables loaded, std.rd parsed) took {first:.0f} ms."
            f" Target: a re-check under {TARGET_MS:.0f} ms inside the server after start-up: {verdict}"
            f" (median round trip {median:.1f} ms, the server's CPU time {cpu:.1f} ms a check). On a machine busier"
            " than it has cores the wall clock is mostly waiting for a core: compare the CPU column.",
            "",
            "Where a warm re-check's CPU time goes (median): "
            + ", ".join(f"{name} {ms:.1f} ms" for name, ms in split.items())
            + ". Cached in the server: the Lark parser (built once per process, its tables on disk), and every"
            " parsed file keyed by its text (std.rd and unchanged imports are not parsed again: the fresh-cache"
            " row shows what that saves); the edited file is parsed, lowered and checked anew each time.",
        ]
    )
    report(text, args.write, lambda t: replace_section(SECTION, t))


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
