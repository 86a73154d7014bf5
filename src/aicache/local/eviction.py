"""A cache budget: past ``max-entries`` or ``max-size``, evict what is least worth keeping.

What is worth keeping is a *keep-score* per entry, given by a
:class:`KeepScorer`. This layer knows no model: it measures what the store
knows of each entry (:class:`EntryStats`) and asks the scorer that the
command line supplies (:func:`use_scorer_provider`); with none, or when
the learned one cannot be loaded, it keeps the most recently used entries
(LRU). Time is counted in requests: every call through the cache is one.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from aicache.local.store import Store


@dataclass(frozen=True, slots=True)
class Budget:
    """How much the cache may hold: entries and bytes of output (``None``: no limit)."""

    max_entries: int | None = None
    max_size: int | None = None

    @property
    def limited(self) -> bool:
        """Whether any limit is set."""
        return self.max_entries is not None or self.max_size is not None

    def exceeded(self, entries: int, size: int) -> bool:
        """Whether ``entries`` entries of ``size`` bytes are past the budget."""
        over_entries = self.max_entries is not None and entries > self.max_entries
        return over_entries or (self.max_size is not None and size > self.max_size)


@dataclass(frozen=True, slots=True)
class EntryStats:
    """What the store knows of one cached entry, counted in requests through the cache.

    Attributes
    ----------
    key
        The entry's key.
    tool
        Its program (as stored).
    size
        Bytes of output it keeps.
    duration_s
        How long the command took to run: the cost of computing it again.
    since_use
        Requests since its key was last asked.
    since_first
        Requests since its key was first asked.
    uses
        How many times its key was asked (at least 1).
    since_program
        Requests since its program was last used.
    semantic
        How many of its uses were served as semantic hits (0 where none are recorded).
    last_gap
        Requests between its key's last two uses (asked once: since then).
    program_reuse
        Of the keys its program was asked, the share asked more than once
        (smoothed: one reused and one not to start with).
    """

    key: str
    tool: str
    size: int
    duration_s: float
    since_use: int
    since_first: int
    uses: int
    since_program: int
    semantic: int
    last_gap: int
    program_reuse: float


class KeepScorer(Protocol):
    """Scores entries: the higher, the more worth keeping."""

    @property
    def description(self) -> str:
        """How ``aicache prune`` names the policy (``the learned keep-score (...)``)."""
        ...

    def keep_scores(self, entries: Sequence[EntryStats]) -> list[float]:
        """One score per entry, in order."""
        ...


@dataclass(frozen=True, slots=True)
class LruScorer:
    """Keep the most recently used entries (least recently used evicted first)."""

    reason: str = ""

    @property
    def description(self) -> str:
        """``LRU``, with why no learned score is used when there is a reason."""
        return "LRU" + (f" ({self.reason})" if self.reason else "")

    def keep_scores(self, entries: Sequence[EntryStats]) -> list[float]:
        """Minus the requests since each entry's last use."""
        return [-float(entry.since_use) for entry in entries]


ScorerProvider = Callable[[Store], KeepScorer]
_providers: list[ScorerProvider] = []


def use_scorer_provider(provider: ScorerProvider | None) -> None:
    """Make ``provider`` supply the keep-scorer when a budget is enforced (``None``: LRU).

    The provider is called only when the cache is past its budget, so that it
    may load a model (and numpy) without slowing any other call.
    """
    _providers[:] = [] if provider is None else [provider]


def current_scorer(store: Store) -> KeepScorer:
    """The keep-scorer the provider supplies for ``store``, else LRU."""
    if not _providers:
        return LruScorer("no learned keep-score is available here")
    return _providers[0](store)


@dataclass(frozen=True, slots=True)
class EvictionResult:
    """What enforcing the budget removed.

    Attributes
    ----------
    evicted
        Entries removed.
    freed
        Bytes of output removed.
    entries
        Entries left.
    size
        Bytes of output left.
    policy
        The scorer's description.
    """

    evicted: int
    freed: int
    entries: int
    size: int
    policy: str


def usage(store: Store) -> tuple[int, int]:
    """How many entries the cache holds and their bytes of output."""
    row = store.conn.execute(
        "SELECT count(*), coalesce(sum(length(stdout) + length(stderr)), 0) FROM cache_entries"
    ).fetchone()
    return int(row[0]), int(row[1])


