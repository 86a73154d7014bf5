"""Semantic hits in the store: cached prompts with their vectors, and feedback on each hit.

A cached answer whose command carries a prompt is indexed under its *frame*:
the cache key of the command with the prompt left out, so that it holds the
tool, its other options (the model chosen with ``-m``), the configuration
that selects the model or account, standard input and the scope. A reworded
question is compared only with prompts of the same frame. Vectors are opaque
bytes here: what computes and compares them (:class:`SemanticLookup`) is
supplied by the caller, since this layer imports no learned model.

Every semantic hit served leaves one row of feedback, right until something
says it was wrong: the same question re-asked within :data:`REASK_S`, its
``--refresh`` within :data:`REFRESH_S`, or ``aicache wrong``. The rows stay on
this machine (the semantic-hit task trains on them locally) and go with the
retention window, like the cache entries they quote.

This module is imported on a miss only; standard library only.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from aicache.local.store import Store

# A question asked again this soon after a semantic hit says the hit did not answer it.
REASK_S = 600.0
# A --refresh of the question this soon after its semantic hit says the same.
REFRESH_S = 86400.0
# Setting-table keys (not user settings): the notice that semantic hits are unavailable was
# given, and the reason it gave.
NOTICE_KEY = "semantic-unavailable-said"


@dataclass(frozen=True, slots=True)
class SemanticCandidate:
    """A cached prompt of the same frame, live, that a reworded question may match.

    Attributes
    ----------
    key
        The cache key of its answer.
    prompt
        The prompt as stored (secret values hashed, see :mod:`aicache.local.secrets`).
    vector
        Its embedding, as :meth:`SemanticLookup.vector` encoded it.
    """

    key: str
    prompt: str
    vector: bytes


class SemanticLookup(Protocol):
    """What the cache needs of a semantic model: a vector per prompt, and a decision.

    The command line supplies one (see ``aicache.tasks.semantic_hit.serving``);
    this layer never imports a model.
    """

    def vector(self, prompt: str) -> bytes:
        """The embedding of ``prompt``, encoded as bytes for the store."""
        ...

    def choose(
        self, prompt: str, vector: bytes, candidates: Sequence[SemanticCandidate]
    ) -> tuple[int, float] | None:
        """The index of the candidate to serve for ``prompt`` and its score, or ``None``."""
        ...


SemanticProvider = Callable[[], SemanticLookup]
"""Builds the lookup on first need; raises :class:`aicache.errors.AicacheError` when the
embedding model is not installed (the cache then answers exact repeats only)."""


@dataclass(frozen=True, slots=True)
class FeedbackRow:
    """One semantic hit served, and whether it turned out wrong.

    Attributes
    ----------
    id
        The row's id.
    ts
        When it was served (Unix time).
    tool
        The tool asked.
    query
        The question asked.
    cached_prompt
        The cached prompt whose answer was served.
    score
        The decision's score.
    wrong
        Whether it was re-asked, refreshed or marked wrong (see the module).
    reason
        ``re-ask``, ``refresh`` or ``explicit`` when wrong, else ``None``.
    """

    id: int
    ts: float
    tool: str
    query: str
    cached_prompt: str
    score: float
    wrong: bool
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class SemanticStats:
    """Semantic figures of ``aicache stats``.

    Attributes
    ----------
    hits
        Semantic hits served (their rows still kept).
    wrong
        How many of them turned out wrong.
    indexed
        Cached prompts with a vector.
    """

    hits: int
    wrong: int
    indexed: int

    @property
    def wrong_rate(self) -> float:
        """Wrong hits over semantic hits; 0 when there were none."""
        return self.wrong / self.hits if self.hits else 0.0


def index_entry(
    store: Store, *, key: str, frame: str, tool: str, scope: str, prompt: str, vector: bytes
) -> None:
    """Keep the prompt and vector of the cached answer ``key`` (replacing an older one)."""
    with store.write() as conn:
        # Only while the entry exists: the trigger that drops a deleted entry's
        # vector cannot drop one written after the entry went.
        conn.execute(
            "INSERT OR REPLACE INTO semantic_entries "
            "(key, frame, tool, scope, prompt, vector, created_at) "
            "SELECT ?, ?, ?, ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM cache_entries WHERE key = ?)",
            (key, frame, tool, scope, prompt, vector, time.time(), key),
        )


def is_indexed(store: Store, key: str) -> bool:
    """Whether the cached answer ``key`` has a vector."""
    row = store.conn.execute("SELECT 1 FROM semantic_entries WHERE key = ?", (key,)).fetchone()
    return row is not None


def candidates(store: Store, frame: str, query_prompt: str, now: float) -> list[SemanticCandidate]:
    """Live cached prompts of ``frame``, less those already found wrong for ``query_prompt``."""
    rows = store.conn.execute(
        "SELECT s.key, s.prompt, s.vector FROM semantic_entries AS s "
        "JOIN cache_entries AS c ON c.key = s.key "
        "WHERE s.frame = ? AND (c.expires_at IS NULL OR c.expires_at > ?) "
        "AND s.key NOT IN (SELECT cached_key FROM semantic_feedback "
        "WHERE frame = ? AND query_prompt = ? AND wrong = 1)",
        (frame, now, frame, query_prompt),
    ).fetchall()
    return [SemanticCandidate(str(k), str(p), bytes(v)) for k, p, v in rows]


def record_hit(
    store: Store,
    *,
    tool: str,
    frame: str,
    query_prompt: str,
    cached: SemanticCandidate,
    score: float,
) -> None:
    """Keep the feedback row of a semantic hit just served (right until found wrong)."""
    with store.write() as conn:
        conn.execute(
            "INSERT INTO semantic_feedback (ts, tool, frame, query_prompt, cached_key, "
            "cached_prompt, score) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (time.time(), tool, frame, query_prompt, cached.key, cached.prompt, score),
        )


def mark_asked_again(
    store: Store, *, frame: str, query_prompt: str, reason: str, within_s: float, now: float
) -> FeedbackRow | None:
    """Mark wrong the latest right hit of this question served within ``within_s``; return it."""
    row = store.conn.execute(
        f"SELECT {_COLUMNS} FROM semantic_feedback "
        "WHERE frame = ? AND query_prompt = ? AND wrong = 0 AND ts >= ? ORDER BY id DESC LIMIT 1",
        (frame, query_prompt, now - within_s),
    ).fetchone()
    return None if row is None else _mark(store, _row(row), reason)


def mark_last_wrong(store: Store) -> tuple[FeedbackRow, bool] | None:
    """Mark the most recent semantic hit wrong (``aicache wrong``).

    Returns
    -------
    tuple or None
        The hit, and whether it was already marked wrong; ``None`` when no
        semantic hit was ever served (or its row was pruned).
    """
    row = store.conn.execute(
        f"SELECT {_COLUMNS} FROM semantic_feedback ORDER BY id DESC LIMIT 1"
    ).fetchone()
    if row is None:
        return None
    found = _row(row)
    if found.wrong:
        return found, True
    return _mark(store, found, "explicit"), False


def read_feedback(store: Store) -> list[FeedbackRow]:
    """Every feedback row kept, oldest first: what the semantic-hit task trains on locally."""
    rows = store.conn.execute(f"SELECT {_COLUMNS} FROM semantic_feedback ORDER BY id").fetchall()
    return [_row(row) for row in rows]


def semantic_stats(store: Store) -> SemanticStats:
    """The semantic figures ``aicache stats`` shows."""
    hits, wrong = store.conn.execute(
        "SELECT count(*), coalesce(sum(wrong), 0) FROM semantic_feedback"
    ).fetchone()
    indexed = store.conn.execute("SELECT count(*) FROM semantic_entries").fetchone()[0]
    return SemanticStats(int(hits), int(wrong), int(indexed))


def prune_feedback(store: Store, *, now: float, max_age_s: float) -> int:
    """Delete feedback rows older than the retention window; return how many went."""
    with store.write() as conn:
        return conn.execute(
            "DELETE FROM semantic_feedback WHERE ts < ?", (now - max_age_s,)
        ).rowcount


_COLUMNS = "id, ts, tool, query_prompt, cached_prompt, score, wrong, reason"


def _row(row: tuple[object, ...]) -> FeedbackRow:
    id_, ts, tool, query, cached, score, wrong, reason = row
    return FeedbackRow(
        id=int(str(id_)),
        ts=float(str(ts)),
        tool=str(tool),
        query=str(query),
        cached_prompt=str(cached),
        score=float(str(score)),
        wrong=bool(wrong),
        reason=None if reason is None else str(reason),
    )


def _mark(store: Store, row: FeedbackRow, reason: str) -> FeedbackRow:
    with store.write() as conn:
        conn.execute(
            "UPDATE semantic_feedback SET wrong = 1, reason = ? WHERE id = ?", (reason, row.id)
        )
    return FeedbackRow(
        row.id, row.ts, row.tool, row.query, row.cached_prompt, row.score, True, reason
    )


__all__ = [
    "NOTICE_KEY",
    "REASK_S",
    "REFRESH_S",
    "FeedbackRow",
    "SemanticCandidate",
    "SemanticLookup",
    "SemanticProvider",
    "SemanticStats",
    "candidates",
    "index_entry",
    "is_indexed",
    "mark_asked_again",
    "mark_last_wrong",
    "prune_feedback",
    "read_feedback",
    "record_hit",
    "semantic_stats",
]
