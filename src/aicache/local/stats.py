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


WEEK_S = 7 * 86400
_MONDAY = 4 * 86400  # the epoch was a Thursday: weeks start on Monday 1970-01-05


@dataclass(frozen=True, slots=True)
class WeekSaving:
    """What the cache saved one tool in one week (weeks start on Monday, UTC)."""

    week_start: float
    tool: str
    calls_saved: int
    time_saved_s: float


def weekly_savings(store: Store, *, since: float) -> list[WeekSaving]:
    """Calls answered from the cache and time saved, per tool and week, from ``since`` on."""
    rows = store.conn.execute(
        "SELECT CAST((ts - ?) / ? AS INTEGER) AS week, tool, "
        "coalesce(sum(outcome = 'hit'), 0), coalesce(sum(saved_s), 0.0) "
        "FROM events WHERE ts >= ? GROUP BY week, tool ORDER BY week, tool",
        (_MONDAY, WEEK_S, since),
    ).fetchall()
    return [
        WeekSaving(float(week * WEEK_S + _MONDAY), str(tool), int(calls), float(saved))
        for week, tool, calls, saved in rows
    ]