def _event_hash(key: str) -> str:
    # The hash events keep of a key (see aicache.local.cache.CacheKey.event_hash).
    return hashlib.sha256(("event:" + key).encode()).hexdigest()[:32]


def entry_stats(store: Store) -> list[EntryStats]:
    """What the store knows of every cached entry, from its events (see :class:`EntryStats`)."""
    conn = store.conn
    now = int(conn.execute("SELECT coalesce(max(id), 0) FROM events").fetchone()[0])
    # The last two uses of each key, and its first and count.
    uses: dict[str, tuple[int, int, int, int]] = {}
    for key_hash, count, first, last in conn.execute(
        "SELECT key_hash, count(*), min(id), max(id) FROM events GROUP BY key_hash"
    ):
        uses[str(key_hash)] = (int(count), int(first), int(last), int(first))
    for key_hash, previous in conn.execute(
        "SELECT key_hash, id FROM (SELECT key_hash, id, row_number() OVER "
        "(PARTITION BY key_hash ORDER BY id DESC) AS position FROM events) WHERE position = 2"
    ):
        count, first, last, _ = uses[str(key_hash)]
        uses[str(key_hash)] = (count, first, last, int(previous))
    programs = {
        str(tool): int(last)
        for tool, last in conn.execute("SELECT tool, max(id) FROM events GROUP BY tool")
    }
    reuse = {
        str(tool): (int(reused) + 1) / (int(keys) + 2)
        for tool, keys, reused in conn.execute(
            "SELECT tool, count(*), sum(asked > 1) FROM "
            "(SELECT tool, key_hash, count(*) AS asked FROM events GROUP BY tool, key_hash) "
            "GROUP BY tool"
        )
    }
    stats = []
    for key, tool, size, duration in conn.execute(
        "SELECT key, tool, length(stdout) + length(stderr), duration_s FROM cache_entries"
    ):
        count, first, last, previous = uses.get(_event_hash(str(key)), (1, now, now, now))
        stats.append(
            EntryStats(
                key=str(key),
                tool=str(tool),
                size=int(size),
                duration_s=float(duration),
                since_use=now - last,
                since_first=now - first,
                uses=max(1, count),
                since_program=now - programs.get(str(tool), last),
                semantic=0,  # a hook: semantic hits are not recorded per entry yet
                last_gap=(last - previous) if count > 1 else now - first,
                program_reuse=reuse.get(str(tool), 0.5),
            )
        )
    return stats


def _related_tables(store: Store) -> list[tuple[str, str]]:
    """``(table, column)`` of every table whose rows belong to a cache entry (a foreign key)."""
    related = []
    tables = store.conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
    for (table,) in tables:
        for row in store.conn.execute(f"PRAGMA foreign_key_list('{table}')"):
            if row[2] == "cache_entries":
                related.append((str(table), str(row[3])))
    return related


def enforce_budget(
    store: Store, budget: Budget, scorer: KeepScorer, *, protect: str | None = None
) -> EvictionResult:
    """Evict the entries of the lowest keep-scores until the cache is within ``budget``.

    ``protect`` (the entry just stored) is never evicted. Rows of other tables
    that belong to an evicted entry (its foreign key) go with it; events stay,
    for statistics.
    """
    entries, size = usage(store)
    if not budget.exceeded(entries, size):
        return EvictionResult(0, 0, entries, size, scorer.description)
    stats = [s for s in entry_stats(store) if s.key != protect]
    scores = scorer.keep_scores(stats)
    ranked = sorted(range(len(stats)), key=lambda i: (scores[i], -stats[i].since_use))
    victims: list[EntryStats] = []
    for index in ranked:
        if not budget.exceeded(entries, size):
            break
        victims.append(stats[index])
        entries, size = entries - 1, size - stats[index].size
    keys = [(v.key,) for v in victims]
    related = _related_tables(store)
    with store.write() as conn:
        for table, column in related:
            conn.executemany(f'DELETE FROM "{table}" WHERE "{column}" = ?', keys)
        conn.executemany("DELETE FROM cache_entries WHERE key = ?", keys)
    freed = sum(v.size for v in victims)
    return EvictionResult(len(victims), freed, entries, size, scorer.description)
