"""The exact error text for bad input: location, source line, caret, hint; exit codes 1 and 2.

Every case writes its spec files into a temporary folder, runs the CLI there (so paths print as
written, e.g. `bad.rd:4:21`) and compares the whole of stderr. When a message is reworded on
purpose, update the expected text here: these tests are the contract of what users see.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from click.testing import CliRunner

from resdsl.cli.main import main
from resdsl.diagnostics import MAX_ERRORS, SpecError, SpecErrors
from resdsl.lang.imports import MAX_SPEC_BYTES, load_program

SPECS = Path(__file__).resolve().parent.parent / "specs"


@dataclass
class Case:
    name: str
    files: dict[str, str]  # file name -> text; None copies the file from specs/
    stderr: str
    args: list[str] = field(default_factory=lambda: ["check"])
    code: int = 1
    spec: str = "bad.rd"


def run_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, files: dict[str, str | None], args: list[str]):
    for name, text in files.items():
        if text is None:
            shutil.copy(SPECS / name, tmp_path / name)
        else:
            (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
            (tmp_path / name).write_text(text, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    return CliRunner().invoke(main, args)


def assert_clean_failure(result, code: int) -> None:
    assert result.exit_code == code, (result.exit_code, result.output)
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    # a SystemExit is how click reports the exit code; anything else escaped the error handling
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)


CASES = [
    Case(
        "missing_comma",
        {
            "bad.rd": """\
network net {
    input 3x32x32
    classes 10
    stem { conv 3x3 16; bn; relu }
    head { avgpool global; fc classes }
}
""",
        },
        """\
bad.rd:4:21: error: unexpected `16`
    4 |     stem { conv 3x3 16; bn; relu }
      |                     ^^
  hint: separate arguments with `,`, e.g. `conv 3x3, 64`
""",
        args=["check"],
        code=1,
    ),
    Case(
        "keyword_with_equals",
        {
            "bad.rd": """\
network net {
    input 3x32x32
    classes 10
    stem { conv 3x3, 16, stride=2; bn; relu }
    head { avgpool global; fc classes }
}
""",
        },
        """\
bad.rd:4:32: error: unexpected `=`
    4 |     stem { conv 3x3, 16, stride=2; bn; relu }
      |                                ^
  hint: keyword arguments are written `name: value`, e.g. `stride: 2`
""",
        args=["check"],
        code=1,
    ),
    Case(
        "unclosed_brace",
        {
            "bad.rd": """\
