"""Module names (`name:`, resdsl.ir.modnames) fuzzed: hostile values in every place a spec names a module.

`generate(rng)` fills one to five of the `name:` slots of a small network (ops of a block, of the stem and the
head, the stem and head as a whole, two stages) with names made of hostile parts: dots in odd places, `#`,
`{i}`, `{n}` and other braces, Python keywords, dunders, nn.Module attributes (`forward`, `training`,
`state_dict`, ...), the generated code's own names (`self`, `layer1`, `conv1`, `fc`, `downsample`), positions
(`0`, `00`, `01`), non-ASCII letters (`é`, the ligature `ﬁ` that Python reads as `fi`), 300 characters; one
name in four is reused in another slot (a collision), and some are torchvision-like names that work.

`check_one(text)` is the property: `check` either passes, and then the spec goes through the whole spec
harness (fuzz.harness.check_one: compile, a module that builds and matches its IR, a train step) and the built
module holds every module path the IR decided (`ir.paths.module_paths`) and every full path the spec named on
a stem or head op; or it gives an error located in the spec (`fuzz.rd:LINE:COL: error: ...`), never an
unlocated one, a traceback, or a module that does not build. Anything else is a Finding.
"""

from __future__ import annotations

import random
import re
import tempfile
from pathlib import Path

from fuzz.harness import SPEC_NAME, Finding, Outcome, _deadline, _stage, check_rendered
from fuzz.harness import check_one as check_spec
from resdsl.diagnostics import ResdslError

TIMEOUT_S = 60.0
TEMPLATE = """\
param n = 2

block b(c, stride = 1) {
    residual {
        conv 3x3, c, stride: stride@B1; bn@B2; relu@B3
        conv 3x3, c@B4; bn@B5
    }
    relu@B6
}

network t {
    input 3x8x8
    classes 3
    shortcut B
    stem@STEM { conv 3x3, 4@S1; bn@S2; relu@S3 }
    stage s1@G1 = b(4) * n
    stage s2@G2 = b(8, stride: 2) * n
    head@HEAD { avgpool global@H1; fc classes@H2 }
}
"""
OP_SLOTS = {
    "B1": ",",
    "B2": "",
    "B3": "",
    "B4": ",",
    "B5": "",
    "B6": "",
    "S1": ",",
    "S2": "",
    "S3": "",
    "H1": ",",
    "H2": ",",
}
WHOLE_SLOTS = ("STEM", "G1", "G2", "HEAD")  # `stem(name: ...)`, `stage s1(name: ...)`
PATH_SLOTS = ("S1", "S2", "S3", "H1", "H2")  # a full path from the network: it must be in the built module
PARTS = (
    "features", "classifier", "blocks", "layer", "norm1", "x", "a_b", "A", "0", "1", "00", "01", "18", "#", "{i}",
    "{n}", "x{i}", "{i}{n}", "{n}_", "{j}", "{", "}", "{{i}}", "", " ", "a b", "a-b", "1a", "class", "def", "None",
    "True", "lambda", "match", "self", "_x", "__init__", "__class__", "__dict__", "forward", "training",
    "state_dict", "modules", "T_destination", "cuda", "to", "add_module", "register_buffer", "layer1", "layer2",
    "layer0", "conv1", "bn1", "relu", "fc", "avgpool", "downsample", "stem", "head", "s1", "b", "nn", "torch",
    "out", "é", "ﬁ", "K", "\\", "'", "x" * 300,
)  # fmt: skip
GOOD = {  # names that work, by slot kind: a block's attribute, a path from the network, a stage's pattern
    "block": ("norm1", "conv_a", "conv.0.0", "conv.1", "bn", "x1", "layer1", "fc"),
    "path": ("features.norm0", "features.0", "classifier", "conv0", "head.fc", "stem.1.bn", "layer1", "fc"),
    "whole": ("features.#", "classifier.#", "stem.#", "head.#"),
    "stage": ("features.{i}", "layer1.{i}", "features.block{n}", "features.#", "blocks.{i}.0", "layer2.{i}"),
}
LOCATED = re.compile(r"(?:.*/)?" + re.escape(SPEC_NAME) + r":\d+:\d+: error: ")


def _kind(slot: str) -> str:
    if slot in WHOLE_SLOTS:
        return "stage" if slot.startswith("G") else "whole"
    return "block" if slot.startswith("B") else "path"


