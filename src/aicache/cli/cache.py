"""Cache commands: run, wrap, unwrap, list, inspect, stats, wrong, clear, prune."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from aicache.cli.common import JsonOption, YesOption, bad_value, confirm, emit_json, open_store
from aicache.cli.console import ago, out, when
from aicache.cli.semantic import semantic_provider
from aicache.errors import AicacheError
from aicache.local import cache as cache_ops
from aicache.local.adapters import ADAPTERS
from aicache.local.eviction import Budget, EvictionResult, current_scorer, enforce_budget
from aicache.local.runner import RUN_USAGE, parse_run_args, run
from aicache.local.semantic_store import (
    REASK_S,
    mark_last_wrong,
    prune_feedback,
    semantic_stats,
)
from aicache.local.settings import Settings
from aicache.local.shims import (
    NotAShimError,
    ShimReach,
    default_bin_dir,
    remove_shim,
    shim_reach,
    write_shim,
)
from aicache.local.stats import cache_stats
from aicache.local.units import format_size, parse_duration


def run_command(ctx: typer.Context) -> None:
    """Run CMD through the cache: a hit replays its output without starting it.

    Options (before the command): [bold]--refresh[/] runs it anyway and replaces the
    entry; [bold]--ttl DURATION[/] (30s, 10m, 2h, 7d) makes the entry expire;
    [bold]--no-store[/] keeps the result out of the cache; [bold]--scope
    project|dir|global[/] sets what the answer is keyed to (default: the project,
    i.e. the git repository you are in); [bold]--stdin[/] reads standard input
    into the key (known AI tools that take a prompt on stdin do so anyway);
    [bold]--exact[/] serves only an answer to this very command (no semantic hit).
    A miss of a prompt may be served the cached answer to a reworded prompt of the
    same tool, model and scope, when the semantic-hit model says it fits: one
    stderr line names the cached prompt and the score (see `aicache wrong`).
    Only results of commands that exit 0 are stored; outputs above the max-output
    setting pass through unstored. Sessions and subcommands that read or change a
    known tool's state (llm chat, llm logs, claude --continue) always run directly,
    and AICACHE_DISABLE=1 runs everything directly.
    """
    try:
        request = parse_run_args(list(ctx.args))
    except ValueError as exc:
        raise AicacheError(f"aicache run: {exc}") from exc
    raise typer.Exit(run(request, semantic=semantic_provider))


def _launcher() -> list[str]:
    # The console script beside this interpreter, else the interpreter itself:
    # either way the shim does not depend on PATH to find aicache.
    script = Path(sys.executable).parent / "aicache"
    return [str(script)] if script.is_file() else [sys.executable, "-m", "aicache"]


def wrap(
    tool: Annotated[
        str, typer.Argument(help="The command to route through the cache, e.g. claude.")
    ],
    bin_dir: Annotated[
        Path | None,
        typer.Option("--bin-dir", help="Where to put the shim (default: ~/.local/bin)."),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Replace a file that is not a shim.")
    ] = False,
) -> None:
    """Install a shim so that TOOL always goes through the cache.

    Prompts of the tools in the adapter table are cached; their sessions and
    state-changing subcommands run directly. Any other tool runs directly until
    you mark commands of it cacheable: aicache config set cacheable 'TOOL SUBCOMMAND'.
    """
    target_dir = bin_dir or default_bin_dir()
    try:
        shim = write_shim(tool, target_dir, _launcher(), force=force)
    except ValueError as exc:
        raise AicacheError(str(exc)) from exc
    except NotAShimError as exc:
        raise AicacheError(
            f"{exc} exists and is not an aicache shim", hint="Pass --force to replace it."
        ) from exc
    except OSError as exc:
        raise _unwritable(target_dir, exc) from exc
    reach = shim_reach(tool, target_dir)
    if not reach.active:
        raise _inactive(tool, shim, target_dir, reach)
    out.print(f"Wrapped {tool}: {shim}")
    if tool not in ADAPTERS:
        out.print(
            f"{tool} is not in the adapter table: it runs uncached until you mark commands "
            f"of it cacheable, e.g. aicache config set cacheable '{tool} SUBCOMMAND'."
        )


def _unwritable(directory: Path, exc: OSError) -> AicacheError:
    reason = exc.strerror or str(exc)
    where = f" ({exc.filename})" if exc.filename and Path(exc.filename) != directory else ""
    return AicacheError(
        f"cannot write a shim in {directory}: {reason}{where}",
        hint="Choose a folder you can write, with --bin-dir DIR, and put it first on PATH.",
    )


def _inactive(tool: str, shim: Path, directory: Path, reach: ShimReach) -> AicacheError:
    """The error for a shim the shell will not find first (it stays installed)."""
    if not reach.on_path:
        problem = f"{directory} is not on PATH"
    elif reach.ahead is not None:
        problem = f"{reach.ahead} comes before {directory} on PATH"
    else:
        problem = f"the shell does not find {tool} in {directory}"
    return AicacheError(
        f"installed {shim}, but typing {tool} will not use it: {problem}",
        hint=(
            f'Put {directory} first: add  export PATH="{directory}:$PATH"  at the end of '
            f"~/.bashrc or ~/.zshrc (fish: fish_add_path --move {directory}), open a new "
            f"shell (or run hash -r), and check that `command -v {tool}` prints {shim}."
        ),
        exit_code=1,
    )


def unwrap(
    tool: Annotated[str, typer.Argument(help="The command whose shim to remove.")],
    bin_dir: Annotated[
        Path | None, typer.Option("--bin-dir", help="Where the shim is (default: ~/.local/bin).")
    ] = None,
) -> None:
    """Remove the shim of TOOL (the real program is never touched)."""
    target_dir = bin_dir or default_bin_dir()
    try:
        shim = remove_shim(tool, target_dir)
    except FileNotFoundError as exc:
        raise AicacheError(f"no aicache shim for {tool} at {exc}") from exc
    except OSError as exc:
        raise _unwritable(target_dir, exc) from exc
    out.print(f"Unwrapped {tool}: removed {shim}")


def list_entries(
    tool: Annotated[str | None, typer.Option("--tool", help="Only entries of this tool.")] = None,
    search: Annotated[
        str | None,
        typer.Option("--search", help="Only entries whose command contains TEXT (any case)."),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """List cache entries, newest first."""
    with open_store() as store:
        entries = cache_ops.list_entries(store, tool=tool)
    if search is not None:
        wanted = search.casefold()
        entries = [e for e in entries if wanted in " ".join(e.argv).casefold()]
    if as_json:
        emit_json(
            [
                {
                    "key": e.key,
                    "tool": e.tool,
                    "argv": list(e.argv),
                    "bytes": e.size,
                    "created_at": e.created_at,
                    "expires_at": e.expires_at,
                    "hits": e.hits,
                }
                for e in entries
            ]
        )
        return
    if not entries:
        out.print("No entry matches." if search or tool else "The cache is empty.")
        return
    table = Table("key", "tool", "command", "size", "age", "expires", "hits")
    now = time.time()
    for e in entries:
        command = " ".join(e.argv)
        table.add_row(
            e.key[:12],
            e.tool,
            command if len(command) <= 60 else command[:57] + "...",
            format_size(e.size),
            ago(e.created_at, now),
            _expiry(e.expires_at, now),
            str(e.hits),
        )
    out.print(table)


def _expiry(expires_at: float | None, now: float) -> str:
    """``in 5m``, ``never``, or ``expired 3m ago`` (prune removes it unless prefetch needs it)."""
    if expires_at is None:
        return "never"
    return f"expired {ago(expires_at, now)}" if expires_at <= now else ago(expires_at, now)


def inspect(
    key: Annotated[str, typer.Argument(help="A key or the first characters of one (see list).")],
    as_json: JsonOption = False,
) -> None:
    """Show everything kept for one cache entry."""
    with open_store() as store:
        entry = cache_ops.get_entry(store, key)
    s = entry.summary
    stdout = entry.stdout.decode("utf-8", "replace")
    stderr = entry.stderr.decode("utf-8", "replace")
    if as_json:
        emit_json(
            {
                "key": s.key,
                "tool": s.tool,
                "argv": list(s.argv),
                "stdin_sha256": entry.stdin_sha256,
                "context": entry.context,
                "exit_code": entry.exit_code,
                "duration_s": entry.duration_s,
                "created_at": s.created_at,
                "expires_at": s.expires_at,
                "hits": s.hits,
                "last_hit_at": entry.last_hit_at,
                "stdout": stdout,
                "stderr": stderr,
            }
        )
        return
    table = Table.grid(padding=(0, 2))
    for name, value in (
        ("key", s.key),
        ("command", " ".join(s.argv)),
        ("stdin sha256", entry.stdin_sha256 or "-"),
        ("context", ", ".join(f"{k}={v}" for k, v in entry.context.items()) or "-"),
        ("exit code", str(entry.exit_code)),
        ("took", f"{entry.duration_s:.3f} s"),
        ("created", when(s.created_at)),
        ("expires", when(s.expires_at) if s.expires_at else "never"),
        ("hits", str(s.hits)),
        ("last hit", when(entry.last_hit_at)),
        ("size", format_size(s.size)),
    ):
        table.add_row(f"[bold]{name}[/]", value)
    out.print(table)
    out.rule("stdout")
    out.print(stdout, markup=False, highlight=False, end="")
    if stderr:
        out.rule("stderr")
        out.print(stderr, markup=False, highlight=False, end="")


def stats(as_json: JsonOption = False) -> None:
    """Hits, misses, hit rate, time and bytes saved, per tool."""
    with open_store() as store:
        result = cache_stats(store)
        meaning = semantic_stats(store)
    semantic = {
        "hits": meaning.hits,
        "exact_hits": result.total.hits - meaning.hits,
        "wrong": meaning.wrong,
        "wrong_rate": round(meaning.wrong_rate, 6),
        "indexed_prompts": meaning.indexed,
    }
    if as_json:
        emit_json({**result.as_dict(), "semantic": semantic})
        return
    table = Table(
        "tool",
        "calls",
        "hits",
        "misses",
        "errors",
        "hit rate",
        "time saved",
        "bytes saved",
        "too large",
    )
    for row in (*result.tools, result.total):
        style = "bold" if row is result.total else None
        table.add_row(
            row.tool,
            str(row.calls),
            str(row.hits),
            str(row.misses),
            str(row.errors),
            f"{row.hit_rate:.1%}",
            f"{row.time_saved_s:.1f} s",
            format_size(row.bytes_saved),
            str(row.not_stored_too_large),
            style=style,
        )
    out.print(table)
    out.print(f"{result.entries} entries, {format_size(result.entry_bytes)} of output kept.")
    out.print(
        f"Hits: {semantic['exact_hits']} exact, {meaning.hits} semantic "
        f"({meaning.wrong} wrong, {meaning.wrong_rate:.1%}); "
        f"{result.total.time_saved_s:.1f} s saved.",
        highlight=False,
    )
    if result.total.not_stored_too_large:
        out.print(
            f"{result.total.not_stored_too_large} outputs were larger than the max-output "
            "setting: passed through, not stored."
        )


def wrong() -> None:
    """Mark the last semantic hit wrong: that answer is not served for that prompt again."""
    with open_store() as store:
        marked = mark_last_wrong(store)
    if marked is None:
        raise AicacheError(
            "no semantic hit to mark wrong: none was served (or it was pruned)",
            hint="A semantic hit says so on stderr when it is served.",
            exit_code=1,
        )
    row, already = marked
    said = "was already marked wrong" if already else "marked wrong"
    out.print(
        f'{said}: "{row.query}" was served the answer to "{row.cached_prompt}" '
        f"(score {row.score:.2f}, {ago(row.ts, time.time())}, {row.tool}).",
        highlight=False,
        markup=False,
    )
    if not already:
        out.print(
            "Asking it again runs the tool. A semantic hit re-asked within "
            f"{REASK_S / 60:.0f} min, or refreshed, counts as wrong without this.",
            highlight=False,
        )


def clear(yes: YesOption = False) -> None:
    """Delete every cache entry (statistics stay; see `privacy forget` to erase all)."""
    if not confirm("Delete every cache entry?", yes):
        raise typer.Exit(1)
    with open_store() as store:
        removed = cache_ops.clear(store)
    out.print(f"Deleted {removed} entries.")


def prune(
    max_age: Annotated[
        str | None,
        typer.Option("--max-age", help="Retention window (default: setting max-age, 30d)."),
    ] = None,
) -> None:
    """Delete expired entries, and prompts and answers older than the retention window."""
    with open_store() as store:
        settings = Settings.from_stored(store.settings())
        try:
            age = settings.max_age_s if max_age is None else parse_duration(max_age)
        except ValueError as exc:
            raise bad_value(exc, "--max-age") from exc
        keep = _prefetchable_or_nothing()
        now = time.time()
        result = cache_ops.prune(store, now=now, max_age_s=age, keep_tools=keep)
        prune_feedback(store, now=now, max_age_s=age)
        budget = Budget(settings.max_entries, settings.max_size)
        evicted = enforce_budget(store, budget, current_scorer(store)) if budget.limited else None
    out.print(
        f"Pruned {result.expired} expired and {result.aged} old entries; "
        f"cleared raw text from {result.raw_cleared} records."
    )
    if evicted is not None:
        _print_budget(evicted, settings)
    if result.kept_expired:
        entries = "entry" if result.kept_expired == 1 else "entries"
        out.print(
            f"Kept {result.kept_expired} expired {entries} of {', '.join(sorted(keep))} for "
            "`aicache prefetch` to refresh (allowed in prefetch-tools and predicted next).",
            highlight=False,
        )


def _print_budget(evicted: EvictionResult, settings: Settings) -> None:
    """Say how the budget was enforced, and by which policy."""
    limits = [
        f"{settings.max_entries} entries" if settings.max_entries is not None else "",
        format_size(settings.max_size) if settings.max_size is not None else "",
    ]
    within = " and ".join(limit for limit in limits if limit)
    if evicted.evicted:
        entries = "entry" if evicted.evicted == 1 else "entries"
        out.print(
            f"Evicted {evicted.evicted} {entries} ({format_size(evicted.freed)}) to fit the "
            f"budget of {within}, by {evicted.policy}.",
            highlight=False,
        )
    else:
        out.print(
            f"Within the budget of {within}: {evicted.entries} entries, "
            f"{format_size(evicted.size)}; nothing evicted (eviction is by {evicted.policy}).",
            highlight=False,
        )


def _prefetchable_or_nothing() -> frozenset[str]:
    """Allowed tools predicted to be needed soon, whose expired answers prefetch refreshes."""
    from aicache.cli.prefetch import prefetchable_tools

    try:
        return prefetchable_tools(3, None)[1]
    except AicacheError:
        return frozenset()


def register(app: typer.Typer) -> None:
    """Add the cache commands to ``app``."""
    app.command(
        "run",
        context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
        help=run_command.__doc__,
        options_metavar=RUN_USAGE.removeprefix("usage: aicache run "),
    )(run_command)
    app.command("wrap")(wrap)
    app.command("unwrap")(unwrap)
    app.command("list")(list_entries)
    app.command("inspect")(inspect)
    app.command("stats")(stats)
    app.command("wrong")(wrong)
    app.command("clear")(clear)
    app.command("prune")(prune)
