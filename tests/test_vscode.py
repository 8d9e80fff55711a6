"""The VS Code extension (editors/vscode/): its TextMate grammar, run by vscode-textmate on the
Oniguruma WebAssembly build as VS Code runs it (editors/vscode/test/tokenize.js), gives every
keyword, op, block name, number, size, string, operator and comment of every spec the scope its
kind should have, judged against the tokens resdsl's own lexer finds (lang/fmttree.py).

Needs node and npm (the packages come from `npm ci` in editors/vscode/, run here when missing);
skipped where neither is installed, except in CI (CI=true), where it must run."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from functools import cache
from pathlib import Path

import pytest

from resdsl.ir.ops import OP_ALIASES, OPS
from resdsl.lang import fmttree

ROOT = Path(__file__).resolve().parent.parent
EXT = ROOT / "editors" / "vscode"
SPECS = sorted((ROOT / "specs").glob("*.rd")) + [ROOT / "resdsl" / "lang" / "stdlib" / "std.rd"]
IN_CI = os.environ.get("CI", "").lower() in ("true", "1")

KEYWORDS = {"IMPORT", "PARAM", "BLOCK", "NETWORK", "TRAIN", "STAGE", "EXPECT", "IF", "ELSE", "AND", "OR", "NOT"}
OPERATORS = {"COMP_OP", "ADD_OP", "MUL_OP", "POW_OP", "STAR", "MINUS", "PLUS", "EQUAL"}
EXPECTED = {  # kind -> the scopes it may get (prefixes)
    "keyword": ("keyword.control.", "keyword.operator.logical.", "keyword.other.expect.", "storage.type."),
    "boolean": ("constant.language.boolean.",),
    "number": ("constant.numeric.resdsl",),
    "size": ("constant.numeric.size.",),
    "string": ("string.quoted.double.",),
    "operator": ("keyword.operator.",),
    "comment": ("comment.line.number-sign.",),
    "op": ("support.function.op.",),
    "call": ("entity.name.function.", "keyword.other.section."),
    "block": ("entity.name.function.block.",),
    "stage": ("entity.name.section.stage.",),
    "network": ("entity.name.type.network.",),
}


def tools() -> tuple[str, str] | None:
    node, npm = shutil.which("node"), shutil.which("npm")
    return (node, npm) if node and npm else None


@cache
def tokenized() -> dict[str, list[list[dict]]]:
    found = tools()
    if found is None:
        if IN_CI:
            pytest.fail("CI=true but node/npm are missing: .ci/run installs them")
        pytest.skip("node and npm are not installed")
    node, npm = found
    if not (EXT / "node_modules" / "vscode-textmate").is_dir():
        subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=EXT, check=True, timeout=600)
    proc = subprocess.run(
        [node, str(EXT / "test" / "tokenize.js"), *map(str, SPECS)], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def expected_kinds(text: str) -> list[tuple[int, int, str, str]]:
    """(line, column, kind, text) of every token whose kind the grammar must recognise."""
    toks = fmttree.tokens(text)
    ops = set(OPS) | set(OP_ALIASES)
    out: list[tuple[int, int, str, str]] = []
    for k, tok in enumerate(toks):
        prev = toks[k - 1] if k else None
        nxt = toks[k + 1] if k + 1 < len(toks) else None
        kind = None
        if tok.type in KEYWORDS:
            kind = "keyword"
        elif tok.type in ("TRUE", "FALSE"):
            kind = "boolean"
        elif tok.type in ("NUMBER", "SIZE", "STRING", "CALLNAME"):
            kind = {"NUMBER": "number", "SIZE": "size", "STRING": "string", "CALLNAME": "call"}[tok.type]
        elif tok.type in OPERATORS:
            kind = "operator"
        elif tok.type in ("NAME", "CALLNAME") and prev is not None and prev.type in ("BLOCK", "STAGE", "NETWORK"):
            kind = {"BLOCK": "block", "STAGE": "stage", "NETWORK": "network"}[prev.type]
        elif (
            tok.type == "NAME"
            and tok.value in ops
            and (prev is None or prev.type in ("_SEP", "LBRACE"))
            and (nxt is None or nxt.type not in ("LBRACE", "LPAR"))
        ):
            kind = "op"
        if tok.type == "CALLNAME" and prev is not None and prev.type in ("BLOCK", "STAGE"):
            kind = {"BLOCK": "block", "STAGE": "stage"}[prev.type]
        if kind:
            out.append((tok.line, tok.column, kind, tok.value))
        if tok.type == "_SEP":
            for piece, offset in fmttree.pieces(tok):
                if piece.startswith("#"):
                    line = text.count("\n", 0, offset) + 1
                    col = offset - (text.rfind("\n", 0, offset) + 1) + 1
                    out.append((line, col, "comment", piece))
                    out.append((line, col + len(piece) - 1, "comment", piece))  # its last character too
    return out


def scopes_at(lines: list[list[dict]], source: list[str], line: int, col: int) -> list[str]:
    index = len(source[line - 1][: col - 1].encode("utf-16-le")) // 2  # JavaScript strings count UTF-16 units
    for tok in lines[line - 1]:
        if tok["start"] <= index < tok["end"]:
            return tok["scopes"]
    return []


@pytest.mark.parametrize("spec", SPECS, ids=lambda p: p.name)
def test_the_grammar_scopes_every_token_of_the_spec(spec: Path) -> None:
    result = tokenized()[str(spec)]
    text = spec.read_text(encoding="utf-8")
    source = text.split("\n")
    wrong = []
    for line, col, kind, value in expected_kinds(text):
        scopes = scopes_at(result, source, line, col)
        if not any(s.startswith(p) for s in scopes for p in EXPECTED[kind]):
            wrong.append(f"{spec.name}:{line}:{col}: {kind} `{value}` got {scopes[1:]}")
    assert wrong == []


def test_every_kind_is_seen_and_checked() -> None:
    """Not vacuous: across the specs, every kind of token the test checks occurs."""
    seen = {kind for spec in SPECS for _, _, kind, _ in expected_kinds(spec.read_text(encoding="utf-8"))}
    assert seen == set(EXPECTED)


def test_the_grammar_knows_every_op_of_the_registry() -> None:
    grammar = json.loads((EXT / "syntaxes" / "resdsl.tmLanguage.json").read_text())
    pattern = grammar["repository"]["op"]["match"]
    names = set(re.fullmatch(r"\\b\((.*)\)\\b", pattern).group(1).split("|"))
    assert names == set(OPS) | set(OP_ALIASES)


def test_the_extension_manifest() -> None:
    manifest = json.loads((EXT / "package.json").read_text())
    assert manifest["contributes"]["languages"][0]["extensions"] == [".rd"]
    assert manifest["contributes"]["configuration"]["properties"]["resdsl.server.command"]["default"] == "resdsl"
    assert "vscode-languageclient" in manifest["dependencies"]
    assert (EXT / "package-lock.json").is_file()
    config = json.loads((EXT / "language-configuration.json").read_text())
    assert config["comments"] == {"lineComment": "#"}
    assert ["{", "}"] in config["brackets"]
