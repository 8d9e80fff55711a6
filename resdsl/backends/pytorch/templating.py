"""The Jinja2 environment of the PyTorch back end's templates (package data)."""

from __future__ import annotations

from functools import lru_cache

import jinja2


@lru_cache(maxsize=1)
def template_env() -> jinja2.Environment:
    """Blocks trimmed, undefined names an error, no escaping (the output is Python, not HTML)."""
    return jinja2.Environment(
        loader=jinja2.PackageLoader("resdsl.backends.pytorch", "templates"),
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined,
        autoescape=False,
    )
