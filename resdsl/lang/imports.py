"""Imports and top-level names: one spec file and everything it imports -> a Program."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path

from resdsl.diagnostics import Note, SpecError, collect
from resdsl.lang import syntax
from resdsl.lang.parser import parse_text

STDLIB = Path(str(files("resdsl.lang") / "stdlib"))  # where `import "std.rd"` is found from any spec


@dataclass
class Program:
    """The merged top level of a spec: params, blocks, the network and its recipe."""

    path: str
    params: dict[str, syntax.ParamDef] = field(default_factory=dict)
    blocks: dict[str, syntax.BlockDef] = field(default_factory=dict)
    network: syntax.NetworkDef | None = None
    train: syntax.TrainDef | None = None


def display_path(path: Path) -> str:
    """Relative to the current directory where that is shorter; the standard library as `<std>/NAME`."""
    if path.parent == STDLIB.resolve():
        return f"<std>/{path.name}"
    try:
        rel = os.path.relpath(path)
    except ValueError:
        return str(path)
    return rel if not rel.startswith("..") else str(path)


def load_program(path: str | Path) -> Program:
    path = Path(path)
    if not path.is_file():
        raise SpecError(f"cannot read spec `{path}`: no such file")
    errors: list[SpecError] = []
    modules: list[syntax.Module] = []
    resolved = path.resolve()
    _load(resolved, None, [], {}, modules, errors)
    collect(errors)
    return _merge(modules, errors)


def _locate(name: str, importer: Path) -> Path | None:
    for base in (importer.parent, STDLIB):
        candidate = (base / name).resolve()
        if candidate.is_file():
            return candidate
    return None


def _load(
    path: Path,
    via: syntax.Import | None,
    stack: list[Path],
    seen: dict[Path, syntax.Module],
    out: list[syntax.Module],
    errors: list[SpecError],
) -> None:
    if path in stack:
        cycle = " -> ".join(display_path(p) for p in stack[stack.index(path) :] + [path])
        errors.append(
            SpecError(f"import cycle: {cycle}", via.span if via else None, "move shared blocks into a file both import")
        )
        return
    if path in seen:
        return
    try:
        data = path.read_bytes()
        # as Path.read_text(encoding="utf-8") decodes: universal newlines
        module = parse_text(data.decode("utf-8").replace("\r\n", "\n").replace("\r", "\n"), display_path(path))
    except UnicodeDecodeError:
        errors.append(SpecError(f"`{display_path(path)}` is not UTF-8 text", via.span if via else None))
        return
    except SpecError as err:
        errors.append(err)
        return
    seen[path] = module
    for imp in module.imports:
        target = _locate(imp.path, path)
        if target is None:
            errors.append(
                SpecError(
                    f'cannot find imported file "{imp.path}"',
                    imp.span,
                    f"looked next to {display_path(path)} and in the standard library ({_std_names()})",
                )
            )
            continue
        _load(target, imp, stack + [path], seen, out, errors)
    if stack and (module.networks or module.trains):
        item = (module.networks or module.trains)[0]
        errors.append(
            SpecError(
                "an imported file may define only blocks and params",
                item.span,
                notes=[Note("imported here", via.span)] if via else None,
            )
        )
    out.append(module)


def _std_names() -> str:
    return ", ".join(sorted(p.name for p in STDLIB.glob("std*.rd"))) or "none installed"


def _merge(modules: list[syntax.Module], errors: list[SpecError]) -> Program:
    """Imported modules come first in `modules`; the main file is last and may override params."""
    main = modules[-1]
    program = Program(main.path)
    param_owner: dict[str, str] = {}
    for module in modules:
        for p in module.params:
            if p.name in program.params and param_owner[p.name] == module.path:
                errors.append(
                    SpecError(
                        f"param `{p.name}` is defined twice",
                        p.span,
                        notes=[Note("first defined here", program.params[p.name].span)],
                    )
                )
                continue
            program.params[p.name] = p
            param_owner[p.name] = module.path
        for b in module.blocks:
            if b.name in program.blocks:
                other = program.blocks[b.name]
                errors.append(
                    SpecError(
                        f"block `{b.name}` is defined twice",
                        b.span,
                        "rename one of them",
                        [Note("first defined here", other.span)],
                    )
                )
                continue
            program.blocks[b.name] = b
    for extra in main.networks[1:]:
        errors.append(
            SpecError(
                "a spec file defines one network", extra.span, notes=[Note("the first is here", main.networks[0].span)]
            )
        )
    for extra in main.trains[1:]:
        errors.append(SpecError("a spec file has one train section", extra.span))
    collect(errors)
    program.network = main.networks[0] if main.networks else None
    program.train = main.trains[0] if main.trains else None
    return program
