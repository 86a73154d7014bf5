"""``aicache semantic service status|stop``: see and stop the warm semantic service."""

from __future__ import annotations

import typer

from aicache.cli.common import JsonOption, emit_json
from aicache.cli.console import out
from aicache.errors import AicacheError
from aicache.local.paths import aicache_home
from aicache.local.semantic_client import ServiceError, status, stop
from aicache.local.units import format_duration

app = typer.Typer(
    help="The warm process that answers semantic lookups of misses (started by the first one).",
    no_args_is_help=True,
)


@app.command("status")
def show_status(as_json: JsonOption = False) -> None:
    """Whether the service runs, since when, and what it holds."""
    try:
        found = status(aicache_home())
    except ServiceError as exc:
        raise AicacheError(str(exc), hint="`aicache semantic service stop` ends it.") from exc
    if as_json:
        emit_json(
            {"running": False}
            if found is None
            else {
                "running": True,
                "pid": found.pid,
                "uptime_s": found.uptime_s,
                "served": found.served,
                "idle_exit_s": found.idle_s,
                "vectors": found.vectors,
                "model_loaded": found.available,
            }
        )
        return
    if found is None:
        out.print("The semantic service is not running (the next miss of a prompt starts it).")
        return
    model = "" if found.available else " without its embedding model (semantic hits are off)"
    out.print(
        f"The semantic service runs{model} as process {found.pid}, "
        f"up {format_duration(round(found.uptime_s))}, {found.served} lookups answered, "
        f"{found.vectors} cached prompts in memory; it exits after "
        f"{format_duration(found.idle_s)} without a lookup."
    )


@app.command("stop")
def stop_service() -> None:
    """Stop the service now (the next miss of a prompt starts it again)."""
    try:
        pid = stop(aicache_home())
    except ServiceError as exc:
        raise AicacheError(str(exc)) from exc
    if pid is None:
        out.print("The semantic service was not running.")
    else:
        out.print(f"Stopped the semantic service (process {pid}).")


def register(parent: typer.Typer) -> None:
    """Add ``semantic service`` to ``parent`` (the ``semantic`` group)."""
    parent.add_typer(app, name="service")


__all__ = ["app", "register"]
