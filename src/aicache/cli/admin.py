"""Administrative commands: config and doctor."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from aicache.cli.common import open_store
from aicache.cli.console import out
from aicache.errors import AicacheError
from aicache.local.doctor import diagnose, repair
from aicache.local.paths import configured_home
from aicache.local.settings import (
    SETTINGS,
    Settings,
    erase_raw_text,
    raw_text_kept,
    validate_setting,
)

config_app = typer.Typer(help="Show or change settings.", no_args_is_help=True)


@config_app.command("show")
def config_show() -> None:
    """Show every setting with its value and meaning."""
    with open_store() as store:
        values = Settings.from_stored(store.settings()).describe()
    table = Table("setting", "value", "meaning")
    for name, setting in SETTINGS.items():
        table.add_row(name, values[name], setting.help)
    out.print(table)


@config_app.command("set")
def config_set(
    name: Annotated[str, typer.Argument(help=f"One of: {', '.join(SETTINGS)}.")],
    value: Annotated[str, typer.Argument(help="The new value.")],
) -> None:
    """Change a setting."""
    try:
        normalised = validate_setting(name, value)
    except ValueError as exc:
        raise AicacheError(str(exc)) from exc
    raw_off = name == "raw-storage" and SETTINGS[name].parse(normalised) is False
    with open_store() as store:
        store.set_setting(name, normalised)
        prompts, lines = raw_text_kept(store.conn) if raw_off else (0, 0)
        if prompts or lines:
            # Off means no raw text in the store, including what was kept while it was on.
            out.print(
                f"Raw storage off: erasing the raw text kept so far ({prompts} prompt(s), "
                f"{lines} imported command line(s))."
            )
            erase_raw_text(store.conn)
    out.print(f"{name} = {normalised}")


def doctor(
    fix: Annotated[
        bool, typer.Option("--repair", help="Repair: keep the broken file aside, salvage rows.")
    ] = False,
) -> None:
    """Check the private store; with --repair, make it usable again without losing data."""
    home = configured_home()  # unchecked: doctor reports a home it cannot use
    findings = diagnose(home)
    colours = {"ok": "green", "warning": "yellow", "problem": "red"}
    for finding in findings:
        out.print(f"[{colours[finding.level]}]{finding.level:>8}[/] {finding.message}")
    broken = any(f.level == "problem" for f in findings)
    if not fix:
        if broken:
            out.print("Run `aicache doctor --repair` to salvage what is readable into a new store.")
            raise typer.Exit(1)
        return
    result = repair(home)
    if result.backup:
        out.print(f"Moved the broken store aside to {result.backup} (kept as a backup).")
        for table, count in result.salvaged.items():
            out.print(f"  salvaged {count} rows of {table}")
        for table in result.lost_tables:
            out.print(f"  [yellow]could not read {table}[/]")
    elif result.fixed_permissions:
        out.print("Permissions set to owner-only.")


def register(app: typer.Typer) -> None:
    """Add the admin commands to ``app``."""
    app.add_typer(config_app, name="config")
    app.command("doctor")(doctor)
