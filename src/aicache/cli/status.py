"""``aicache status``: the cache at a glance (``aicache node status`` is the node's)."""

from __future__ import annotations

import time

from aicache.cli.common import JsonOption, emit_json, open_store
from aicache.cli.console import ago, err, out
from aicache.local.settings import Settings
from aicache.local.shims import default_bin_dir, is_shim, path_has
from aicache.local.stats import cache_stats
from aicache.local.units import format_size


def _wrapped() -> list[str]:
    """The tools with a shim in the default shim directory."""
    directory = default_bin_dir()
    if not directory.is_dir():
        return []
    return sorted(p.name for p in directory.iterdir() if p.is_file() and is_shim(p))


def _joined() -> bool:
    """Whether this machine joined a federation (its node has a status to show)."""
    from aicache.deploy.node import NodeHome

    return NodeHome().joined() is not None


def cache_status(as_json: JsonOption = False) -> None:
    """The cache at a glance: what it holds, how often it answers, what it wraps, its settings."""
    with open_store() as store:
        stats = cache_stats(store)
        settings = Settings.from_stored(store.settings())
        expired = store.conn.execute(
            "SELECT count(*) FROM cache_entries WHERE expires_at IS NOT NULL AND expires_at <= ?",
            (time.time(),),
        ).fetchone()[0]
        stored_prune = store.get_setting("last-prune")
        path = store.path
    last_prune = None if stored_prune is None else float(stored_prune)
    wrapped = _wrapped()
    joined = _joined()
    document: dict[str, object] = {
        "store": str(path),
        "entries": stats.entries,
        "entry_bytes": stats.entry_bytes,
        "expired_entries": int(expired),
        "calls": stats.total.calls,
        "hits": stats.total.hits,
        "hit_rate": round(stats.total.hit_rate, 6),
        "time_saved_s": stats.total.time_saved_s,
        "wrapped": wrapped,
        "shims_on_path": path_has(default_bin_dir()),
        "last_prune": last_prune,
        "settings": settings.describe(),
    }
    if joined:
        # `aicache status` was the node's status: it still follows, for a while, with a note.
        err.print(
            "note: the node's status moved to `aicache node status`; here it is deprecated "
            "and will be dropped.",
            style="yellow",
            markup=False,
            soft_wrap=True,
        )
    if as_json:
        if joined:
            from aicache.deploy.node import NodeHome

            document["node"] = NodeHome().status()
        emit_json(document)
        return
    out.print(f"Store: {path}")
    out.print(
        f"Entries: {stats.entries} ({format_size(stats.entry_bytes)}), {expired} expired; "
        f"last pruned {ago(last_prune)}"
    )
    out.print(
        f"Calls: {stats.total.calls}, hits {stats.total.hits} ({stats.total.hit_rate:.1%}), "
        f"{stats.total.time_saved_s:.1f} s saved"
    )
    out.print(f"Wrapped: {', '.join(wrapped) if wrapped else 'nothing (`aicache wrap TOOL`)'}")
    if wrapped and not document["shims_on_path"]:
        out.print(f"[yellow]{default_bin_dir()} is not on PATH: the shims never run.[/]")
    out.print(
        "Settings: " + ", ".join(f"{name} {value}" for name, value in settings.describe().items())
    )
    if joined:
        from aicache.cli.node import status as node_status

        out.print()
        node_status()
