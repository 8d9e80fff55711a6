"""`resdsl viz`: the diagrams read back as SVG (XML), PNG/PDF magic bytes, a DOT golden, CLI errors.

The golden DOT files are regenerated on purpose with `python tests/test_viz.py --regen`.
"""

from __future__ import annotations

import re
import shutil
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest
from click.testing import CliRunner

from resdsl.backends import viz
from resdsl.cli.main import main
from resdsl.diagnostics import UsageError
from resdsl.ir.graph import OpKind
from resdsl.ir.pipeline import load_network
from resdsl.lang.overrides import parse_sets

ROOT = Path(__file__).resolve().parent.parent
SPECS = ROOT / "specs"
GOLDEN = Path(__file__).resolve().parent / "golden"
SVG = "{http://www.w3.org/2000/svg}"
HAVE_DOT = shutil.which("dot") is not None
needs_dot = pytest.mark.skipif(not HAVE_DOT, reason="Graphviz's dot is not installed")

# (golden file, spec, --set, view, --block)
GOLDENS = [
    ("viz_cifar20.dot", "cifar20.rd", (), "collapsed", None),
    ("viz_resnet34_conv3_block.dot", "resnet34.rd", (), "block", "conv3"),
]


@cache
def network(spec: str, sets: tuple[str, ...] = ()):
    return load_network(SPECS / spec, parse_sets(sets))


@dataclass
class Item:
    id: str
    kind: str  # node | edge | cluster
    title: str
    texts: list[str]
    xs: list[float]

    @property
    def text(self) -> str:
        return " ".join(t.strip() for t in self.texts)


def svg_items(data: bytes) -> dict[str, Item]:
    """Every node, edge and cluster of a Graphviz SVG, by its id, with its text and x coordinates."""
    root = ET.fromstring(data)
    items = {}
    for g in root.iter(f"{SVG}g"):
        kind = g.get("class", "")
        if kind not in ("node", "edge", "cluster"):
            continue
        title = g.find(f"{SVG}title")
        texts = [t.text or "" for t in g.iter(f"{SVG}text")]
        xs = []
        for shape in g.iter():
            for attr in ("points", "d"):
                if shape.get(attr) and shape.tag in (f"{SVG}polygon", f"{SVG}path"):
                    xs += [float(x) for x in re.findall(r"(-?[\d.]+),-?[\d.]+", shape.get(attr))]
        items[g.get("id")] = Item(g.get("id"), kind, title.text if title is not None else "", texts, xs)
    assert len(items) == sum(1 for g in root.iter(f"{SVG}g") if g.get("class") in ("node", "edge", "cluster")), (
        "duplicate ids in the SVG"
    )
    return items


def svg_of(specs: list[tuple[str, tuple[str, ...]]], view: str = "collapsed", block: str | None = None) -> dict:
    g = viz.draw([(Path(s).stem, network(s, sets)) for s, sets in specs], view=view, block=block)
    return svg_items(g.pipe(format="svg", quiet=True))


def shortcut_edges(items: dict[str, Item]) -> list[Item]:
    return [i for i in items.values() if i.kind == "edge" and "shortcut" in i.id]


# ---------------------------------------------------------------- collapsed


@needs_dot
def test_collapsed_resnet34_has_stem_four_stages_head_with_figures():
    items = svg_of([("resnet34.rd", ())])
    sections = {k.removeprefix("section_"): v for k, v in items.items() if k.startswith("section_")}
    assert list(sections) == ["stem", "conv2", "conv3", "conv4", "conv5", "head"]
    assert all(v.kind == "node" for v in sections.values())
    expected = {
        "stem": ("7x7 conv, 64, /2", "64x56x56 · 9.54K params · 118.01M FLOPs"),
        "conv2": ("basic(64) x 3", "64x56x56 · 221.95K params · 693.63M FLOPs"),
        "conv3": ("basic(128, stride: 2) x 4", "128x28x28 · 1.12M params · 873.46M FLOPs"),
        "conv4": ("basic(256, stride: 2) x 6", "256x14x14 · 6.82M params · 1.34G FLOPs"),
        "conv5": ("basic(512, stride: 2) x 3", "512x7x7 · 13.11M params · 642.25M FLOPs"),
        "head": ("global avg pool · fc 1000", "1000 · 513.00K params · 512.00K FLOPs"),
    }
    for name, (layout, figures) in expected.items():
        text = sections[name].text
        assert text.startswith(name), text
        assert layout in text and figures in text, text
    assert "projection (B) x1, identity x3" in sections["conv3"].text
    assert "shortcuts" not in sections["stem"].text
    # One chain input -> stem -> conv2..5 -> head -> output, the shape on every edge.
    edges = {i.title: i.text for i in items.values() if i.kind == "edge"}
    chain = ["input", *(f"section_{s}" for s in expected), "output"]
    shapes = ["3x224x224", "64x56x56", "64x56x56", "128x28x28", "256x14x14", "512x7x7", "1000"]
    assert edges == {f"{a}->{b}": shape for a, b, shape in zip(chain, chain[1:], shapes)}
    assert "legend" in items and "conv" in items["legend"].texts


