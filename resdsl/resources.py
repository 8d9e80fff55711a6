"""Where the grammar, templates and the standard spec library live (checkout or wheel)."""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def resource_dir(name: str) -> Path:
    """`grammars`, `templates` or `specs`: inside the installed package, else the checkout."""
    bundled = _PACKAGE / name
    if bundled.is_dir():
        return bundled
    return _PACKAGE.parent / name
