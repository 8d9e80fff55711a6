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


def template_env():
    """The Jinja2 environment of templates/: blocks trimmed, undefined names an error, no escaping."""
    import jinja2

    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(resource_dir("templates"))),
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined,
        autoescape=False,
    )
