"""Property tests: whatever text comes in, the front end either succeeds or raises its own
ResdslError (which the CLI renders as `file:line:col: error:`), never another exception, and
never hangs. Inputs: random text over the language's alphabet, and real specs mutated by
deleting, duplicating, swapping or replacing tokens and characters.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from resdsl.diagnostics import ResdslError
from resdsl.ir.pipeline import load_network
from resdsl.lang.overrides import parse_override

SPECS = Path(__file__).resolve().parent.parent / "specs"
# Small and mid-sized specs: big ones (cifar1202, preact1001) only make each example slower.
SEEDS = [
    "cifar20.rd",
    "resnet18.rd",
    "resnet50.rd",
    "nin_cifar10.rd",
    "densenet40.rd",
    "preact_resnet110.rd",
    "stochdepth110.rd",
    "vgg19.rd",
    "std.rd",
]
SEED_TEXT = {name: (SPECS / name).read_text() for name in SEEDS}
TOKEN = re.compile(r"\s+|[A-Za-z_][A-Za-z0-9_]*|\d+(?:x\d+)+|\d+(?:\.\d*)?(?:[eE][+-]?\d+)?[KMG]?|\"[^\"\n]*\"|.")
WORDS = sorted(
    set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", "".join(SEED_TEXT.values())))
    | {"if", "else", "and", "or", "not", "true", "false", "identity", "none", "C", "dense", "preact", "global"}
)
PIECES = WORDS + [
    "{", "}", "(", ")", "[", "]", ",", ":", ";", "\n", "=", "==", "~=", "*", "**", "/", "//", "%", "+", "-",
    "<", ">=", "#", '"', "x", "3x3", "0", "1", "2", "0.5", "1e-4", "1.7M", "99999999", "1e308", "-1", " ",
    '"std.rd"', '"nope.rd"', '"/"', '""', "\\\n", "\t", "\r", "\x00", "é", "0x0", "1x0", "1e400", "0.0",
    "int(", "floor(", "min(", "-8", "** 0.5", "9e17",
]  # fmt: skip

FUZZ = settings(
    max_examples=int(os.environ.get("RESDSL_FUZZ_EXAMPLES", "250")),  # raise it for a long bug hunt
    deadline=None,  # an example may build a real network; hangs are caught by the size guards instead
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    derandomize="RESDSL_FUZZ_EXAMPLES" not in os.environ,  # CI: the same examples on every run
)


def front_end(text: str, folder: Path, overrides: dict | None = None) -> None:
    """Parse, resolve, lower and analyse `text`; only the tool's own errors may escape."""
    spec = folder / "fuzz.rd"
    spec.write_text(text, encoding="utf-8", errors="surrogatepass")
    try:
        ir = load_network(spec, overrides)
    except ResdslError as err:
        rendered = err.render()
        assert isinstance(rendered, str) and "error" in rendered
        return
    # a network that passed must have a consistent IR and report
    from resdsl.backends.report import table, to_json
    from resdsl.ir.graph import print_ir

    ir.verify()
    assert isinstance(to_json(ir, "fuzz.rd")["params"], int)
    table(ir, "fuzz.rd")
    print_ir(ir)


def tokens(text: str) -> list[str]:
    return TOKEN.findall(text)


@st.composite
def mutated_spec(draw) -> str:
    text = SEED_TEXT[draw(st.sampled_from(SEEDS))]
    toks = tokens(text) if draw(st.booleans()) else list(text)
    for _ in range(draw(st.integers(1, 4))):
        if not toks:
            break
        i = draw(st.integers(0, len(toks) - 1))
        op = draw(st.sampled_from(["delete", "duplicate", "swap", "replace", "insert"]))
        if op == "delete":
            del toks[i]
        elif op == "duplicate":
            toks.insert(i, toks[i])
        elif op == "swap":
            j = draw(st.integers(0, len(toks) - 1))
            toks[i], toks[j] = toks[j], toks[i]
        elif op == "replace":
            toks[i] = draw(st.sampled_from(PIECES))
        else:
            toks.insert(i, draw(st.sampled_from(PIECES)))
    return "".join(toks)


@FUZZ
@given(text=st.text(max_size=200))
def test_random_text(text: str, tmp_path: Path) -> None:
    front_end(text, tmp_path)


@FUZZ
@given(pieces=st.lists(st.sampled_from(PIECES), max_size=60))
def test_random_token_soup(pieces: list[str], tmp_path: Path) -> None:
    front_end(" ".join(pieces), tmp_path)