network net {
    input 3x32x32
    classes 10
    stem { conv 3x3, 16; bn; relu }
    head { avgpool global; fc classes }
""",
        },
        """\
bad.rd:1:13: error: `{` is never closed
    1 | network net {
      |             ^
  hint: add the matching `}`
""",
        args=["check"],
        code=1,
    ),
    Case(
        "unclosed_paren",
        {
            "bad.rd": """\
import "std.rd"
network net {
    input 3x32x32
    classes 10
    stem { conv 3x3, 16; bn; relu }
    stage s = basic(16 * 3
    head { avgpool global; fc classes }
}
""",
        },
        """\
bad.rd:6:20: error: `(` is never closed
    6 |     stage s = basic(16 * 3
      |                    ^
  hint: add the matching `)`; the statement runs on to line 7 (`head`)
""",
        args=["check"],
        code=1,
    ),
    Case(
        "stray_character",
        {
            "bad.rd": """\
network net {
    input 3x32x32
    classes 10
    stem { conv 3x3, 16; bn; relu $ }
    head { avgpool global; fc classes }
}
""",
        },
        """\
bad.rd:4:35: error: unexpected character `$`
    4 |     stem { conv 3x3, 16; bn; relu $ }
      |                                   ^
  hint: remove it; comments start with `#`
""",
        args=["check"],
        code=1,
    ),
    Case(
        "size_with_spaces",
        {
            "bad.rd": """\
network net {
    input 3x32x32
    classes 10
    stem { conv 3 x 3, 16; bn; relu }
    head { avgpool global; fc classes }
}
""",
        },
        """\
bad.rd:4:19: error: unexpected `x`
    4 |     stem { conv 3 x 3, 16; bn; relu }
      |                   ^
  hint: write sizes without spaces: `3x3`, `3x32x32`
""",
        args=["check"],
        code=1,
    ),
    Case(
        "single_quotes",
        {
            "bad.rd": """\
import 'std.rd'
network net {
    input 3x32x32
    classes 10
    stem { conv 3x3, 16; bn; relu }
    head { avgpool global; fc classes }
}
""",
        },
        """\
bad.rd:1:8: error: unexpected character `'`
    1 | import 'std.rd'
      |        ^
  hint: strings use double quotes: "std.rd"
""",
        args=["check"],
        code=1,
    ),
    Case(
        "block_default_with_colon",
        {
            "bad.rd": """\
block wide(width: 64) { conv 3x3, width }
network net {
    input 3x32x32
    classes 10
    stem { conv 3x3, 16; bn; relu }
    head { avgpool global; fc classes }
}
""",
        },
        """\
bad.rd:1:17: error: unexpected `:`
    1 | block wide(width: 64) { conv 3x3, width }
      |                 ^
  hint: block parameters take defaults with `=`, e.g. `block basic(width, stride = 1)`
""",
        args=["check"],
        code=1,
    ),
    Case(
        "unknown_block",
        {
            "bad.rd": """\
import "std.rd"
network net {
    input 3x32x32
    classes 10
    stem { conv 3x3, 16; bn; relu }
    stage s = basik(16) * 3
    head { avgpool global; fc classes }
}
""",
        },
        """\
bad.rd:6:15: error: unknown block `basik`
    6 |     stage s = basik(16) * 3
      |               ^^^^^
  hint: did you mean `basic`?
""",
        args=["check"],
        code=1,
    ),
    Case(
        "unknown_name",
        {
            "bad.rd": """\
block wide(width) { conv 3x3, widht; bn; relu }
network net {
    input 3x32x32
    classes 10
    stem { conv 3x3, 16; bn; relu }
    stage s = wide(16)
    head { avgpool global; fc classes }
}
""",
        },
        """\
bad.rd:1:31: error: unknown name `widht`
    1 | block wide(width) { conv 3x3, widht; bn; relu }
      |                               ^^^^^
  hint: did you mean `width`?
""",
        args=["check"],
        code=1,
    ),
    Case(
        "unknown_op_alias",
        {
            "bad.rd": """\
network net {
    input 3x32x32
    classes 10
    stem { conv 3x3, 16; batchnorm; relu }
    head { avgpool global; fc classes }
}
""",
        },
        """\
bad.rd:4:26: error: unknown op `batchnorm`
    4 |     stem { conv 3x3, 16; batchnorm; relu }
      |                          ^^^^^^^^^
  hint: resdsl calls it `bn`
""",
        args=["check"],
        code=1,
    ),
    Case(
        "unknown_op_typo",
        {
            "bad.rd": """\
network net {
    input 3x32x32
    classes 10
    stem { conv 3x3, 16; bn; rleu }
    head { avgpool global; fc classes }
}
""",
        },
        """\
bad.rd:4:30: error: unknown op `rleu`
    4 |     stem { conv 3x3, 16; bn; rleu }
      |                              ^^^^
  hint: did you mean `relu`?
""",
        args=["check"],
        code=1,
    ),
    Case(
        "unknown_setting",
        {
            "bad.rd": """\
network net {
    input 3x32x32
    classes 10
    shortcat A
    stem { conv 3x3, 16; bn; relu }
    head { avgpool global; fc classes }
}
""",
        },
        """\
bad.rd:4:5: error: unknown network setting `shortcat`
    4 |     shortcat A
      |     ^^^^^^^^
  hint: did you mean `shortcut`?
""",
        args=["check"],
        code=1,
    ),
    Case(
        "unknown_op_keyword",
        {
            "bad.rd": """\
network net {
    input 3x32x32
    classes 10
    stem { conv 3x3, 16, strde: 2; bn; relu }
    head { avgpool global; fc classes }
}
""",
        },
        """\
bad.rd:4:26: error: `conv` has no argument `strde`
    4 |     stem { conv 3x3, 16, strde: 2; bn; relu }
      |                          ^^^^^^^^
  hint: did you mean `stride`?
""",
        args=["check"],
        code=1,
    ),
    Case(
        "unknown_block_keyword",
        {
            "bad.rd": """\
import "std.rd"
network net {
    input 3x32x32
    classes 10
    stem { conv 3x3, 16; bn; relu }
    stage s = basic(16, strid: 2) * 3
    head { avgpool global; fc classes }
}
""",
        },
        """\
bad.rd:6:25: error: block `basic` has no argument `strid`
    6 |     stage s = basic(16, strid: 2) * 3
      |                         ^^^^^^^^
  hint: did you mean `stride`?
""",
        args=["check"],
        code=1,
    ),
    Case(
        "op_too_many_args",
        {
            "bad.rd": """\
network net {
    input 3x32x32
    classes 10
    stem { conv 3x3, 16, 32; bn; relu }
    head { avgpool global; fc classes }
}
""",
        },
        """\
bad.rd:4:26: error: `conv` takes 2 positional arguments (kernel, channels), got 3
    4 |     stem { conv 3x3, 16, 32; bn; relu }
      |                          ^^
  hint: e.g. `conv 3x3, 64, stride: 2`
""",
        args=["check"],
        code=1,
    ),
    Case(
        "block_too_many_args",
        {
            "bad.rd": """\
block unit(width, stride = 1) { conv 3x3, width, stride: stride }
network net {
    input 3x32x32
    classes 10
    stem { conv 3x3, 16; bn; relu }
    stage s = unit(16, 2, 3) * 3
    head { avgpool global; fc classes }
}
""",
        },
        """\
bad.rd:6:27: error: block `unit` takes 2 arguments (width, stride), got 3
    6 |     stage s = unit(16, 2, 3) * 3
      |                           ^
  hint: `unit(width, stride = 1)` is defined at bad.rd:1:1
""",
        args=["check"],
        code=1,
    ),
    Case(
        "op_missing_arg",
        {
            "bad.rd": """\
network net {
    input 3x32x32
    classes 10
    stem { conv 3x3; bn; relu }
    head { avgpool global; fc classes }
}
""",
        },
        """\
bad.rd:4:12: error: `conv` needs its `channels` argument (a positive whole number of channels)
    4 |     stem { conv 3x3; bn; relu }
      |            ^^^^^^^^
  hint: e.g. `conv 3x3, 64, stride: 2`
""",
        args=["check"],
        code=1,
    ),
    Case(
        "block_missing_arg",
        {
            "bad.rd": """\
block wide(width, stride = 1) { conv 3x3, width, stride: stride }
network net {
    input 3x32x32
    classes 10
    stem { conv 3x3, 16; bn; relu }
    stage s = wide() * 2
    head { avgpool global; fc classes }
}
""",
        },
        """\
bad.rd:6:15: error: block `wide` needs its `width` argument
    6 |     stage s = wide() * 2
      |               ^^^^^^
  hint: `wide(width, stride = 1)` is defined at bad.rd:1:1
""",
        args=["check"],
        code=1,
    ),
    Case(
        "wrong_type_string",
        {
            "bad.rd": """\
network net {
    input 3x32x32
    classes 10
    stem { conv 3x3, "wide"; bn; relu }
    head { avgpool global; fc classes }
}
""",
        },
        """\
bad.rd:4:22: error: `channels` of `conv` must be a positive whole number of channels, got the string "wide"
    4 |     stem { conv 3x3, "wide"; bn; relu }
      |                      ^^^^^^
""",
        args=["check"],
        code=1,
    ),
    Case(
        "wrong_type_bool",
        {
            "bad.rd": """\
network net {
    input 3x32x32
    classes 10
    stem { conv 3x3, 16; bn; relu }
    head { avgpool global; fc classes, bias: 1 }
}
""",
        },
        """\
bad.rd:5:46: error: `bias` of `fc` must be true or false, got 1
    5 |     head { avgpool global; fc classes, bias: 1 }
      |                                              ^
""",
        args=["check"],
        code=1,
    ),
    Case(
        "identity_shape_mismatch",
        {
            "bad.rd": """\
block unit(width, stride = 1) {
    residual { conv 3x3, width, stride: stride; bn }
    relu
}
network net {
    input 3x32x32
    classes 10
    shortcut identity
    stem { conv 3x3, 16; bn; relu }
    stage s1 = unit(16)
    stage s2 = unit(32, stride: 2)
    head { avgpool global; fc classes }
}
""",
        },
        """\
bad.rd:2:5: error: the body gives 32x16x16 but the shortcut gives 16x32x32: use shortcut A, B or C
    2 |     residual { conv 3x3, width, stride: stride; bn }
      |     ^^^^^^^^
  hint: an identity shortcut needs the body to keep the shape
bad.rd:11:16: note: in block 1 of `s2`, `unit` used here
""",
        args=["check"],
        code=1,
    ),
    Case(
        "option_a_shrinks",
        {
            "bad.rd": """\
block unit(width, stride = 1) {
    residual { conv 3x3, width, stride: stride; bn }
    relu
}
network net {
    input 3x32x32
    classes 10
    shortcut A
    stem { conv 3x3, 64; bn; relu }
    stage s1 = unit(32)
    head { avgpool global; fc classes }
}
""",
        },
        """\
bad.rd:2:5: error: the body gives 32x32x32 but the shortcut gives 64x32x32: option A pads channels with zeros and cannot handle fewer channels
    2 |     residual { conv 3x3, width, stride: stride; bn }
      |     ^^^^^^^^
  hint: use shortcut B or C (projection) here
bad.rd:10:16: note: in block 1 of `s1`, `unit` used here
""",
        args=["check"],
        code=1,
    ),
    Case(
        "spatial_size_zero",
        {
            "bad.rd": """\
network net {
    input 3x8x8
    classes 10
    stem { conv 3x3, 16; maxpool 2x2; maxpool 2x2; maxpool 2x2; maxpool 2x2 }
    head { avgpool global; fc classes }
}
""",
        },
        """\
bad.rd:4:65: error: maxpool kernel 2x2 is larger than its 1x1 input: the output size would reach 0
    4 |     stem { conv 3x3, 16; maxpool 2x2; maxpool 2x2; maxpool 2x2; maxpool 2x2 }
      |                                                                 ^^^^^^^^^^^
  hint: use a smaller kernel, more padding, or fewer downsampling steps before it
""",
        args=["check"],
        code=1,
    ),
    Case(
        "kernel_larger_than_input",
        {
            "bad.rd": """\
block big(width) { conv 7x7, width, pad: 0 }
network net {
    input 3x32x32
    classes 10
    stem { conv 3x3, 16, stride: 8 }
    stage s = big(32)
    head { avgpool global; fc classes }
}
""",
        },
        """\
bad.rd:1:20: error: conv kernel 7x7 is larger than its 4x4 input: the output size would reach 0
    1 | block big(width) { conv 7x7, width, pad: 0 }
      |                    ^^^^^^^^^^^^^^^^^^^^^^^
  hint: use a smaller kernel, more padding, or fewer downsampling steps before it
bad.rd:6:15: note: in block 1 of `s`, `big` used here
""",
        args=["check"],
        code=1,
    ),
    Case(
        "fractional_channels",
        {
            "bad.rd": """\
block wide(width) { conv 3x3, width * 1.5 }
network net {
    input 3x32x32
    classes 10
    stem { conv 3x3, 16; bn; relu }
    stage s = wide(15)
    head { avgpool global; fc classes }
}
""",
        },
        """\
bad.rd:1:31: error: `channels` of `conv` must be a positive whole number of channels, got 22.5
    1 | block wide(width) { conv 3x3, width * 1.5 }
      |                               ^^^^^^^^^^^
  hint: `width * 1.5` is 22.5; round it explicitly, e.g. `int(width * 1.5)` or `round(width * 1.5)`
""",
        args=["check"],
        code=1,
    ),
    Case(
        "recursive_blocks",
        {
            "bad.rd": """\
block a(w) { b(w) }
block b(w) { a(w) }
network net {
    input 3x32x32
    classes 10
    stem { conv 3x3, 16; bn; relu }
    stage s = a(16)
    head { avgpool global; fc classes }
}
""",
        },
        """\
bad.rd:2:14: error: block `a` uses itself: a -> b -> a
    2 | block b(w) { a(w) }
      |              ^
  hint: blocks cannot be recursive; repeat them in a stage with `* n`
bad.rd:7:15: note: in block `a` used here
bad.rd:1:14: note: in block `b` used here
""",
        args=["check"],
        code=1,
    ),
    Case(
        "import_cycle",
        {
            "bad.rd": """\
import "one.rd"
network net {
    input 3x32x32
    classes 10
    stem { conv 3x3, 16; bn; relu }
    head { avgpool global; fc classes }
}
""",
            "one.rd": """\
import "two.rd"
block x1() { relu }
""",
            "two.rd": """\
import "one.rd"
block x2() { relu }
""",
        },
        """\
two.rd:1:1: error: import cycle: one.rd -> two.rd -> one.rd
    1 | import "one.rd"
      | ^^^^^^^^^^^^^^^
  hint: move shared blocks into a file both import
""",
        args=["check"],
        code=1,
    ),
    Case(
        "missing_import",
        {
            "bad.rd": """\
import "blocks.rd"
network net {
    input 3x32x32
    classes 10
    stem { conv 3x3, 16; bn; relu }
    head { avgpool global; fc classes }
}
""",
        },
        """\
bad.rd:1:1: error: cannot find imported file "blocks.rd"
    1 | import "blocks.rd"
      | ^^^^^^^^^^^^^^^^^^
  hint: looked next to bad.rd and in the standard library (std.rd)
""",
        args=["check"],
        code=1,
    ),
    Case(
        "expect_failures",
        {
            "bad.rd": """\
param n = 3
network net {
    input 3x32x32
    classes 10
    stem { conv 3x3, 16; bn; relu }
    head { avgpool global; fc classes }
    expect layers == 6*n + 2
    expect params ~= 1.7M
}
""",
        },
        """\
bad.rd:7:5: error: expectation failed: layers == 6*n + 2 (layers is 2, 6*n + 2 is 20)
    7 |     expect layers == 6*n + 2
      |     ^^^^^^^^^^^^^^^^^^^^^^^^
bad.rd:8:5: error: expectation failed: params ~= 1.7M (params is 634, expected 1,700,000 ± 50,000)
    8 |     expect params ~= 1.7M
      |     ^^^^^^^^^^^^^^^^^^^^^
""",
        args=["check"],
        code=1,
    ),
    Case(
        "wrong_number_of_classes",
        {
            "bad.rd": """\
network net {
    input 3x32x32
    classes 10
    stem { conv 3x3, 16; bn; relu }
    head { avgpool global; fc 100 }
}
""",
        },
        """\
bad.rd:5:28: error: the network ends with 100, but classes is 10
    5 |     head { avgpool global; fc 100 }
      |                            ^^^^^^
  hint: end the head with `fc classes`, or with `avgpool global` after a conv to `classes` channels
""",
        args=["check"],
        code=1,
    ),
    Case(
        "oversized_nested_blocks",
        {
            "bad.rd": """\
block a() { relu; relu; relu; relu; relu; relu; relu; relu; relu; relu }
block b() { a(); a(); a(); a(); a(); a(); a(); a(); a(); a() }
block c() { b(); b(); b(); b(); b(); b(); b(); b(); b(); b() }
block d() { c(); c(); c(); c(); c(); c(); c(); c(); c(); c() }
block e() { d(); d(); d(); d(); d(); d(); d(); d(); d(); d() }
block f() { e(); e(); e(); e(); e(); e(); e(); e(); e(); e() }
network net {
    input 3x32x32
    classes 10
    stem { conv 3x3, 16; bn; relu }
    stage s = f()
    head { avgpool global; fc classes }
}
""",
        },
        """\
bad.rd:11:15: error: `f()` expands to 1,000,000 ops; the limit is 200,000
   11 |     stage s = f()
      |               ^^^
  hint: blocks that call blocks multiply their sizes; call fewer of them
""",
        args=["check"],
        code=1,
    ),
    Case(
        "several_errors",
        {
            "bad.rd": """\
import "std.rd"
network net {
    input 3x32x32
    classes 10
    stem { conv 3x3, 16; batchnorm; relu }
    stage s = basik(16) * 3
    head { avgpool global; fc classes, bias: 1 }
}
""",
        },
        """\
bad.rd:5:26: error: unknown op `batchnorm`
    5 |     stem { conv 3x3, 16; batchnorm; relu }
      |                          ^^^^^^^^^
  hint: resdsl calls it `bn`
bad.rd:6:15: error: unknown block `basik`
    6 |     stage s = basik(16) * 3
      |               ^^^^^
  hint: did you mean `basic`?
bad.rd:7:46: error: `bias` of `fc` must be true or false, got 1
    7 |     head { avgpool global; fc classes, bias: 1 }
      |                                              ^
""",
        args=["check"],
        code=1,
    ),
    Case(
        "missing_settings",
        {
            "bad.rd": """\
network net {
    stem { conv 3x3, 16; bn; relu }
    head { avgpool global; fc classes }
}
""",
        },
        """\
bad.rd:1:1: error: network `net` needs `input`
    1 | network net {
      | ^
  hint: e.g. `input 3x32x32`
bad.rd:1:1: error: network `net` needs `classes`
    1 | network net {
      | ^
  hint: e.g. `classes 10`
""",
        args=["check"],
        code=1,
    ),
    Case(
        "duplicate_definitions",
        {
            "bad.rd": """\
param n = 1
param n = 2
block u() { relu }
block u() { bn }
network net {
    input 3x32x32
    classes 10
    stem { conv 3x3, 16; bn; relu }
    head { avgpool global; fc classes }
}
""",
        },
        """\
bad.rd:2:1: error: param `n` is defined twice
    2 | param n = 2
      | ^^^^^^^^^^^
bad.rd:1:1: note: first defined here
bad.rd:4:1: error: block `u` is defined twice
    4 | block u() { bn }
      | ^^^^^^^^^^^^^^^^
  hint: rename one of them
bad.rd:3:1: note: first defined here
""",
        args=["check"],
        code=1,
    ),
    Case(
        "imported_file_with_network",
        {
            "bad.rd": """\
import "lib.rd"
network net {
    input 3x32x32
    classes 10
    stem { conv 3x3, 16; bn; relu }
    head { avgpool global; fc classes }
}
""",
            "lib.rd": """\
network net {
    input 3x32x32
    classes 10
    stem { conv 3x3, 16; bn; relu }
    head { avgpool global; fc classes }
}
""",
        },
        """\
lib.rd:1:1: error: an imported file may define only blocks and params
    1 | network net {
      | ^
bad.rd:1:1: note: imported here
""",
        args=["check"],
        code=1,
    ),
    Case(
        "division_by_zero",
        {
            "bad.rd": """\
param n = 0
param depth = 110 / n
network net {
    input 3x32x32
    classes 10
    stem { conv 3x3, 16; bn; relu }
    head { avgpool global; fc classes }
}
""",
        },
        """\
bad.rd:2:15: error: division by zero
    2 | param depth = 110 / n
      |               ^^^^^^^
""",
        args=["check"],
        code=1,
    ),
    Case(
        "conv_after_fc",
        {
            "bad.rd": """\
network net {
    input 3x32x32
    classes 10
    stem { conv 3x3, 16; bn; relu }
    head { avgpool global; fc 64; conv 1x1, classes }
}
""",
        },
        """\
bad.rd:5:35: error: `conv` needs a CxHxW input, but it gets 64 (after an fc)
    5 |     head { avgpool global; fc 64; conv 1x1, classes }
      |                                   ^^^^^^^^^^^^^^^^^
  hint: put fc last
""",
        args=["check"],
        code=1,
    ),
    Case(
        "train_unknown_setting",
        {
            "bad.rd": """\
network net {
    input 3x32x32
    classes 10
    stem { conv 3x3, 16; bn; relu }
    head { avgpool global; fc classes }
}
train {
    batch 128
    epochs 10
    optimizer adam(lr: 0.1)
}
""",
        },
        """\
bad.rd:9:5: error: unknown train setting `epochs`
    9 |     epochs 10
      |     ^^^^^^^^^
  hint: settings: dataset, batch, optimizer, schedule, iterations, warmup, augment, normalize, split, eval_every, checkpoint_every, seed
bad.rd:10:5: error: `optimizer` must be sgd(...), got `adam(...)`
   10 |     optimizer adam(lr: 0.1)
      |     ^^^^^^^^^^^^^^^^^^^^^^^
  hint: e.g. `optimizer sgd(lr: 0.1, momentum: 0.9, weight_decay: 1e-4)`
""",
        args=["check"],
        code=1,
    ),
    Case(
        "library_has_no_network",
        {
            "bad.rd": """\
block u() { relu }
""",
        },
        """\
error: `bad.rd` defines no network
  hint: it is a block library: import it from a spec with a `network NAME { ... }`
""",
        args=["info"],
        code=1,
    ),
    Case(
        "dense_changes_size",
        {
            "bad.rd": """\
block grow(k) {
    dense { bn; relu; conv 3x3, k, stride: 2 }
}
network net {
    input 3x32x32
    classes 10
    stem { conv 3x3, 16; bn; relu }
    stage s = grow(12)
    head { avgpool global; fc classes }
}
""",
        },
        """\
bad.rd:2:5: error: a dense section joins its input 16x32x32 and its body's 12x16x16: their sizes must match
    2 |     dense { bn; relu; conv 3x3, k, stride: 2 }
      |     ^^^^^
  hint: keep stride 1 inside `dense { }`; downsample between dense sections
bad.rd:8:15: note: in block 1 of `s`, `grow` used here
""",
        args=["check"],
        code=1,
    ),
    Case(
        "numbers_out_of_range",
        {
            "bad.rd": """\
param v = 1e400
param w = 0 ** -1
param u = (-8) ** 0.5
network x {
    input 3x32x32
    classes 10
    stem { conv 3x3, 16 }
    head { avgpool global; fc classes }
}
""",
        },
        """\
bad.rd:1:11: error: the number 1e400 is out of range
    1 | param v = 1e400
      |           ^^^^^
  hint: numbers here are at most 1e+18
bad.rd:2:11: error: division by zero (0 to a negative power)
    2 | param w = 0 ** -1
      |           ^^^^^^^
bad.rd:3:11: error: (-8) ** 0.5 is not a real number
    3 | param u = (-8) ** 0.5
      |           ^^^^^^^^^^^
  hint: only whole powers of negative numbers exist
""",
    ),
    Case(
        "zero_kernel",
        {
            "bad.rd": """\
network x {
    input 3x32x32
    classes 10
    stem { conv 0x3, 16; maxpool 0x0 }
    head { avgpool global; fc classes }
}
""",
        },
        """\
bad.rd:4:17: error: `kernel` of `conv` must be a kernel size such as 3x3 or 3, got the size 0x3
    4 |     stem { conv 0x3, 16; maxpool 0x0 }
      |                 ^^^
bad.rd:4:34: error: `kernel` of `maxpool` must be a kernel size such as 3x3 or 3, got the size 0x0
    4 |     stem { conv 0x3, 16; maxpool 0x0 }
      |                                  ^^^
""",
    ),
    Case(
        "nesting_too_deep",
        {"bad.rd": "param v = " + "-" * 150 + "1\n"},
        """\
bad.rd:1:1: error: this param nests more than 100 levels deep
    1 | param v = """
        + "-" * 150
        + "1"
        + """
      | """
        + "^" * 161
        + """
  hint: split the expression with params, or the block into smaller blocks
""",
    ),
    Case(
        "block_calls_too_deep",
        {
            "bad.rd": "".join(f"block a{i}() {{ a{i + 1}() }}\n" for i in range(60))
            + "block a60() { relu }\n"
            + "network x {\n    input 3x32x32\n    classes 10\n    stage s = a0()\n    head { avgpool global; fc classes }\n}\n"
        },
        """\
bad.rd:50:15: error: blocks call blocks more than 50 levels deep (a0 -> a1 -> a2 -> ... -> a50)
   50 | block a49() { a50() }
      |               ^^^
  hint: flatten the chain of blocks
bad.rd:65:15: note: in block `a0` used here
bad.rd:1:14: note: in block `a1` used here
bad.rd:2:14: note: in block `a2` used here
bad.rd:3:14: note: in block `a3` used here
note: ... 43 more
bad.rd:47:15: note: in block `a47` used here
bad.rd:48:15: note: in block `a48` used here
bad.rd:49:15: note: in block `a49` used here
""",
    ),
]


CASES += [
    Case(
        "failed_param_reported_once",  # not again as `unknown name` where other params use it
        {
            "bad.rd": """\
import "std.rd"
param w = 16 / 0
param w2 = w * 2
param w4 = max(w2, 8) + w
network x {
    input 3x32x32
    classes 10
    stem { conv 3x3, w; bn; relu }
    stage s = basic(w2) * 3
    stage t = basic(w4, stride: 2)
    head { avgpool global; fc classes }
}
""",
        },
        """\
bad.rd:2:11: error: division by zero
    2 | param w = 16 / 0
      |           ^^^^^^
""",
    ),
    Case(
        "empty_block_in_a_stage",  # was: check ok, compile crashed with an IndexError
        {
            "bad.rd": """\
block e() { }
network x {
    input 3x8x8
    classes 2
    stem { conv 3x3, 4 }
    stage s = e() * 2
    head { avgpool global; fc classes }
}
""",
        },
        """\
bad.rd:1:1: error: block `e` has no ops: using it does nothing
    1 | block e() { }
      | ^^^^^
  hint: give it at least one op (e.g. `relu`), or remove its uses
bad.rd:6:15: note: `e` used here
""",
        args=["compile"],
    ),
    Case(
        "empty_block_reported_once_not_its_callers",
        {
            "bad.rd": """\
block e() { }
block f() { e() }
network x {
    input 3x8x8
    classes 2
    stem { conv 3x3, 4 }
    stage s = f(), e()
    stage t = f()
    head { avgpool global; fc classes }
}
""",
        },
        """\
bad.rd:1:1: error: block `e` has no ops: using it does nothing
    1 | block e() { }
      | ^^^^^
  hint: give it at least one op (e.g. `relu`), or remove its uses
bad.rd:7:15: note: in block `f` used here
bad.rd:2:13: note: `e` used here
""",
    ),
    Case(
        "terminal_escapes_are_shown_escaped",  # never raw: ESC would drive the terminal
        {
            "bad.rd": """\
param s = "\x1b[2J\u202ered"
network x {
    input 3x8x8
    classes 2
    stem { conv 3x3, s; \x1b]0;title\x07 }
    head { avgpool global; fc classes }
}
""",
        },
        """\
bad.rd:5:25: error: unexpected character `\\x1b`
    5 |     stem { conv 3x3, s; \\x1b]0;title\\x07 }
      |                         ^^^^
  hint: remove it; comments start with `#`
""",
    ),
    Case(
        "terminal_escapes_in_a_string_value",
        {
            "bad.rd": """\
param s = "\x1b[2J\u202ered"
network x {
    input 3x8x8
    classes 2
    stem { conv 3x3, s }
    head { avgpool global; fc classes }
}
""",
        },
        """\
bad.rd:5:22: error: `channels` of `conv` must be a positive whole number of channels, got the string "\\x1b[2J\\u202ered"
    5 |     stem { conv 3x3, s }
      |                      ^
""",
    ),
    Case(
        "a_long_line_is_cut_around_the_caret",  # was: all 200 KB of it echoed
        {"bad.rd": "param v = [" + "1, " * 40000 + "2 3" + ", 4" * 30000 + "]\n"},
        "bad.rd:1:120014: error: unexpected `3`\n"
        "    1 | ..."
        + ", 1" * 31
        + ", 2 3"
        + ", 4" * 32
        + "...\n"
        + " " * 6
        + "| "
        + " " * 100
        + "^\n"
        + "  hint: separate arguments with `,`, e.g. `conv 3x3, 64`\n",
    ),
    Case(
        "form_feed_and_line_separator_keep_line_numbers",  # the excerpt showed line 3 for line 4
        {"bad.rd": 'param a = 1\n\f\nparam b = "x\u2028y"\nparam c = 2 +\n'},
        """\
bad.rd:4:14: error: unexpected end of line
    4 | param c = 2 +
      |              ^
  hint: expected `(`, a block call, a name, a number, a size like 3x3, a string
""",
    ),
    Case(
        "keywords_cannot_name_things",  # `param true = 1` was accepted, and `true` stayed the boolean
        {
            "bad.rd": """\
param true = 1
block not(x, else = 1) { relu }
network n {
    input 3x8x8
    classes 2
    stage stage = not(1)
    head { avgpool global; fc classes }
}
""",
        },
        """\
bad.rd:1:7: error: `true` is a keyword; it cannot name a param
    1 | param true = 1
      |       ^^^^
  hint: choose another name
bad.rd:2:7: error: `not` is a keyword; it cannot name a block
    2 | block not(x, else = 1) { relu }
      |       ^^^
  hint: choose another name
bad.rd:2:14: error: `else` is a keyword; it cannot name a block argument
    2 | block not(x, else = 1) { relu }
      |              ^^^^
  hint: choose another name
bad.rd:6:11: error: `stage` is a keyword; it cannot name a stage
    6 |     stage stage = not(1)
      |           ^^^^^
  hint: choose another name
""",
    ),
    Case(
        "import_a_file_that_is_not_a_spec",  # its first line is not shown: it may be any file
        {"bad.rd": 'import "notes.txt"\n', "notes.txt": "password = hunter2\n"},
        """\
bad.rd:1:1: error: `notes.txt` is not a spec file: it does not begin with `import`, `param`, `block`, `network` or `train`
    1 | import "notes.txt"
      | ^^^^^^^^^^^^^^^^^^
""",
    ),
    Case(
        "import_a_binary_file",
        {"bad.rd": 'import "data.bin"\n', "data.bin": "PATH=/usr/bin\x00SECRET=hunter2\x00"},
        """\
bad.rd:1:1: error: `data.bin` is not a spec file: it holds binary data
    1 | import "data.bin"
      | ^^^^^^^^^^^^^^^^^
""",
    ),
    Case(
        "a_binary_spec",
        {"bad.rd": "PATH=/usr/bin\x00SECRET=hunter2\x00"},
        "error: `bad.rd` is not a spec file: it holds binary data\n",
    ),
    Case(
        "keyword_glued_to_a_name",
        {"bad.rd": "paramk = 3\n"},
        """\
bad.rd:1:1: error: unexpected `paramk`
    1 | paramk = 3
      | ^^^^^^
  hint: keywords are whole words: did you mean `param k`?
""",
    ),
    Case(
        "keyword_glued_in_an_expression",
        {"bad.rd": "param a = 1\nparam k = a andb\n"},
        """\
bad.rd:2:13: error: unexpected `andb`
    2 | param k = a andb
      |             ^^^^
  hint: keywords are whole words: did you mean `and b`?
""",
    ),
    Case(
        "keyword_glued_to_a_number",
        {"bad.rd": "param1 = 3\n"},
        """\
bad.rd:1:1: error: unexpected `param1`
    1 | param1 = 3
      | ^^^^^^
  hint: keywords are whole words: did you mean `param 1`?
""",
    ),
    Case(
        "network_glued_to_its_name",
        {"bad.rd": "networkt {\n    input 3x8x8\n}\n"},
        """\
bad.rd:1:1: error: unexpected `networkt`
    1 | networkt {
      | ^^^^^^^^
  hint: keywords are whole words: did you mean `network t`?
""",
    ),
    Case(
        "gate_body_of_the_wrong_shape",
        {
            "bad.rd": "block g() {\n    gate { conv 1x1, 8; sigmoid }\n}\nnetwork t {\n    input 3x8x8\n    classes 2\n    stem { conv 3x3, 4 }\n    stage s = g()\n    head { avgpool global; fc classes }\n}\n"
        },
        """\
bad.rd:2:5: error: a gate multiplies its input 4x8x8 by its body's 8x8x8: the body must give 4x1x1 (one weight per channel) or 4x8x8
    2 |     gate { conv 1x1, 8; sigmoid }
      |     ^^^^
  hint: end the body with a conv to `in.channels` channels and a `sigmoid`, after `avgpool global`
bad.rd:8:15: note: in block 1 of `s`, `g` used here
""",
    ),
    Case(
        "input_attribute_misspelt",
        {
            "bad.rd": "block b(w) {\n    conv 1x1, in.chanels\n}\nnetwork t {\n    input 3x8x8\n    classes 2\n    stem { conv 3x3, 4 }\n    stage s = b(4)\n    head { avgpool global; fc classes }\n}\n"
        },
        """\
bad.rd:2:15: error: `in.chanels` is not something a spec can read
    2 |     conv 1x1, in.chanels
      |               ^^^^^^^^^^
  hint: inside a block, `in.channels` is the number of channels of the block's input
""",
    ),
    Case(
        "in_channels_outside_a_block",
        {
            "bad.rd": "network t {\n    input 3x8x8\n    classes 2\n    stem { conv 3x3, in.channels }\n    head { avgpool global; fc classes }\n}\n"
        },
        """\
bad.rd:4:22: error: `in.channels` is only known inside a block
    4 |     stem { conv 3x3, in.channels }
      |                      ^^^^^^^^^^^
  hint: it is the channels of the block's input; outside blocks, write the number
""",
    ),
    Case(
        "in_channels_after_a_shape_error_reports_the_root",
        {
            "bad.rd": "block b(w) {\n    conv 3x3, in.channels\n}\nnetwork t {\n    input 3x8x8\n    classes 2\n    stem { conv 3x3, 4; maxpool 3x3, pad: 2 }\n    stage s = b(4)\n    head { avgpool global; fc classes }\n}\n"
        },
        """\
bad.rd:7:25: error: maxpool padding 2x2 is more than half its 3x3 kernel
    7 |     stem { conv 3x3, 4; maxpool 3x3, pad: 2 }
      |                         ^^^^^^^^^^^^^^^^^^^
  hint: PyTorch's pools take at most half the kernel as padding: pad: 1 here
""",
    ),
    Case(
        "import_a_folder",
        {"bad.rd": 'import "lib.rd/"\n', "lib.rd/x.rd": "param x = 1\n"},
        """\
bad.rd:1:1: error: cannot import "lib.rd/": not a regular file
    1 | import "lib.rd/"
      | ^^^^^^^^^^^^^^^^
""",
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_error_text(case: Case, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    result = run_cli(tmp_path, monkeypatch, case.files, [*case.args, case.spec])
    assert_clean_failure(result, case.code)
    assert result.stderr == case.stderr


def test_there_are_at_least_25_kinds() -> None:
    assert len(CASES) + len(SET_CASES) >= 25


# ---------------------------------------------------------------- --set and files on the command line

SET_CASES = [
    (
        "unknown_name",
        ["check", "cifar20.rd", "--set", "m=3"],
        2,
        "error: --set m: no such param or setting (params: stride_at, n)\n",
    ),
    (
        "unknown_name_close_to_a_param",
        ["check", "cifar20.rd", "--set", "shortcat=B"],
        2,
        "error: --set shortcat: no such param or setting; did you mean `shortcut`?\n",
    ),
    (
        "bad_setting_value",
        ["check", "cifar20.rd", "--set", "shortcut=D"],
        2,
        "error: --set shortcut: must be A, B, C, none, identity or identity_or_none, got the bare word `D`;"
        " e.g. `shortcut A` (A | B | C | none | identity)\n",
    ),
    ("without_equals", ["info", "cifar20.rd", "--set", "n"], 2, "error: --set takes NAME=VALUE, got `n`\n"),
    (
        "bad_recipe_value",
        ["info", "cifar20.rd", "--set", "batch=2.5"],
        2,
        "error: --set batch: must be a positive whole number, got 2.5\n",
    ),
    (
        "bad_dataset",
        ["info", "cifar20.rd", "--set", "dataset=coco"],
        2,
        "error: --set dataset: must be cifar10 | cifar100 | mnist | svhn | digits | imagenet | npz | synthetic, got the bare word "
        "`coco`\n",
    ),
    (  # was: "unknown name `abc`" at each of the three uses of n
        "set_a_word_for_a_number",
        ["check", "cifar20.rd", "--set", "n=abc"],
        2,
        "error: --set n: must be a number (the param's default is 3), got the bare word `abc`\n",
    ),
    (
        "set_text_that_is_no_value",
        ["check", "cifar20.rd", "--set", "n=3; import os"],
        2,
        "error: --set n: must be a number (the param's default is 3), got `3; import os`\n",
    ),
    (
        "set_a_number_for_a_string",
        ["check", "cifar20.rd", "--set", "stride_at=2"],
        2,
        'error: --set stride_at: must be a string (the param\'s default is "first"), got 2\n',
    ),
    (
        "missing_spec_file_with_escapes",
        ["check", "no\x1bpe.rd"],
        1,
        "error: cannot read spec `no\\x1bpe.rd`: no such file\n",
    ),
    ("missing_spec_file", ["check", "nope.rd"], 1, "error: cannot read spec `nope.rd`: no such file\n"),
    ("missing_spec_file_info", ["info", "nope.rd", "--json"], 1, "error: cannot read spec `nope.rd`: no such file\n"),
]


@pytest.mark.parametrize("args, code, stderr", [c[1:] for c in SET_CASES], ids=[c[0] for c in SET_CASES])
def test_command_line_errors(args, code, stderr, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    result = run_cli(tmp_path, monkeypatch, {"cifar20.rd": None}, args)
    assert_clean_failure(result, code)
    assert result.stderr == stderr


def test_set_zero_repeats_names_the_override(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    result = run_cli(tmp_path, monkeypatch, {"cifar20.rd": None}, ["check", "cifar20.rd", "--set", "n=0"])
    assert_clean_failure(result, 1)
    assert (
        result.stderr
        == """\
cifar20.rd:14:31: error: a repeat count must be a positive whole number, got 0
   14 |     stage conv2 = basic(16) * n
      |                               ^
  hint: from the command line: --set n=0
cifar20.rd:15:42: error: a repeat count must be a positive whole number, got 0
   15 |     stage conv3 = basic(32, stride: 2) * n
      |                                          ^
  hint: from the command line: --set n=0
cifar20.rd:16:42: error: a repeat count must be a positive whole number, got 0
   16 |     stage conv4 = basic(64, stride: 2) * n
      |                                          ^
  hint: from the command line: --set n=0
"""
    )


def test_oversized_network_is_refused_fast(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A resource guard, not a benchmark: the bound only catches a hang or a build of 80M ops."""
    start = time.perf_counter()
    result = run_cli(tmp_path, monkeypatch, {"cifar20.rd": None}, ["check", "cifar20.rd", "--set", "n=10000000"])
    elapsed = time.perf_counter() - start
    assert_clean_failure(result, 1)
    assert (
        result.stderr
        == """\
cifar20.rd:14:19: error: `basic(16) x n` expands to 10,000,000 blocks of 8 ops (80,000,000 ops); the limit is 200,000
   14 |     stage conv2 = basic(16) * n
      |                   ^^^^^^^^^^^^^
  hint: lower the repeat count
"""
    )
    assert elapsed < 5, elapsed


def test_oversized_nested_blocks_are_refused_fast(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    case = next(c for c in CASES if c.name == "oversized_nested_blocks")
    start = time.perf_counter()
    result = run_cli(tmp_path, monkeypatch, case.files, ["check", "bad.rd"])
    assert time.perf_counter() - start < 5
    assert_clean_failure(result, 1)


def test_check_reports_every_bad_spec_and_goes_on(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`check A B C`: each file's errors, the good ones' ok lines, exit 1."""
    files = {"cifar20.rd": None, "bad.rd": "network x {\n    input 3x32x32\n}\n"}
    result = run_cli(tmp_path, monkeypatch, files, ["check", "bad.rd", "cifar20.rd", "nope.rd"])
    assert result.exit_code == 1
    assert result.stdout == "cifar20.rd: ok: cifar_resnet20, 20 layers, 269,722 params, 40,551,040 FLOPs\n"
    assert (
        result.stderr
        == """\
bad.rd:1:1: error: network `x` needs `classes`
    1 | network x {
      | ^
  hint: e.g. `classes 10`
error: cannot read spec `nope.rd`: no such file
"""
    )


def test_not_utf8(tmp_path: Path) -> None:
    spec = tmp_path / "latin1.rd"
    spec.write_bytes("# caf\xe9\nnetwork x { }\n".encode("latin-1"))
    result = subprocess.run(
        [sys.executable, "-m", "resdsl", "check", str(spec)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 1
    assert result.stderr.endswith("latin1.rd` is not UTF-8 text\n"), result.stderr
    assert "Traceback" not in result.stderr


def test_subprocess_exit_codes_and_no_traceback(tmp_path: Path) -> None:
    """The real entry point: exit 1 with the located message, exit 2 for usage, nothing on stdout."""
    case = next(c for c in CASES if c.name == "several_errors")
    (tmp_path / "bad.rd").write_text(case.files["bad.rd"])
    proc = subprocess.run(
        [sys.executable, "-m", "resdsl", "check", "bad.rd"], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert (proc.returncode, proc.stdout, proc.stderr) == (1, "", case.stderr)
    proc = subprocess.run(
        [sys.executable, "-m", "resdsl", "info", "bad.rd", "--bogus"], cwd=tmp_path, capture_output=True, text=True
    )
    assert proc.returncode == 2 and "No such option '--bogus'" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_several_errors_are_all_reported_in_source_order(tmp_path: Path) -> None:
    case = next(c for c in CASES if c.name == "several_errors")
    (tmp_path / "bad.rd").write_text(case.files["bad.rd"])
    from resdsl.ir.pipeline import load_network

    with pytest.raises(SpecErrors) as info:
        load_network(tmp_path / "bad.rd")
    assert [(e.span.line, e.span.col) for e in info.value.errors] == [(5, 26), (6, 15), (7, 46)]
    assert all(isinstance(e, SpecError) for e in info.value.errors)


def test_library_file_checks_ok(tmp_path: Path) -> None:
    program = load_program(SPECS / "std.rd")
    assert program.network is None and "basic" in program.blocks


# ---------------------------------------------------------------- reading spec files


def test_a_byte_order_mark_is_accepted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Some editors start UTF-8 files with a BOM; it was an `unexpected character`."""
    (tmp_path / "bom.rd").write_bytes(b"\xef\xbb\xbf" + (SPECS / "cifar20.rd").read_bytes())
    (tmp_path / "lib.rd").write_bytes(b"\xef\xbb\xbfparam width = 16\n")
    (tmp_path / "net.rd").write_text(
        (SPECS / "cifar20.rd").read_text().replace('import "std.rd"', 'import "std.rd"\nimport "lib.rd"')
    )
    result = run_cli(tmp_path, monkeypatch, {}, ["check", "bom.rd", "net.rd"])
    assert result.exit_code == 0, result.output
    assert result.stdout.count(": ok: cifar_resnet20, 20 layers") == 2


def test_an_import_symlink_loop_is_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Was a RuntimeError traceback from Path.resolve."""
    (tmp_path / "a.rd").symlink_to("b.rd")
    (tmp_path / "b.rd").symlink_to("a.rd")
    result = run_cli(tmp_path, monkeypatch, {"bad.rd": 'import "a.rd"\n'}, ["check", "bad.rd", "a.rd"])
    assert_clean_failure(result, 1)
    assert (
        result.stderr
        == """\
bad.rd:1:1: error: cannot import "a.rd": too many levels of symbolic links
    1 | import "a.rd"
      | ^^^^^^^^^^^^^
error: cannot read spec `a.rd`: too many levels of symbolic links
"""
    )


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="needs Linux's /proc")
def test_kernel_files_are_not_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """/proc files claim to be regular; the environment must not be echoed as a syntax error."""
    result = run_cli(tmp_path, monkeypatch, {"bad.rd": 'import "/proc/self/environ"\n'}, ["check", "bad.rd"])
    assert_clean_failure(result, 1)
    assert (
        result.stderr
        == """\
bad.rd:1:1: error: cannot import "/proc/self/environ": not a regular file
    1 | import "/proc/self/environ"
      | ^^^^^^^^^^^^^^^^^^^^^^^^^^^
"""
    )
    result = run_cli(tmp_path, monkeypatch, {}, ["check", "/proc/self/environ"])
    assert_clean_failure(result, 1)
    assert result.stderr == "error: cannot read spec `/proc/self/environ`: not a regular file\n"


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs fifos")
def test_a_fifo_is_not_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Opening a fifo would wait for a writer for ever."""
    os.mkfifo(tmp_path / "pipe.rd")
    result = run_cli(tmp_path, monkeypatch, {"bad.rd": 'import "pipe.rd"\n'}, ["check", "pipe.rd", "bad.rd"])
    assert_clean_failure(result, 1)
    assert result.stderr.startswith("error: cannot read spec `pipe.rd`: not a regular file\n")
    assert 'bad.rd:1:1: error: cannot import "pipe.rd": not a regular file\n' in result.stderr


def test_spec_size_is_limited(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A 50 MB spec ran for ever; a file past MAX_SPEC_BYTES is refused before it is read."""
    size = MAX_SPEC_BYTES + 1
    (tmp_path / "big.rd").write_text("#" * (size - 1) + "\n")
    start = time.perf_counter()
    result = run_cli(tmp_path, monkeypatch, {"bad.rd": 'import "big.rd"\n'}, ["check", "big.rd", "bad.rd"])
    assert time.perf_counter() - start < 5
    assert_clean_failure(result, 1)
    assert (
        result.stderr
        == """\
error: cannot read spec `big.rd`: it is 1,000,001 bytes, more than the limit of 1,000,000 bytes for a spec file
bad.rd:1:1: error: cannot import "big.rd": it is 1,000,001 bytes, more than the limit of 1,000,000 bytes for a spec file
    1 | import "big.rd"
      | ^^^^^^^^^^^^^^^
"""
    )


def test_params_are_evaluated_in_one_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """A spec of many params was quadratic (each param copied every earlier one into a new Env:
    15 s for 55,000 params); now one environment grows."""
    from resdsl.ir import params as params_module
    from resdsl.lang import evaluate as evaluate_module
    from resdsl.lang.parser import parse_text

    made = []
    real = evaluate_module.Env.__init__

    def counting(self, *args, **kwargs):
        made.append(1)
        real(self, *args, **kwargs)

    monkeypatch.setattr(evaluate_module.Env, "__init__", counting)
    module = parse_text("".join(f"param p{i} = p{i - 1} + 1\n" if i else "param p0 = 0\n" for i in range(2000)))
    program = type("P", (), {"params": {p.name: p for p in module.params}})()
    values = params_module.evaluate_params(program, {}, [])
    assert values["p1999"] == 1999
    assert len(made) <= 2


def test_info_never_prints_terminal_escapes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A string param is shown in `info`'s heading: ESC (\\x1b[2J clears the screen) is escaped."""
    text = (SPECS / "cifar20.rd").read_text().replace("param n = 3", 'param n = 3\nparam tag = "\x1b[2J\x07"')
    result = run_cli(tmp_path, monkeypatch, {"esc.rd": text}, ["info", "esc.rd"])
    assert result.exit_code == 0, result.output
    assert "\x1b" not in result.stdout and "\x07" not in result.stdout
    assert "tag=\\x1b[2J\\x07" in result.stdout.splitlines()[0]


def test_errors_stop_at_max_errors_and_stay_fast(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """3,000 params that fail, among 3,000 that do not: each error looked for a did-you-mean among
    every name (2,000 of each took 11 s; a 1 MB spec of them, minutes). Now the first MAX_ERRORS
    are reported and the stages stop looking."""
    text = "".join(f"param a{i} = {i}\nparam b{i} = -q{i}\n" for i in range(3000))
    text += "network x {\n    input 3x8x8\n    classes 2\n    head { avgpool global; fc classes }\n}\n"
    start = time.perf_counter()
    result = run_cli(tmp_path, monkeypatch, {"bad.rd": text}, ["check", "bad.rd"])
    assert time.perf_counter() - start < 10
    assert_clean_failure(result, 1)
    lines = result.stderr.splitlines()
    assert sum(line.startswith("bad.rd:") for line in lines) == MAX_ERRORS
    assert lines[:4] == [
        "bad.rd:2:13: error: unknown name `q0`",
        "    2 | param b0 = -q0",
        "      |             ^^",
        "  hint: names here: a0",
    ]
    assert lines[-5:-1] == [
        "bad.rd:200:14: error: unknown name `q99`",
        "  200 | param b99 = -q99",
        " " * 6 + "|" + " " * 14 + "^^^",
        "  hint: did you mean `a99`?",
    ]
    assert lines[-1] == f"error: too many errors; stopped after the first {MAX_ERRORS}"
