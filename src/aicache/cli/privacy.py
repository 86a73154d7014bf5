"""``aicache privacy``: export, show and forget everything kept about the user."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from aicache.cli.common import JsonOption, YesOption, confirm, emit_json, open_store
from aicache.cli.console import out, when
from aicache.local.paths import aicache_home
from aicache.local.privacy import export_data, forget, kept_data
from aicache.local.settings import Settings
from aicache.local.units import format_size

app = typer.Typer(help="See, export and erase what aicache keeps about you.", no_args_is_help=True)


@app.command("export")
def export(
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="Write here instead of stdout.")
    ] = None,
) -> None:
    """Everything kept about you, as one JSON document (data portability)."""
    home = aicache_home()
    with open_store() as store:
        document = export_data(store, home)
    emit_json(document, output)
    if output is not None:
        out.print(f"Exported to {output}.")


@app.command("show")
def show(as_json: JsonOption = False) -> None:
    """What is kept, how much, and for how long."""
    with open_store() as store:
        kept = kept_data(store)
        settings = Settings.from_stored(store.settings())
        path = store.path
    if as_json:
        emit_json(
            {
                "store": str(path),
                "settings": settings.describe(),
                "kept": [asdict(k) for k in kept],
            }
        )
        return
    out.print(f"Store: {path} (readable by you only; nothing here leaves this machine)")
    table = Table("what", "records", "size", "oldest", "newest", "kept for")
    for k in kept:
        table.add_row(
            k.kind, str(k.rows), format_size(k.bytes), when(k.oldest), when(k.newest), k.retention
        )
    out.print(table)


@app.command("report")
def report(as_json: JsonOption = False) -> None:
    """What left this machine for a federation, and the ε, δ spent on your data per task."""
    from aicache.cli.common import registry_dir
    from aicache.deploy.node import NodeHome
    from aicache.privacy.modes import sent_as
    from aicache.registry import ModelRegistry

    node = NodeHome()
    with ModelRegistry(registry_dir(None)) as registry:
        rows = node.privacy_report(registry)
    if as_json:
        emit_json({"joined": node.joined() is not None, "tasks": rows})
        return
    if not rows:
        out.print(
            "Nothing has left this machine: it has not taken part in a federated round "
            "(only model updates ever would; `aicache join` joins a federation)."
        )
        return
    out.print("Only model updates (parameter arrays and one example count) left this machine.")
    for row in rows:
        out.print(
            f"[bold]{row['task']}[/]: {row['updates_sent']} update(s), "
            f"{format_size(row['bytes_sent'])}, in {row['rounds']} round(s) "
            f"of {row['runs']} run(s), "
            f"{when(row['first'])} to {when(row['last'])}"
        )
        for mode, count in row["secure"].items():
            out.print(f"  {count} update(s) {sent_as(mode)}")
        if row["updates_without_dp"]:
            out.print(
                f"  ε = ∞: {row['updates_without_dp']} update(s) were sent without differential "
                "privacy, so no finite guarantee holds for your data in this task"
            )
        elif row["epsilon"] is None:
            out.print("  ε not known yet: `aicache models pull` brings the signed privacy record")
        else:
            line = f"  ε = {row['epsilon']:.3g}, δ = {row['delta']:.1e} ({row['mechanism']})"
            if row["updates_after_that"]:
                line += f"; {row['updates_after_that']} later update(s) not yet in this account"
            out.print(line)


@app.command("forget")
def forget_command(
    yes: YesOption = False,
    force: Annotated[
        bool,
        typer.Option("--force", help="Also erase store files that are not recognisably aicache's."),
    ] = False,
    registry: Annotated[
        bool,
        typer.Option(
            "--registry",
            help="Also erase the model registry and the simulations' registry in the home.",
        ),
    ] = False,
) -> None:
    """Erase the store, every copy of it, and any personal model state."""
    home = aicache_home()
    if not confirm(f"Erase everything aicache keeps about you in {home}?", yes):
        raise typer.Exit(1)
    erased = forget(home, force=force, registry=registry)
    if not erased:
        out.print(f"Nothing to erase in {home}.")
        return
    out.print(f"Erased {len(erased)} item(s):")
    for item in erased:
        out.print(f"  {escape(str(item.path))}  [dim]({item.what})[/]", soft_wrap=True)
