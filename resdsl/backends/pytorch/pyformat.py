"""The generated file's layout: ruff's formatter (88 columns), the one the output is checked with, so no
layout code of our own imitates it. The source must parse first: a syntax error here is a bug."""

from __future__ import annotations

import ast
import subprocess

from resdsl.backends.pytorch.pyexpr import CodegenError


def format_python(source: str, filename: str = "model.py") -> str:
    """`source` laid out as `ruff format` does, after checking that it parses."""
    try:
        ast.parse(source, filename)
    except SyntaxError as err:
        raise CodegenError(f"the generated {filename} does not parse at line {err.lineno}: {err.msg} (a bug)") from None
    from ruff.__main__ import find_ruff_bin

    command = [find_ruff_bin(), "format", "--isolated", "--line-length", "88", "--stdin-filename", filename, "-"]
    done = subprocess.run(command, input=source, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise CodegenError(f"ruff could not format the generated {filename}: {done.stderr.strip()}")
    return done.stdout
