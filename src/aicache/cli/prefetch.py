"""``aicache prefetch``: refresh the answers you are predicted to need soon."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Annotated

import typer

from aicache.cli.common import RegistryOption, checked, load_model, open_store, registry_dir
from aicache.cli.console import out
from aicache.errors import AicacheError
from aicache.local import cache as cache_ops
from aicache.local.context import KEY_ENVIRONMENT
from aicache.local.units import parse_duration


def predicted_tools(k: int, registry: Path | None) -> frozenset[str]:
    """The programs of the ``k`` likeliest next commands (empty without a model)."""
    from aicache.features.history_items import items_from_store
    from aicache.local.importer import directory_hash
    from aicache.registry import ModelRegistry
    from aicache.simulation.evaluation import ensure_compatible
    from aicache.tasks.next_command import NextCommandContext, NextCommandTask

    task = NextCommandTask()
    with ModelRegistry(registry_dir(registry)) as reg:
        version = reg.latest(task.name)
        if version is None:
            return frozenset()
        params = load_model(reg, version)
    ensure_compatible(task.name, params)
    with open_store() as store:
        history = items_from_store(store.conn)
    context = NextCommandContext(history=history, dir_hash=directory_hash(str(Path.cwd())), k=k)
    return frozenset(command.split(" ", 1)[0] for command in task.predict(params, context))


RERUN_TIMEOUT_S = 600


def _rerun(entry: cache_ops.Refreshable) -> int | None:
    """Re-run one entry's command where it first ran, through the cache, with no terminal.

    Returns the exit status, or ``None`` when the place it ran in is gone (a run
    elsewhere would store another key and refresh nothing).
    """
    workdir = entry.context.get("project") or entry.context.get("dir")
    if workdir is not None and not Path(workdir).is_dir():
        return None
    scope = (
        "project" if "project" in entry.context else "dir" if "dir" in entry.context else "global"
    )
    env = {k: v for k, v in os.environ.items() if k not in KEY_ENVIRONMENT}
    env.update({k: v for k, v in entry.context.items() if k in KEY_ENVIRONMENT})
    ttl = [] if entry.ttl_s is None else ["--ttl", f"{max(1, round(entry.ttl_s))}s"]
    command = [sys.executable, "-m", "aicache", "run", "--refresh", "--scope", scope, *ttl, "--"]
    try:
        return subprocess.run(
            [*command, *entry.argv],
            cwd=workdir,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            check=False,
            timeout=RERUN_TIMEOUT_S,
        ).returncode
    except subprocess.TimeoutExpired:
        return 124  # what timeout(1) reports


def prefetch(
    k: Annotated[int, typer.Option("--k", help="How many predicted commands to serve.")] = 3,
    within: Annotated[
        str, typer.Option("--within", help="Also refresh entries expiring this soon.")
    ] = "1h",
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only list what would run.")] = False,
    registry: RegistryOption = None,
) -> None:
    """Refresh expired cached answers of the commands you are predicted to run next."""
    checked("--k", k, 1, 20)
    try:
        window = parse_duration(within)
    except ValueError as exc:
        raise AicacheError(f"--within: {exc}") from exc
    tools = predicted_tools(k, registry)
    if not tools:
        raise AicacheError(
            "there is no next-command model to predict with",
            hint="Run `aicache simulate` (or join a federation) first.",
        )
    with open_store() as store:
        due = cache_ops.refreshable(store, tools, now=time.time(), within_s=window)
    out.print(f"Predicted next: {', '.join(sorted(tools))}; {len(due)} cached answers to refresh.")
    failures = 0
    for entry in due:
        shown = " ".join(entry.argv)
        if dry_run:
            out.print(f"  would refresh: {shown}")
            continue
        code = _rerun(entry)
        if code is None:
            out.print(f"  skipped (its folder is gone): {shown}")
            continue
        failures += code != 0
        out.print(f"  {'refreshed' if code == 0 else f'failed ({code})'}: {shown}")
    if failures:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add the prefetch command to ``app``."""
    app.command("prefetch")(prefetch)
