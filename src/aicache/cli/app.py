"""The Typer application: command groups and the one place errors are printed."""

from __future__ import annotations

import os
import sqlite3
import sys
from typing import Annotated

import typer

from aicache import __version__
from aicache.cli import (
    admin,
    cache,
    dashboard,
    imports,
    models,
    node,
    prefetch,
    privacy,
    semantic_judge,
    semantic_service,
    server,
    simulate,
    status,
    ui,
)
from aicache.cli.common import finite_floats
from aicache.cli.console import print_error, print_interrupted
from aicache.errors import AicacheError, Interrupted
from aicache.local.paths import aicache_home, store_path
from aicache.local.store import unreadable

app = typer.Typer(
    name="aicache",
    help="A private cache for AI command-line assistants, that learns with others.",
    no_args_is_help=True,
    add_completion=True,
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


# Registered in the order of the help's panels.
cache.register(app)
app.command("status")(status.cache_status)
models.register(app)
prefetch.register(app)
simulate.register(app)
app.add_typer(imports.app, name="import")
node.register(app)
app.add_typer(server.app, name="server")
dashboard.register(server.app)
app.add_typer(privacy.app, name="privacy")
admin.register(app)
semantic_judge.register(app)
semantic_service.register(semantic_judge.app)
app.command("ui")(ui.ui)

# The help's panels, like gh's and uv's: every command belongs to one.
PANELS = {
    "Cache": (
        "run",
        "wrap",
        "unwrap",
        "status",
        "list",
        "inspect",
        "stats",
        "wrong",
        "clear",
        "prune",
    ),
    "Learning": ("suggest", "prefetch", "simulate", "evaluate", "models", "import", "semantic"),
    "Federation": ("join", "leave", "node", "server"),
    "Privacy": ("privacy",),
    "Admin": ("config", "doctor", "ui"),
}


def _place_in_panels(typer_app: typer.Typer) -> None:
    """Put each top-level command and group in its help panel (all of them: see tests)."""
    panel_of = {name: panel for panel, names in PANELS.items() for name in names}
    for command in typer_app.registered_commands:
        if command.name in panel_of:
            command.rich_help_panel = panel_of[command.name]
    for group in typer_app.registered_groups:
        if group.name in panel_of:
            group.rich_help_panel = panel_of[group.name]


_place_in_panels(app)


def run_app(args: list[str]) -> int:
    """Run the Typer application and turn every user-facing error into a message."""
    from aicache.cli.keep_scorer import learned_scorer
    from aicache.local.eviction import use_scorer_provider

    use_scorer_provider(learned_scorer)  # what a cache past its budget evicts by
    try:
        finite_floats(typer.main.get_command(app))(args=args, prog_name="aicache")
    except Interrupted as exc:  # the command ended what it started and says how to go on
        print_interrupted(exc.message)
        sys.stdout.flush()
        sys.stderr.flush()
        # Ray's native threads would hold the interpreter's exit for seconds
        # after its processes are gone; nothing of ours is left open.
        os._exit(exc.exit_code)
    except KeyboardInterrupt:
        print_interrupted("interrupted")
        return 130
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
