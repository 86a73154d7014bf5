"""``aicache import``: real shell usage into the private store."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from aicache.cli.common import open_store
from aicache.cli.console import out
from aicache.errors import AicacheError
from aicache.local.history import (
    SHELLS,
    default_history_file,
    parse_greenberg,
    parse_history,
    read_text,
)
from aicache.local.importer import import_commands

app = typer.Typer(help="Import real shell usage into the private store.", no_args_is_help=True)


def _read(path: Path) -> str:
    if path.is_dir():
        raise AicacheError(f"{path} is a directory, not a history file")
    try:
        return read_text(path)
    except FileNotFoundError as exc:
        raise AicacheError(f"{path} does not exist") from exc
    except OSError as exc:
        raise AicacheError(f"cannot read {path}: {exc.strerror or exc}") from exc


@app.command("history")
def history(
    file: Annotated[
        Path | None, typer.Argument(help="The history file (default: the shell's default).")
    ] = None,
    shell: Annotated[
        str | None, typer.Option("--shell", help="bash, zsh or fish (default: from $SHELL).")
    ] = None,
) -> None:
    """Import a shell history (bash, zsh or fish) as commands."""
    chosen = shell or Path(os.environ.get("SHELL", "bash")).name
    if chosen not in SHELLS:
        raise AicacheError(f"--shell: unknown shell {chosen!r}: choose one of {', '.join(SHELLS)}")
    path = file or default_history_file(chosen, Path.home())
    commands = parse_history(_read(path), chosen)
    with open_store() as store:
        result = import_commands(store, commands, source=chosen, origin=str(path))
    out.print(
        f"Imported {result.added} commands from {path} ({result.skipped} already there or empty)."
    )


@app.command("greenberg")
def greenberg(
    path: Annotated[Path, typer.Argument(help="A user's trace file, or the folder of traces.")],
    user: Annotated[
        str | None, typer.Option("--user", help="The user to import when PATH is a folder.")
    ] = None,
) -> None:
    """Import one user's trace in Greenberg's UNIX-usage format (one user per store)."""
    if path.is_dir():
        users = sorted(
            p.name for p in path.iterdir() if p.is_file() and not p.name.startswith(("README", "."))
        )
        if not user:
            raise AicacheError(
                f"{path} is a folder of {len(users)} users; a store holds one user",
                hint=f"Pick one with --user: {', '.join(users)}",
            )
        if user not in users:
            raise AicacheError(
                f"--user: no trace named {user!r} in {path}",
                hint=f"Choose one of {', '.join(users)}",
            )
        path = path / user
    elif not path.exists():
        raise AicacheError(f"{path} does not exist")
    try:
        commands = parse_greenberg(_read(path))
    except ValueError as exc:
        raise AicacheError(f"{path}: {exc}") from exc
    name = user or path.name
    with open_store() as store:
        result = import_commands(store, commands, source="greenberg", origin=str(path), user=name)
    sessions = len({c.session for c in commands})
    out.print(
        f"Imported {result.added} commands in {sessions} sessions of {name} "
        f"({result.skipped} already there)."
    )
