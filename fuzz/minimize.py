"""Shrink a finding while it keeps its signature: `python -m fuzz.minimize CRASH.rd [-o OUT.rd]`.

Greedy delta debugging: remove chunks of lines, then of tokens, then of characters (halving the
chunk size down to one), drop comments and blank runs, replace numbers by smaller ones, keeping
every change after which `harness.check_one` still raises a Finding with the same signature.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path

from fuzz.harness import signature_of
from fuzz.mutate import tokens

WORD = re.compile(r"(?<![A-Za-z0-9_])[A-Za-z_][A-Za-z0-9_]*")  # a name, not the x of 3x3


def _ddmin(parts: list[str], joiner: str, keeps: Callable[[str], bool], deadline: float) -> list[str]:
    n = max(1, len(parts) // 2)
    while n >= 1 and time.monotonic() < deadline:
        i, changed = 0, False
        while i < len(parts) and time.monotonic() < deadline:
            trial = parts[:i] + parts[i + n :]
            if trial != parts and keeps(joiner.join(trial)):
                parts, changed = trial, True
            else:
                i += n
        if not changed:
            n //= 2
    return parts


def minimize(text: str, still_fails: Callable[[str], bool], seconds: float = 300) -> str:
    """The smallest text found for which `still_fails(text)` holds. Names are never glued or cut
    into new ones: every name in the result is a name of the input (so `param k` cannot become
    `paramk`, a syntax error, and the result stays readable)."""
    deadline = time.monotonic() + seconds
    names = set(WORD.findall(text))

    def keeps(trial: str) -> bool:
        return set(WORD.findall(trial)) <= names and still_fails(trial)

    for _ in range(3):  # to a fixed point: a smaller text may allow more removals
        before = text
        text = "\n".join(_ddmin(text.split("\n"), "\n", keeps, deadline))
        text = "".join(_ddmin(tokens(text), "", keeps, deadline))
        for pattern, repl in ((r"#[^\n]*", ""), (r"[ \t]+", " "), (r"\n\s*\n", "\n")):
            trial = re.sub(pattern, repl, text)
            if trial != text and keeps(trial):
                text = trial
        for m in reversed(list(re.finditer(r"\b\d{2,}\b", text))):  # smaller numbers read better
            for small in ("1", "2", "4", "8", "16"):
                trial = text[: m.start()] + small + text[m.end() :]
                if keeps(trial):
                    text = trial
                    break
        text = "".join(_ddmin(list(text), "", keeps, deadline))
        if text == before or time.monotonic() > deadline:
            break
    return text


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("crash", type=Path)
    parser.add_argument("-o", "--output", type=Path)
    parser.add_argument("--seconds", type=float, default=300)
    parser.add_argument("--max-ops", type=int, default=20_000)
    args = parser.parse_args(argv)
    text = args.crash.read_bytes().decode("utf-8", "surrogateescape")
    want = signature_of(text, max_ops=args.max_ops)
    if want is None:
        sys.exit(f"{args.crash}: no finding (the input satisfies the property)")
    print(f"signature: {want}", file=sys.stderr)
    small = minimize(text, lambda t: signature_of(t, max_ops=args.max_ops) == want, args.seconds)
    data = small.encode("utf-8", "surrogateescape")
    if args.output:
        args.output.write_bytes(data)
        print(f"wrote {args.output} ({len(data)} bytes)", file=sys.stderr)
    else:
        sys.stdout.write(small + ("" if small.endswith("\n") else "\n"))


if __name__ == "__main__":
    main()
