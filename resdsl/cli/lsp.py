"""`resdsl lsp`: the language server, over stdio."""

from __future__ import annotations

import click


@click.command("lsp")
@click.option("--stdio", is_flag=True, help="Talk over stdin and stdout (the default and only transport).")
@click.option("--clientProcessId", "client_pid", type=int, hidden=True)  # what some clients pass; unused
def lsp_command(stdio: bool, client_pid: int | None) -> None:
    """Run the language server (for editors: diagnostics, hover, inlay hints, definitions, completion)."""
    try:
        from resdsl.lsp.server import serve
    except ImportError as err:  # pygls is the `lsp` extra
        from resdsl.diagnostics import UsageError

        raise UsageError(f"resdsl lsp needs pygls ({err.name}): pip install 'resdsl[lsp]'") from None
    serve()