def _name(rng: random.Random, slot: str) -> str:
    if rng.random() < 0.35:
        return rng.choice(GOOD[_kind(slot)])
    parts = [rng.choice(PARTS) for _ in range(rng.choice((1, 1, 2, 2, 3, 4)))]
    sep = rng.choice((".", ".", ".", "..", "_"))
    name = sep.join(parts)
    if rng.random() < 0.1:
        name = rng.choice((".", "#.", "")) + name + rng.choice((".", ".#", ""))
    return name


def generate(rng: random.Random) -> str:
    """A spec with one to five `name:` slots filled with hostile (or, now and then, working) names."""
    slots = rng.sample([*OP_SLOTS, *WHOLE_SLOTS], rng.randint(1, 5))
    names: dict[str, str] = {}
    for slot in slots:
        names[slot] = names[rng.choice(list(names))] if names and rng.random() < 0.25 else _name(rng, slot)
    fill = {}
    for slot in [*OP_SLOTS, *WHOLE_SLOTS]:
        if slot not in names:
            fill[slot] = ""
        elif slot in OP_SLOTS:
            fill[slot] = f'{OP_SLOTS[slot]} name: "{names[slot]}"'
        else:
            fill[slot] = f'(name: "{names[slot]}")'
    return _fill(fill)


def _fill(values: dict[str, str]) -> str:
    return re.sub(r"@([A-Z]+\d?)", lambda m: values[m.group(1)], TEMPLATE)


def generated(text: str) -> bool:
    """Whether a spec is the template with names in its slots (what `generate` makes), nothing else changed."""
    return re.sub(r',? name: "[^"\n]*"|\(name: "[^"\n]*"\)', "", text) == seeds()["names-plain"]


def named_paths(text: str) -> list[str]:
    """The full paths the spec names on stem and head ops (those `check` must keep as they are)."""
    found = []
    for line in text.splitlines():
        if line.lstrip().startswith(("stem", "head")):
            body = line[line.find("{") :]
            found += [p for p in re.findall(r'name: "([^"]*)"', body) if "#" not in p and "{" not in p]
    return found


def check_one(data: str | bytes, *, timeout: float | None = TIMEOUT_S, **kwargs: object) -> Outcome:
    """The property above for one spec; return how it ended, or raise Finding."""
    text = data.decode("utf-8", "surrogateescape") if isinstance(data, bytes) else data
    with tempfile.TemporaryDirectory(prefix="resdsl-fuzz-names-") as tmp:
        spec = Path(tmp) / SPEC_NAME
        spec.write_text(text, encoding="utf-8", errors="surrogateescape")
        with _deadline(timeout), _stage("names: check"):
            from resdsl.ir.pipeline import load_network

            try:
                ir = load_network(spec)
            except ResdslError as err:
                check_rendered(err, "names: check")
                headline = err.render().splitlines()[0]
                text_only = "\x00" not in text and not any("\udc80" <= c <= "\udcff" for c in text)  # no stray bytes
                if text_only and not LOCATED.match(headline):  # (a file that is not text is refused as a whole)
                    raise Finding("unlocated-name-error", "names: check", headline[:200], type(err).__name__) from None
                return Outcome.ERROR
    outcome = check_spec(text, timeout=timeout, **kwargs)  # type: ignore[arg-type]
    if outcome is not Outcome.COMPILED and not generated(text):
        return outcome  # the spec mutator (fuzz.run) made more than names: a refusal of other things is allowed
    if outcome is not Outcome.COMPILED:
        raise Finding("not-compiled", "names: compile", f"checked, then {outcome.value}", outcome.value)
    with _deadline(timeout), _stage("names: module"):
        _check_module(ir, named_paths(text))
    return outcome


def _check_module(ir, wanted: list[str]) -> None:
    """The built module holds every path the IR decided and every path the spec named."""
    import torch

    from resdsl.backends.pytorch.codegen import render_model
    from resdsl.backends.pytorch.verify import load_module
    from resdsl.ir.paths import module_paths

    with torch.device("meta"):  # the module tree only: no memory for the weights of a big mutant
        model = load_module(render_model(ir, SPEC_NAME)).build_model()
    have = {name for name, _ in model.named_modules()}
    missing = sorted({*module_paths(ir).values(), *wanted} - have)
    if missing:
        raise Finding("missing-module", "names: module", f"no module at {', '.join(missing[:5])}", "paths")


def seeds() -> dict[str, str]:
    """The template with no names and with torchvision-like ones, each a spec that compiles."""
    plain = _fill(dict.fromkeys([*OP_SLOTS, *WHOLE_SLOTS], ""))
    named = plain.replace("stage s1 =", 'stage s1(name: "features.{i}") =').replace(
        "fc classes }", 'fc classes, name: "classifier" }'
    )
    return {"names-plain": plain, "names-torchvision": named}
