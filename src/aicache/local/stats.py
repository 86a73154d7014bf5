"""Usage statistics of the cache, computed from the events table."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from aicache.local.store import Store, unreadable


@dataclass(frozen=True, slots=True)
class ToolStats:
    """Counts for one tool (or for all tools together)."""

    tool: str
    calls: int
    hits: int
    misses: int
    errors: int
    time_saved_s: float
    bytes_saved: int
    not_stored_too_large: int

    @property
    def hit_rate(self) -> float:
        """Hits over hits and misses (errors excluded); 0 when there were none."""
        served = self.hits + self.misses
        return self.hits / served if served else 0.0

    def as_dict(self) -> dict[str, object]:
        """The statistics with the hit rate, for ``--json``."""
        return {**asdict(self), "hit_rate": round(self.hit_rate, 6)}


@dataclass(frozen=True, slots=True)
class CacheStats:
    """Totals, per-tool rows, and what the store holds."""

    total: ToolStats
    tools: tuple[ToolStats, ...]
    entries: int
    entry_bytes: int

    def as_dict(self) -> dict[str, object]:
        """A JSON-ready form."""
        return {
            "total": self.total.as_dict(),
            "tools": [t.as_dict() for t in self.tools],
            "entries": self.entries,
            "entry_bytes": self.entry_bytes,
        }


_AGGREGATE = """
    count(*),
    coalesce(sum(outcome = 'hit'), 0),
    coalesce(sum(outcome IN ('miss', 'refresh')), 0),
    coalesce(sum(outcome = 'error'), 0),
    coalesce(sum(saved_s), 0.0),
    coalesce(sum(CASE WHEN outcome = 'hit' THEN output_bytes ELSE 0 END), 0),
    coalesce(sum(oversize), 0)
"""


def cache_stats(store: Store) -> CacheStats:
    """Compute the statistics ``aicache stats`` shows.

    Raises
    ------
    StoreUnreadableError
        If the store is damaged: ``aicache run`` would refuse it, so numbers read
        from its intact pages would mislead.
    """
    conn = store.conn
    problems = [str(row[0]) for row in conn.execute("PRAGMA quick_check")]
    if problems != ["ok"]:
        raise unreadable(store.path, f"the database is damaged ({problems[0]})")
    total = ToolStats("all", *conn.execute(f"SELECT {_AGGREGATE} FROM events").fetchone())
    tools = tuple(
        ToolStats(*row)
        for row in conn.execute(
            f"SELECT tool, {_AGGREGATE} FROM events GROUP BY tool ORDER BY count(*) DESC, tool"
        )
    )
    entries, size = conn.execute(
        "SELECT count(*), coalesce(sum(length(stdout) + length(stderr)), 0) FROM cache_entries"
    ).fetchone()
    return CacheStats(total, tools, int(entries), int(size))