@needs_dot
def test_collapsed_stage_layout_uses_evaluated_counts_and_survival():
    items = svg_of([("stochdepth110.rd", ())])
    conv4 = items["section_conv4"].text
    assert "basic(64, stride: 2) x 18" in conv4
    assert "zero-pad (A) x1, identity x17" in conv4
    assert "survival 0.66 → 0.50" in conv4
    # n=3: the count follows --set, and plain counterparts carry no shortcut notes.
    assert "basic(32, stride: 2) x 3" in svg_of([("cifar20.rd", ())])["section_conv3"].text
    plain = svg_of([("cifar20.rd", ("shortcut=none",))])
    assert not any("shortcut" in i.text for i in plain.values() if i.id.startswith("section_"))


# ---------------------------------------------------------------- block view


@needs_dot
def test_block_view_of_plain_net_has_no_shortcut_edge():
    items = svg_of([("plain34.rd", ())], view="block", block="conv3")
    ops = [i.text for i in items.values() if i.kind == "node" and re.fullmatch(r"n\d+", i.id)]
    assert ops == ["3x3 conv, 128, /2", "BN", "ReLU", "3x3 conv, 128", "BN", "ReLU"]
    assert shortcut_edges(items) == []
    assert "+" not in ops and "shortcut" not in items["legend"].text
    # ...while ResNet-34's has exactly one, into the addition.
    res = svg_of([("resnet34.rd", ())], view="block", block="conv3")
    (edge,) = shortcut_edges(res)
    assert edge.text.startswith("projection (B)") and "1x1 conv, 128, /2 + BN" in edge.text
    add = next(i for i in res.values() if i.kind == "node" and i.text == "+")
    assert edge.title.endswith(f"->{add.id}")


@pytest.mark.parametrize(
    ("sets", "block", "label"),
    [
        (("shortcut=A",), "conv2", "identity"),
        (("shortcut=A",), "conv3", "zero-pad (A)"),
        (("shortcut=B",), "conv2", "identity"),
        (("shortcut=B",), "conv3", "projection (B)"),
        (("shortcut=C",), "conv2", "projection (C)"),
        (("shortcut=C",), "conv3", "projection (C)"),
    ],
)
@needs_dot
def test_shortcut_options_label_their_edges(sets, block, label):
    items = svg_of([("cifar20.rd", sets)], view="block", block=block)
    (edge,) = shortcut_edges(items)
    assert edge.texts[0].strip() == label
    if label == "zero-pad (A)":
        assert "/2, +16 zero channels" in edge.text
    if label.startswith("projection"):
        width = 16 if block == "conv2" else 32
        assert f"1x1 conv, {width}" in edge.text


@needs_dot
def test_blocks_view_draws_first_block_of_each_stage_with_survival():
    items = svg_of([("stochdepth110.rd", ("n=2",))], view="block")
    blocks = sorted(k for k, v in items.items() if v.kind == "cluster" and k.startswith("block_"))
    assert blocks == ["block_conv2.0", "block_conv3.0", "block_conv4.0"]
    bodies = [v.text for k, v in items.items() if k.startswith("body_")]
    # linear decay over 6 residual units: block 0 of each stage is unit 1, 3, 5 -> 1 - k/6 * 0.5
    assert bodies == [
        "residual F(x) · survives with p = 0.92",
        "residual F(x) · survives with p = 0.75",
        "residual F(x) · survives with p = 0.58",
    ]
    assert len(shortcut_edges(items)) == 3


