"""The fused parser driver (resdsl.lang.fastparse) against Lark's own loop: on every spec of the
checkout, the fuzz regressions and seeds, and a few thousand mutants of them, it builds the same
syntax tree (spans included) and notes the same problems, or gives up exactly where Lark fails; and
parse_text's errors read the same with it on and off."""

from __future__ import annotations

import random
import sys
from functools import lru_cache
from pathlib import Path

import pytest

from resdsl.diagnostics import SourceFile, SpecError, SpecErrors
from resdsl.lang import parser

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from fuzz.mutate import mutate, seeds  # noqa: E402

MUTANTS = 3000


@lru_cache(maxsize=1)
def corpus() -> list[str]:
    files = [p for p in ROOT.rglob("*.rd") if ".venv" not in p.parts and "node_modules" not in p.parts]
    texts = [p.read_text(encoding="utf-8", errors="surrogateescape") for p in sorted(files)]
    texts += list(seeds().values())
    rng = random.Random(22)
    base = [t.encode("utf-8", "surrogateescape") for t in texts]
    for _ in range(MUTANTS):
        texts.append(mutate(rng.choice(base), 4096, rng).decode("utf-8", "surrogateescape"))
    texts += ["", "\n", ";", "# only a comment", "param", "param k = 1 +", "block b(x { }", '"a"']
    return texts


def run(use: str, text: str) -> tuple[str, object, list[str]]:
    """One parse by Lark's loop or the fused one: ("ok", tree, problems) or ("failed", type, [])."""
    lark, _, builder = parser._parser()
    fast = parser._fast()
    assert fast is not None
    with parser._LOCK:
        builder.reset(SourceFile("t.rd", text))
        try:
            tree = lark.parse(text) if use == "lark" else fast.parse(text)
        except Exception as exc:  # noqa: BLE001
            return "failed", type(exc).__name__, []
        finally:
            builder.extents = {}
        return "ok", tree, [f"{e.span} {e}" for e in builder.errors]


def test_same_trees_as_lark() -> None:
    fast_ok = 0
    for text in corpus():
        text = text.removeprefix("\ufeff")
        want = run("lark", text)
        got = run("fast", text)
        if want[0] == "ok":
            assert got == want, text
            fast_ok += 1
        else:
            assert got[0] == "failed", text
    assert fast_ok > 500  # most of the corpus parses, so the fused loop is what ran


def _outcome(text: str) -> str:
    try:
        module = parser.parse_text(text, "t.rd")
    except SpecError as exc:
        return _outcome_of(exc)
    except SpecErrors as exc:  # several at once (`bn.channels` read twice)
        return " || ".join(_outcome_of(e) for e in exc.errors)
    return repr(module)


def _outcome_of(exc: SpecError) -> str:
    return f"{type(exc).__name__} {exc.span} {exc} | {exc.hint} | {getattr(exc, 'at_start', None)}"


@pytest.mark.parametrize("seed", [1, 2])
def test_same_errors_as_lark(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = random.Random(seed)
    texts = rng.sample(corpus(), 600)
    for text in texts:
        monkeypatch.setattr(parser, "USE_FAST", False)
        want = _outcome(text)
        monkeypatch.setattr(parser, "USE_FAST", True)
        assert _outcome(text) == want, text
