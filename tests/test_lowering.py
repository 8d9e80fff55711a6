"""Lowering reads block templates only (resdsl.ir.template): a network lowers the same with every
block's syntax made unreadable once its template is built, and the op-count guard (MAX_OPS) counts
from templates."""

from __future__ import annotations

from pathlib import Path

import pytest

import resdsl.ir.lower as lower_module
from resdsl.diagnostics import SpecError
from resdsl.ir.limits import MAX_OPS
from resdsl.ir.lower import lower
from resdsl.ir.params import evaluate_params
from resdsl.ir.passes import analyze
from resdsl.ir.templating import Templates
from resdsl.lang.imports import load_program

SPECS = Path(__file__).resolve().parent.parent / "specs"


class Unreadable(list):
    """A block's body or formals after its template is built: reading it fails the test."""

    def _fail(self, *args, **kwargs):
        raise AssertionError("lowering read a block's syntax tree")

    __iter__ = __len__ = __getitem__ = __bool__ = __contains__ = _fail


def _first_seen(keys) -> list[int]:
    """Keys (item keys depend on the order templates are built) as the order they first appear in."""
    order: dict[str, int] = {}
    return [order.setdefault(k, len(order)) for k in keys]


def _program(tmp_path: Path, text: str):
    spec = tmp_path / "t.rd"
    spec.write_text(text)
    return load_program(spec)


@pytest.mark.parametrize(
    "spec", ["cifar20.rd", "preact_resnet110.rd", "resnet50d.rd", "seresnet50.rd", "densenet121.rd", "mobilenet_v2.rd"]
)
def test_a_network_lowers_from_its_templates_alone(spec: str, monkeypatch: pytest.MonkeyPatch) -> None:
    path = SPECS / spec
    expected = lower(load_program(path))
    analyze(expected)

    program = load_program(path)
    templates = Templates(program, evaluate_params(program, {}, []))
    templates.all()  # built from the syntax once, before lowering starts
    for bdef in program.blocks.values():
        bdef.body, bdef.formals = Unreadable(), Unreadable()
    monkeypatch.setattr(lower_module, "Templates", lambda program, params: templates)
    ir = lower(program)
    analyze(ir)
    assert [(op.kind, op.attrs, op.span) for op in ir.ops()] == [(op.kind, op.attrs, op.span) for op in expected.ops()]
    assert _first_seen(op.origin for op in ir.ops()) == _first_seen(op.origin for op in expected.ops())
    assert ir.totals.params == expected.totals.params
    assert all(op.origin for op in ir.ops() if op.scope.block is not None)
    uses = [inst for s in ir.sections for inst in s.blocks]
    assert uses and [(u.definition, u.args, u.defaulted) for u in uses] == [
        (u.definition, u.args, u.defaulted) for s in expected.sections for u in s.blocks
    ]


def test_max_ops_counts_template_items(tmp_path: Path) -> None:
    """Both branches of an `if`, a section's preact and written shortcut plus its shortcut and merge,
    calls through their callee's template; a branch decided by the spec's params counts alone."""
    program = _program(
        tmp_path,
        """\
param deep = false
block unit(w, s = 1) {
    residual {
        preact { bn; relu }
        conv 3x3, w, stride: s
        if s > 1 { bn; relu } else { bn }
        shortcut { avgpool 2x2, ceil: true; conv 1x1, w; bn }
    }
}
block pair(w) { unit(w); unit(w, s: 2); if deep { relu; relu; relu } else { relu } }
block a() { b() }
block b() { a(); relu }
network t { input 3x32x32
    classes 10
    stage s = pair(16)
}
""",
    )
    templates = Templates(program, evaluate_params(program, {}, []))
    # unit: preact 2 + conv 1 + if (2 + 1) + shortcut path 3 + shortcut and merge 2
    assert templates.max_ops("unit") == 11
    assert templates.max_ops("pair") == 2 * 11 + 1
    assert templates.block("pair").max_ops == 23  # counted once, kept on the template
    assert templates.max_ops("a") == 1  # recursion counts nothing: lowering reports it at the call
    assert templates.block("unit").signature == "unit(w, s = 1)"


def test_the_op_count_guard_reads_the_templates(tmp_path: Path) -> None:
    calls = "; ".join(["unit(8)"] * 100)
    program = _program(
        tmp_path,
        f"""\
block unit(w) {{ residual {{ preact {{ bn; relu }}; conv 3x3, w; bn }} }}
block many() {{ {calls} }}
block many_more() {{ {"; ".join(["many()"] * 400)} }}
network t {{
    input 3x32x32
    classes 10
    stem {{ conv 3x3, 8 }}
    stage s = many_more()
}}
""",
    )
    per = 2 + 2 + 2  # preact, body, shortcut and merge
    with pytest.raises(SpecError) as caught:
        lower(program)
    assert caught.value.message == (f"`many_more()` expands to {400 * 100 * per:,} ops; the limit is {MAX_OPS:,}")
    assert caught.value.hint == "blocks that call blocks multiply their sizes; call fewer of them"


def test_a_repeated_stage_is_refused_with_its_block_bound() -> None:
    """`preact_basic`'s bound is the ops a use emits: preact 2, body 4, shortcut and merge 2 (the
    syntax-tree count said 10: it counted `preact { }` as a section with a merge of its own)."""
    program = load_program(SPECS / "preact_resnet110.rd")
    ir = lower(program)
    conv2 = next(s for s in ir.sections if s.name == "conv2")
    assert len(conv2.nodes) == 18 * 8
    with pytest.raises(SpecError) as caught:
        lower(load_program(SPECS / "preact_resnet110.rd"), {"n": 10_000_000})
    assert caught.value.message == (
        "`preact_basic(16) x n` expands to 10,000,000 blocks of 8 ops (80,000,000 ops); the limit is 200,000"
    )