@needs_dot
def test_block_view_names_a_block_by_stage_index_or_definition():
    items = svg_of([("resnet50.rd", ())], view="block", block="conv4.2")
    assert "block_conv4.2" in items and "bottleneck(256)" in items["block_conv4.2"].text
    assert "block 3 of 6" in items["block_conv4.2"].text
    dense = svg_of([("densenet40.rd", ())], view="block", block="transition")
    assert "block_dense1.12" in dense and "transition(160)" in dense["block_dense1.12"].text
    layer = svg_of([("densenet40.rd", ())], view="block", block="dense2")
    (edge,) = shortcut_edges(layer)
    assert edge.texts[0].strip() == "concatenation"


def test_unknown_block_name_is_a_usage_error_with_a_hint():
    with pytest.raises(UsageError, match=r"--block conv9: `resnet34` has no stage or block of that name; did you mean"):
        viz.draw([("resnet34", network("resnet34.rd"))], view="block", block="conv9")
    with pytest.raises(UsageError, match=r"`conv3` has blocks conv3.0 to conv3.3"):
        viz.draw([("resnet34", network("resnet34.rd"))], view="block", block="conv3.4")


# ---------------------------------------------------------------- expanded and side by side


@needs_dot
def test_expanded_draws_every_op_in_section_and_block_clusters():
    ir = network("cifar20.rd")
    items = svg_of([("cifar20.rd", ())], view="expanded")
    ops = [i for i in items.values() if i.kind == "node" and re.fullmatch(r"n\d+", i.id)]
    expected = [op for op in ir.ops() if op.kind is not OpKind.SHORTCUT]
    assert sorted(int(i.id[1:]) for i in ops) == sorted(op.id for op in expected)
    clusters = {k for k, v in items.items() if v.kind == "cluster"}
    assert {f"section_{s}" for s in ("stem", "conv2", "conv3", "conv4", "head")} <= clusters
    assert {f"block_conv{s}.{b}" for s in (2, 3, 4) for b in range(3)} <= clusters
    labels = sorted(e.texts[0].strip() for e in shortcut_edges(items))
    assert labels == ["identity"] * 7 + ["zero-pad (A)"] * 2


@needs_dot
def test_side_by_side_has_one_column_per_spec():
    specs = [("vgg19.rd", ()), ("plain34.rd", ()), ("resnet34.rd", ())]
    items = svg_of(specs)
    columns = [items[f"net{i}"] for i in range(3)]
    assert all(c.kind == "cluster" for c in columns) and f"net{len(specs)}" not in items
    assert [c.texts[0] for c in columns] == ["vgg19", "plain34", "resnet34"]
    assert "19 layers · 143.67M params · 19.63G FLOPs" in columns[0].text
    spans = [(min(c.xs), max(c.xs)) for c in columns]
    assert all(a[1] < b[0] for a, b in zip(spans, spans[1:])), spans  # left to right, no overlap
    # every node of a column lies inside it
    for i, (lo, hi) in enumerate(spans):
        nodes = [v for k, v in items.items() if k.startswith(f"s{i}_") and v.kind == "node"]
        assert len(nodes) >= 7 and all(lo <= min(n.xs) and max(n.xs) <= hi for n in nodes)


# ---------------------------------------------------------------- output files and the CLI


def run(args: list[str], env: dict[str, str] | None = None):
    return CliRunner().invoke(main, args, env=env, catch_exceptions=False)


