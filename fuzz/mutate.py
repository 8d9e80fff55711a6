"""The seed corpus and a spec-aware mutator, shared by fuzz/run.py (atheris's custom mutator) and
tests/test_fuzz_corpus.py (a fixed-seed loop without atheris).

Seeds: every spec in specs/ as written, plus two variants of each: `small-` (repeat counts and
params shrunk, expects and comments dropped: cheap to compile and verify) and `inline-small-`
(the same with std.rd's text in place of `import "std.rd"`, so that mutations reach the block
definitions the code generator turns into classes).

Mutations, 1 to 4 stacked per input: numbers swapped for edge values or neighbours, names
swapped for other names of the spec or for names that could clash in generated Python, shortcut
and other option words swapped, lines dropped, duplicated, swapped or spliced in from another
seed, statements and keyword arguments inserted into bodies and calls, tokens deleted,
duplicated or swapped, names, strings and numbers made long, and bytes mutated (libFuzzer's own
mutator under atheris, a simple one otherwise).
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SPECS = ROOT / "specs"

TOKEN = re.compile(
    r"\s+|#[^\n]*|[A-Za-z_][A-Za-z0-9_]*|\d+(?:x\d+)+|(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?[KMG]?|\"[^\"\n]*\"|\*\*|//|[=!<>~]=|."
)
NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
NUMBER = re.compile(r"(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?[KMG]?")
SIZE = re.compile(r"\d+(?:x\d+)+")

NUMBERS = [
    "0", "1", "2", "3", "4", "5", "7", "8", "15", "16", "31", "32", "33", "64", "100", "1000", "4096", "65536",
    "65537", "1048576", "99999", "1e18", "1e19", "9e17", "0.5", "1.5", "2.0", "0.0", "1e-4", "1e-30", "1K", "1.7M",
    "4G", ".5", "3.", "00", "-1", "-0",
]  # fmt: skip
SIZES = ["1x1", "2x2", "3x3", "5x5", "7x7", "1x3", "3x1", "0x0", "1x0", "3x32x32", "1x1x1", "3x8x8", "3x224x224",
         "1x65536x1", "65536x65536", "2x3x4x5", "3x7x5", "9x1x1"]  # fmt: skip
OPTION_GROUPS = [
    ["A", "B", "C", "none", "identity", "dense"],
    ["conv", "conv_bn", "bn", "relu", "fc", "dropout", "maxpool", "avgpool"],
    ["residual", "dense", "preact", "stem", "head"],
    ["first", "middle", "last"],
    ["global", "linear", "classes", "layers", "params", "flops"],
    ["true", "false"],
    ["==", "!=", "<", ">", "<=", ">=", "~="],
    ["+", "-", "*", "/", "//", "%", "**"],
]
# Names that the generated Python itself uses: a spec name equal to one of them must not clash.
PY_NAMES = [
    "self", "x", "out", "nn", "torch", "F", "math", "in_channels", "out_channels", "downsample", "survival", "plain",
    "build_model", "forward", "__init__", "make_stage", "make_basic_stage", "layer1", "layer2", "conv1", "bn1",
    "relu", "fc", "units", "unit", "blocks", "layers", "num_classes", "ZeroPadShortcut", "projection",
    "survival_probability", "INPUT_SHAPE", "NUM_CLASSES", "class", "def", "lambda", "None", "True", "False", "match",
    "case", "type", "_", "__", "__class__", "__dict__", "Block", "BasicBlock", "Basic", "super", "int", "float",
    "range", "print", "__import__", "exec", "object", "tuple", "nn_Module", "Tensor", "stride", "width", "shortcut",
    "zero_init_residual", "init_weights", "modules", "training", "p", "k", "n", "stem", "head", "pool2", "basic",
    "bottleneck", "dense_layer", "transition", "mlpconv", "conv_relu", "preact_basic", "preact_bottleneck",
    "def_", "x_", "self_", "class_", "stride_", "in_channels_",
]  # fmt: skip
SNIPPETS = [
    "conv 3x3, 8", "conv 1x1, 4, stride: 2", "conv 3x3, 16, groups: 2", "conv 3x3, 8, pad: 0", "conv 5, 8, bias: true",
    "conv 1x3, 8", "bn", "relu", "maxpool 3x3, stride: 2, pad: 1", "maxpool 2x2", "avgpool 2x2", "avgpool global",
    "fc 10", "fc classes", "dropout 0.5", "dropout 0", "residual { conv 3x3, 8; bn }",
    "residual(shortcut: C) { conv 3x3, 8; bn }", "residual(survival: 0.9) { conv 1x1, 8 }",
    "residual { preact { bn; relu }; conv 3x3, 8 }", "residual { residual { relu } }", "dense { conv 3x3, 4 }",
    "dense { bn; relu; conv 1x1, 4; dense { conv 3x3, 2 } }", "preact { bn; relu }", "shortcut A", "shortcut B",
    "shortcut C", "shortcut none", "shortcut identity", "projection conv", "projection conv_bn", "survival 0.5",
    "survival linear(last: 0.5)", "survival linear(last: 1)", "classes 3", "input 1x8x8", "input 3x1x1",
    "stem { conv 3x3, 8 }", "head { avgpool global; fc classes }", "stage s = basic(8) * 2",
    "stage s(shortcut: C) = basic(8, stride: 2), basic(16)", "stage s = pool2(), pool2", "stage t = dense_layer(4) * 2",
    "stage u = bottleneck(4, stride: 2, expansion: 1) * 2", "stage v = preact_basic(8, stride: 2) * 2",
    "basic(8)", "basic(8, stride: 2)", "bottleneck(2)", "dense_layer(3)", "transition(8)", "pool2()",
    "expect layers == 1", "expect params > 0", "expect flops ~= 1.7M", "param n = 2", "param w = n * 2 + 1",
    "param s = \"middle\"", "block b(w = 8) { conv 3x3, w; bn }", "block c(w, s = 1) { residual { conv 3x3, w, stride: s } }",
    "block d() { b(); b(16) }", "block e(w) { relu }", "block f() { }", "f()", "stage z = f() * 2",
    "residual { dense { conv 3x3, 4 }; conv 1x1, 8 }", "residual { residual { conv 3x3, 8 }; bn }",
    "block g(w, stride = 1) { basic(w, stride: stride, shortcut: C); basic(w * 2, shortcut: none) }",
    "stage y(shortcut: B) = g(4, stride: 2) * 2", "basic(8, shortcut: none)", "bottleneck(4, shortcut: C)", "import \"std.rd\"", "import \"fuzz.rd\"", "import \"none.rd\"",
]  # fmt: skip
KEYWORD_ARGS = [
    "stride: 2", "stride: 1", "stride: 0", "shortcut: C", "shortcut: A", "shortcut: none", "shortcut: identity",
    "survival: 0.5", "survival: 1", "survival: 0", "expansion: 1", "expansion: 2", "width: 8", "pad: 2", "bias: true",
    "groups: 4", "k: 1", "growth: 0",
]  # fmt: skip


# ---------------------------------------------------------------- seeds


def shrink(text: str) -> str:
    """A cheaper variant of a spec: params and repeat counts at most 2, no `expect`s, no comments
    (mutations go to the code)."""
    text = re.sub(r"(?m)^[ \t]*#.*\n|[ \t]*#[^\n\"]*$", "", text)
    text = re.sub(r"(?m)^(\s*param\s+\w+\s*=\s*)(\d+)\b", lambda m: m[1] + str(min(int(m[2]), 2)), text)
    text = re.sub(r"(\)\s*\*\s*)(?:\d+|\w+|\([^()\n]*\))", r"\g<1>1", text)
    return re.sub(r"(?m)^\s*expect\b.*\n", "", text)


@cache
def seeds() -> dict[str, str]:
    """name -> text: every spec in specs/, and its `inline` and `small` variants."""
    std = (SPECS / "std.rd").read_text()
    out: dict[str, str] = {}
    for path in sorted(SPECS.glob("*.rd")):
        text = path.read_text()
        out[path.name] = text
        if path.name == "std.rd":
            continue
        out[f"small-{path.name}"] = shrink(text)
        if 'import "std.rd"' in text:
            out[f"inline-small-{path.name}"] = shrink(text.replace('import "std.rd"', std, 1))
    return out


@cache
def seed_lines() -> list[str]:
    return sorted({line for t in seeds().values() for line in t.splitlines() if line.strip()})


@cache
def seed_names() -> list[str]:
    return sorted(set(NAME.findall("".join(seeds().values()))))


# ---------------------------------------------------------------- mutations


def tokens(text: str) -> list[str]:
    return TOKEN.findall(text)


def _pick(rng: random.Random, toks: list[str], pred: Callable[[str], bool]) -> int | None:
    found = [i for i, t in enumerate(toks) if pred(t)]
    return rng.choice(found) if found else None


def _number(rng: random.Random, old: str) -> str:
    r = rng.random()
    if r < 0.5:
        return rng.choice(NUMBERS)
    try:
        v = int(old)
    except ValueError:
        return rng.choice(NUMBERS)
    return str(rng.choice([v + 1, v - 1, v * 2, v // 2, v * 1000, 0]))


def m_number(text: str, rng: random.Random) -> str:
    toks = tokens(text)
    i = _pick(rng, toks, lambda t: bool(NUMBER.fullmatch(t) or SIZE.fullmatch(t)))
    if i is None:
        return text
    old = toks[i]
    if SIZE.fullmatch(old):
        if rng.random() < 0.5:
            dims = old.split("x")
            j = rng.randrange(len(dims))
            dims[j] = _number(rng, dims[j]).lstrip("-").split(".")[0].split("e")[0] or "1"
            toks[i] = "x".join(d if d.isdigit() else "1" for d in dims)
        else:
            toks[i] = rng.choice(SIZES)
    else:
        toks[i] = _number(rng, old)
    return "".join(toks)


def m_name(text: str, rng: random.Random) -> str:
    toks = tokens(text)
    i = _pick(rng, toks, lambda t: bool(NAME.fullmatch(t)))
    if i is None:
        return text
    r = rng.random()
    own = [t for t in toks if NAME.fullmatch(t)]
    if r < 0.4:
        new = rng.choice(own)
    elif r < 0.75:
        new = rng.choice(PY_NAMES)
    elif r < 0.9:
        new = rng.choice(seed_names())
    else:
        new = toks[i] + rng.choice(["_", "2", "x", "__", "é"])
    if rng.random() < 0.5:  # rename every occurrence: keeps the spec consistent, changes generated names
        old = toks[i]
        toks = [new if t == old else t for t in toks]
    else:
        toks[i] = new
    return "".join(toks)


def m_option(text: str, rng: random.Random) -> str:
    toks = tokens(text)
    words = {w: g for g in OPTION_GROUPS for w in g}
    i = _pick(rng, toks, lambda t: t in words)
    if i is None:
        return text
    toks[i] = rng.choice(words[toks[i]])
    return "".join(toks)


def m_lines(text: str, rng: random.Random) -> str:
    lines = text.split("\n")
    i = rng.randrange(len(lines))
    op = rng.randrange(5)
    if op == 0 and len(lines) > 1:
        del lines[i]
    elif op == 1:
        lines.insert(i, lines[i])
    elif op == 2:
        j = rng.randrange(len(lines))
        lines[i], lines[j] = lines[j], lines[i]
    elif op == 3:
        line = lines.pop(i)
        lines.insert(rng.randrange(len(lines) + 1), line)
    else:
        lines.insert(i, rng.choice(seed_lines()))
    return "\n".join(lines)


def m_snippet(text: str, rng: random.Random) -> str:
    """A statement into a body (after a `{` or a line break), or a keyword argument into a call."""
    if rng.random() < 0.3:
        calls = [m.end() - 1 for m in re.finditer(r"\w\([^()\n]*\)", text)]
        if calls:
            at = rng.choice(calls)
            sep = "" if text[at - 1] == "(" else ", "
            return text[:at] + sep + rng.choice(KEYWORD_ARGS) + text[at:]
    spots = [m.end() for m in re.finditer(r"\{|\n|;", text)] or [0]
    at = rng.choice(spots)
    sep = rng.choice(["; ", "\n"])
    return text[:at] + " " + rng.choice(SNIPPETS) + sep + text[at:]


def m_tokens(text: str, rng: random.Random) -> str:
    toks = tokens(text)
    if not toks:
        return rng.choice(SNIPPETS)
    i = rng.randrange(len(toks))
    op = rng.randrange(4)
    if op == 0:
        del toks[i]
    elif op == 1:
        toks.insert(i, toks[i])
    elif op == 2:
        j = rng.randrange(len(toks))
        toks[i], toks[j] = toks[j], toks[i]
    else:
        piece = rng.choice(["{", "}", "(", ")", "[", "]", ",", ":", ";", "\n", "=", "*", "-", "#", '"', "\\\n", " "])
        toks.insert(i, piece)
    return "".join(toks)


def m_grow(text: str, rng: random.Random) -> str:
    """A name, string or number made long (past the limits of file names, lines, numbers)."""
    toks = tokens(text)
    i = _pick(rng, toks, lambda t: bool(NAME.fullmatch(t) or NUMBER.fullmatch(t) or t.startswith('"')))
    if i is None:
        return text
    k = rng.choice([2, 10, 100, 300, 3000])
    old = toks[i]
    if old.startswith('"') and len(old) >= 2:
        toks[i] = '"' + (old[1:-1] or "a") * k + '"'
    else:
        toks[i] = old * k
    return "".join(toks)


def byte_mutate(data: bytes, max_size: int, rng: random.Random) -> bytes:
    """A few random byte edits (the stand-in for libFuzzer's mutator outside atheris)."""
    b = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(4)
        if not b or op == 0:
            b.insert(rng.randrange(len(b) + 1), rng.randrange(256))
        elif op == 1:
            del b[rng.randrange(len(b))]
        elif op == 2:
            b[rng.randrange(len(b))] = rng.choice(b'{}()[],:;=*#"\\\n\t\r\x00 0123456789xAB\xc3\xa9\xff')
        else:
            i = rng.randrange(len(b))
            b[i] ^= 1 << rng.randrange(8)
    return bytes(b[:max_size])


TEXT_MUTATIONS = [m_number, m_number, m_name, m_option, m_lines, m_lines, m_snippet, m_snippet, m_tokens, m_grow]
ByteMutator = Callable[[bytes, int, random.Random], bytes]


def mutate(
    data: bytes, max_size: int, rng: random.Random, byte_mutator: ByteMutator = byte_mutate, stack: bool = True
) -> bytes:
    """1 to 4 stacked mutations of a spec (one with stack=False: libFuzzer stacks them itself); one
    in eight is byte-level."""
    if not data.strip() or rng.random() < 0.05:
        data = rng.choice(list(seeds().values())).encode()
    if rng.random() < 0.125:
        out = byte_mutator(data, max_size, rng)
    else:
        text = data.decode("utf-8", "surrogateescape")
        for _ in range(rng.choice([1, 1, 1, 2, 2, 3, 4]) if stack else 1):
            text = rng.choice(TEXT_MUTATIONS)(text, rng)
        out = text.encode("utf-8", "surrogateescape")
    return out[:max_size]


def crossover(a: bytes, b: bytes, max_size: int, rng: random.Random) -> bytes:
    """A few lines of one input spliced into another (in place of as many, or added), or the first
    lines of one and the last lines of the other."""
    la, lb = a.split(b"\n"), b.split(b"\n")
    if rng.random() < 0.25:
        return b"\n".join(la[: rng.randint(0, len(la))] + lb[rng.randint(0, len(lb)) :])[:max_size]
    n = rng.randint(1, 3)
    at, start = rng.randint(0, len(la)), rng.randint(0, max(0, len(lb) - n))
    cut = rng.choice([0, n])
    return b"\n".join(la[:at] + lb[start : start + n] + la[at + cut :])[:max_size]
