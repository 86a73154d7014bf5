"""``aicache prefetch``: refresh the answers you are predicted to need soon."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Annotated

import typer

from aicache.cli.common import (
    RegistryOption,
    YesOption,
    checked,
    confirm,
    open_store,
    registry_dir,
)
from aicache.cli.console import out
from aicache.errors import AicacheError
from aicache.local import cache as cache_ops
from aicache.local.context import KEY_ENVIRONMENT
from aicache.local.settings import Settings
from aicache.local.units import parse_duration


def prefetchable_tools(k: int, registry: Path | None) -> tuple[frozenset[str], frozenset[str]]:
    """The programs of the ``k`` likeliest next commands, and those of them prefetch may run.

    Only tools the user listed in the ``prefetch-tools`` setting may be re-run
    without them: a re-run of an AI CLI may be a paid call.
    """
    from aicache.deploy.serving import suggest_next

    with open_store() as store:
        allowed = Settings.from_stored(store.settings()).prefetch_tools
        answer = suggest_next(store, registry_dir(registry), k=k, directory=Path.cwd())
    predicted = frozenset(s.tokens.split(" ", 1)[0] for s in answer.suggestions)
    return predicted, predicted & allowed


RERUN_TIMEOUT_S = 600


def _rerun(entry: cache_ops.Refreshable, timeout_s: float = RERUN_TIMEOUT_S) -> int | None:
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
    # An entry keyed on an empty input is re-run on an empty input, so that
    # the same key comes back (no input at all would be another key).
    stdin = ["--stdin"] if entry.empty_input else []
    command = [
        *(sys.executable, "-m", "aicache", "run", "--refresh", "--scope", scope),
        *ttl,
        *stdin,
        "--",
    ]
    proc = subprocess.Popen(
        [*command, *entry.argv],
        cwd=workdir,
        env=env,
        stdin=subprocess.PIPE if entry.empty_input else subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    if proc.stdin is not None:
        proc.stdin.close()  # the empty input
    try:
        return proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        _stop(proc)
        return 124  # what timeout(1) reports
    except KeyboardInterrupt:
        _stop(proc)
        raise


STOP_GRACE_S = 5.0


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """End a re-run and the command it started.

    The command runs in its own process group, which killing aicache alone
    would leave running: SIGTERM lets aicache pass the signal on to it, and
    what is still there after a grace period is killed.
    """
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=STOP_GRACE_S)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def prefetch(
    k: Annotated[int, typer.Option("--k", help="How many predicted commands to serve.")] = 3,
    within: Annotated[
        str, typer.Option("--within", help="Also refresh entries expiring this soon.")
    ] = "1h",
    timeout: Annotated[
        str, typer.Option("--timeout", help="Stop a command that runs longer than this.")
    ] = "10m",
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only list what would run.")] = False,
    yes: YesOption = False,
    registry: RegistryOption = None,
) -> None:
    """Re-run expired cached answers of allowed tools you are predicted to run next.

    Only tools listed in the prefetch-tools setting are re-run; the number of
    calls and their tools are shown first, and the question is skipped with --yes.
    """
    checked("--k", k, 1, 20)
    try:
        window = parse_duration(within)
    except ValueError as exc:
        raise AicacheError(f"--within: {exc}") from exc
    try:
        timeout_s = parse_duration(timeout)
    except ValueError as exc:
        raise AicacheError(f"--timeout: {exc}") from exc
    predicted, tools = prefetchable_tools(k, registry)
    with open_store() as store:
        allowed = Settings.from_stored(store.settings()).prefetch_tools
        due = cache_ops.refreshable(store, tools, now=time.time(), within_s=window)
    out.print(f"Predicted next: {', '.join(sorted(predicted))}.", highlight=False)
    if not allowed:
        raise AicacheError(
            "no tool is allowed to be prefetched: a re-run may be a paid AI call",
            hint="Allow the tools whose answers may be refreshed without you, for example "
            "`aicache config set prefetch-tools make,llm`.",
        )
    if not due:
        out.print(
            f"Nothing to refresh: no expired answer of an allowed tool "
            f"({', '.join(sorted(allowed))}) that is predicted next.",
            highlight=False,
        )
        return
    calls = Counter(entry.argv[0] for entry in due)
    cost = ", ".join(f"{count} × {tool}" for tool, count in sorted(calls.items()))
    runs = f"{len(due)} command{'s' if len(due) != 1 else ''}"
    out.print(f"Prefetch will run {runs}: {cost}.", highlight=False)
    for entry in due:
        out.print(f"  {' '.join(entry.argv)}", markup=False, highlight=False)
    if dry_run:
        return
    if not confirm(f"Run {runs} ({cost}) now?", yes):
        out.print("Nothing was run.")
        return
    failures = 0
    for entry in due:
        shown = " ".join(entry.argv)
        code = _rerun(entry, timeout_s)
        if code is None:
            out.print(f"  skipped (its folder is gone): {shown}", markup=False)
            continue
        failures += code != 0
        out.print(f"  {'refreshed' if code == 0 else f'failed ({code})'}: {shown}", markup=False)
    if failures:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add the prefetch command to ``app``."""
    app.command("prefetch")(prefetch)