@needs_dot
@pytest.mark.parametrize(("ext", "magic"), [("png", b"\x89PNG\r\n\x1a\n"), ("pdf", b"%PDF-")])
def test_png_and_pdf_have_their_magic_bytes(tmp_path, ext, magic):
    out = tmp_path / f"net.{ext}"
    result = run(["viz", str(SPECS / "cifar20.rd"), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == str(out)
    data = out.read_bytes()
    assert data.startswith(magic) and len(data) > 5000


@needs_dot
def test_default_output_is_spec_name_svg_in_cwd(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = run(["viz", str(SPECS / "resnet34.rd")])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "resnet34.svg"
    items = svg_items((tmp_path / "resnet34.svg").read_bytes())
    assert "section_conv5" in items
    result = run(["viz", str(SPECS / "vgg19.rd"), str(SPECS / "resnet34.rd"), "--set", "stride_at=middle"])
    assert result.output.strip() == "vgg19-resnet34.svg" and (tmp_path / "vgg19-resnet34.svg").exists()


def test_dot_output_needs_no_graphviz_binary_and_other_formats_say_how_to_install(tmp_path):
    no_dot = {"PATH": str(tmp_path)}  # an empty folder: no `dot` on the PATH
    out = tmp_path / "net.dot"
    result = run(["viz", str(SPECS / "cifar20.rd"), "-o", str(out)], env=no_dot)
    assert result.exit_code == 0, result.output
    assert out.read_text().startswith("digraph cifar20 {")
    result = CliRunner().invoke(main, ["viz", str(SPECS / "cifar20.rd"), "-o", str(tmp_path / "n.png")], env=no_dot)
    assert result.exit_code == 1
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "needs Graphviz's `dot` program, which is not installed" in result.output
    assert "apt-get install graphviz" in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "n.png").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-o", "net.jpg"], "error: -o net.jpg: `.jpg` is not a diagram format; use .svg, .png, .pdf or .dot"),
        (["-o", "net"], "error: -o net: no extension is not a diagram format; use .svg, .png, .pdf or .dot"),
        (["--expand", "--blocks"], "error: choose one view: --expand, --block NAME or --blocks"),
        (["--block", "conv3", "--expand"], "error: choose one view: --expand, --block NAME or --blocks"),
    ],
)
def test_cli_usage_errors_exit_2(tmp_path, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["viz", str(SPECS / "cifar20.rd"), *args])
    assert result.exit_code == 2
    assert result.output.strip() == message
    assert list(tmp_path.iterdir()) == []


def test_cli_bad_spec_exits_1_without_traceback(tmp_path):
    bad = tmp_path / "bad.rd"
    bad.write_text("network bad {\n    input 3x32x32\n    classes 10\n    stem { conv 3x3, 16 }\n}\n")
    result = CliRunner().invoke(main, ["viz", str(bad), "-o", str(tmp_path / "bad.dot")])
    assert result.exit_code == 1
    assert "error: the network ends with 16x32x32, but classes is 10" in result.output
    assert "Traceback" not in result.output and not (tmp_path / "bad.dot").exists()


# ---------------------------------------------------------------- DOT golden


def golden_source(spec: str, sets: tuple[str, ...], view: str, block: str | None) -> str:
    return viz.draw([(Path(spec).stem, network(spec, sets))], view=view, block=block).source


@pytest.mark.parametrize(("name", "spec", "sets", "view", "block"), GOLDENS)
def test_dot_source_matches_golden(name, spec, sets, view, block):
    expected = (GOLDEN / name).read_text()
    assert golden_source(spec, sets, view, block) == expected, f"regenerate with: python {__file__} --regen"


if __name__ == "__main__":
    if sys.argv[1:] != ["--regen"]:
        sys.exit(f"usage: python {sys.argv[0]} --regen   (rewrites tests/golden/viz_*.dot)")
    for name, spec, sets, view, block in GOLDENS:
        (GOLDEN / name).write_text(golden_source(spec, sets, view, block))
        print(f"wrote {GOLDEN / name}")


def test_non_square_kernels_are_labelled_per_dimension(tmp_path: Path) -> None:
    """A non-square pool's default stride is its kernel, (height, width): `/1x3`, not a crash."""
    from resdsl.backends.viz.labels import op_label

    spec = tmp_path / "k.rd"
    spec.write_text(
        "network x {\n    input 3x16x48\n    classes 2\n    stem { conv 1x7, 8; maxpool 1x3; avgpool 2x2 }\n"
        "    head { avgpool global; fc classes }\n}\n"
    )
    ir = load_network(spec)
    labels = [op_label(op) for op in ir.ops() if op.kind in (OpKind.CONV, OpKind.MAXPOOL, OpKind.AVGPOOL)]
    assert labels == ["1x7 conv, 8", "1x3 max pool, /1x3", "2x2 avg pool, /2"]
    dot = tmp_path / "k.dot"
    result = CliRunner().invoke(main, ["viz", str(spec), "-o", str(dot), "--expand"])
    assert result.exit_code == 0, result.output
    assert "1x3 max pool, /1x3" in dot.read_text()
