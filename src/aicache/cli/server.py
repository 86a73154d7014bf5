"""Operator commands: ``aicache server ...`` (initialisation so far)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from aicache.cli.console import out

app = typer.Typer(help="Run a federation server (operator commands).", no_args_is_help=True)


@app.command("init")
def init(
    directory: Annotated[Path, typer.Argument(help="The federation directory to create.")],
    name: Annotated[str, typer.Option("--name", help="The federation's name.")] = "aicache",
    host: Annotated[
        list[str] | None,
        typer.Option("--host", help="A name or address clients use (repeatable)."),
    ] = None,
    port: Annotated[int, typer.Option("--port", help="The SuperLink's port.")] = 9092,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing federation.")] = False,
) -> None:
    """Create a CA, a server certificate, a model-signing key (Ed25519) and a config."""
    from aicache.security.federation_dir import CONFIG, init_federation

    files = init_federation(directory, name=name, hosts=host or [], port=port, force=force)
    out.print(f"Federation {name!r} initialised in {files.root} (keys owner-only).")
    out.print(f"Edit {files.path(CONFIG)} for its tasks, strategy and privacy settings.")