@FUZZ
@given(text=mutated_spec())
def test_mutated_specs(text: str, tmp_path: Path) -> None:
    front_end(text, tmp_path)


@FUZZ
@given(
    text=mutated_spec(),
    name=st.sampled_from(["n", "shortcut", "stride_at", "input", "classes", "survival", "projection", "k", "batch"]),
    value=st.sampled_from(["0", "1", "2", "-3", "2.5", "1e9", "A", "B", "C", "none", "3x32x32", "3x1x1", "true", "x"]),
)
def test_mutated_specs_with_overrides(text: str, name: str, value: str, tmp_path: Path) -> None:
    front_end(text, tmp_path, {name: parse_override(value)})


EXPR_ATOMS = [
    "n", "classes", "0", "1", "2", "0.5", "0.0", "1e18", "1e400", "-8", "3x3", "0x0", "1x9", '"s"', "true", "A",
    "[1, 2]", "min(1, 2)", "-1", "int(9e17)", "floor(0.5)", "round(n / 3)",
]  # fmt: skip


@st.composite
def expression(draw, depth: int = 0) -> str:
    if depth > 3 or draw(st.booleans()):
        return draw(st.sampled_from(EXPR_ATOMS))
    op = draw(st.sampled_from(["+", "-", "*", "/", "//", "%", "**", "==", "<", "~=", "and", "or", "if"]))
    a, b = draw(expression(depth + 1)), draw(expression(depth + 1))
    if op == "if":
        return f"({a} if {draw(expression(depth + 1))} else {b})"
    return f"({a} {op} {b})"


@FUZZ
@given(
    expr=expression(),
    where=st.sampled_from(["param", "channels", "repeat", "stride", "expect", "input", "kernel", "pool", "pad"]),
)
def test_random_expressions_in_every_position(expr: str, where: str, tmp_path: Path) -> None:
    """Arithmetic edge cases (division by zero, huge powers, wrong types) in each kind of slot."""
    param = f"param v = {expr}" if where == "param" else "param v = 1"
    channels = expr if where == "channels" else "16"
    repeat = expr if where == "repeat" else "n"
    stride = expr if where == "stride" else "1"
    expect = f"expect {expr}" if where == "expect" else ""
    size = expr if where == "input" else "3x32x32"
    kernel = expr if where == "kernel" else "3x3"
    pool = expr if where == "pool" else "global"
    pad = expr if where == "pad" else "1"
    text = f"""import "std.rd"
param n = 2
{param}
network fuzz {{
    input {size}
    classes 10
    shortcut B
    stem {{ conv {kernel}, {channels}, stride: {stride}, pad: {pad}; bn; relu }}
    stage s = basic(16) * {repeat}
    head {{ avgpool {pool}; fc classes }}
    {expect}
}}
"""
    front_end(text, tmp_path)


@pytest.mark.parametrize("name", SEEDS)
def test_seeds_are_valid(name: str, tmp_path: Path) -> None:
    """The mutation seeds themselves pass (std.rd is a library: no network)."""
    if name == "std.rd":
        with pytest.raises(ResdslError, match="defines no network"):
            load_network(SPECS / name)
    else:
        load_network(SPECS / name)


@settings(max_examples=40, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    depth=st.integers(1, 3000),
    shape=st.sampled_from(["parens", "minus", "sum", "power", "sections", "calls", "list"]),
)
def test_deep_nesting_is_an_error_not_a_crash(depth: int, shape: str, tmp_path: Path) -> None:
    """Recursive passes must never hit Python's recursion limit, however deep the text nests."""
    blocks, expr, stage = "", "1", "stage s = u()"
    if shape == "parens":
        expr = "(" * depth + "1" + ")" * depth
    elif shape == "minus":
        expr = "- " * depth + "1"
    elif shape == "sum":
        expr = "+".join(["1"] * depth)
    elif shape == "power":
        expr = "**".join(["1"] * depth)
    elif shape == "list":
        expr = "[" * depth + "1" + "]" * depth
    if shape == "sections":
        blocks = "block u() { " + "residual { " * depth + "relu" + " }" * depth + " }\n"
    elif shape == "calls":
        blocks = "".join(f"block u{i}() {{ u{i + 1}() }}\n" for i in range(depth)) + f"block u{depth}() {{ relu }}\n"
        blocks += "block u() { u0() }\n"
    else:
        blocks = "block u() { relu }\n"
    text = f"param v = {expr}\n{blocks}network deep {{\n input 3x8x8\n classes 10\n stem {{ conv 3x3, 10 }}\n {stage}\n head {{ avgpool global }}\n}}\n"
    front_end(text, tmp_path)
