"""The Typer application: command groups and the one place errors are printed."""

from __future__ import annotations

import sqlite3
from typing import Annotated

import typer

from aicache import __version__
from aicache.cli import admin, cache, imports, models, node, prefetch, privacy, server, simulate
from aicache.cli.common import finite_floats
from aicache.cli.console import print_error
from aicache.errors import AicacheError
from aicache.local.paths import aicache_home, store_path
from aicache.local.store import unreadable

app = typer.Typer(
    name="aicache",
    help="A private cache for AI command-line assistants, that learns with others.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"aicache {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Show the version and exit."
        ),
    ] = False,
) -> None:
    """A private cache for AI command-line assistants, that learns with others."""


cache.register(app)
admin.register(app)
simulate.register(app)
models.register(app)
prefetch.register(app)
node.register(app)
app.add_typer(imports.app, name="import")
app.add_typer(privacy.app, name="privacy")
app.add_typer(server.app, name="server")


def run_app(args: list[str]) -> int:
    """Run the Typer application and turn every user-facing error into a message."""
    try:
        finite_floats(typer.main.get_command(app))(args=args, prog_name="aicache")
    except AicacheError as exc:
        print_error(exc.message, exc.hint)
        return exc.exit_code
    except sqlite3.DatabaseError as exc:  # damage found after the store was opened
        error = unreadable(store_path(aicache_home()), str(exc))
        print_error(error.message, error.hint)
        return error.exit_code
    except SystemExit as exc:  # Typer's own exits: --help, usage errors, typer.Exit
        if exc.code is None or isinstance(exc.code, int):
            return exc.code or 0
        print_error(str(exc.code))
        return 1
    return 0
