"""The semantic index as a long-lived reader sees it: what changed, and which rows are live.

A warm process that keeps the cached prompts' vectors in memory (the
semantic service, see :mod:`aicache.local.semantic_client`) must notice when
the table changes without reading it again on every lookup: :func:`signature`
costs a count and one row, and :func:`rows_after` hands over only the rows
appended since. Liveness is checked on the few nearest rows only
(:func:`live_keys`), with the same rules as
:func:`aicache.local.semantic_store.candidates`.

Standard library only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from aicache.local.semantic_store import SemanticCandidate, SemanticLookup
from aicache.local.store import Store


@dataclass(frozen=True, slots=True)
class IndexSignature:
    """What changes whenever a row of the semantic index is added, replaced or deleted.

    Attributes
    ----------
    count
        Rows in the index.
    last_rowid
        The largest rowid (0 when empty).
    last_key
        The key of that row: a row deleted and a new one written under the same
        rowid still change it.
    """

    count: int
    last_rowid: int
    last_key: str


@dataclass(frozen=True, slots=True)
class IndexRow:
    """One cached prompt of the index, with its frame and vector."""

    rowid: int
    key: str
    frame: str
    prompt: str
    vector: bytes


def signature(store: Store) -> IndexSignature:
    """The index's current :class:`IndexSignature`."""
    count = store.conn.execute("SELECT count(*) FROM semantic_entries").fetchone()[0]
    last = store.conn.execute(
        "SELECT rowid, key FROM semantic_entries ORDER BY rowid DESC LIMIT 1"
    ).fetchone()
    if last is None:
        return IndexSignature(int(count), 0, "")
    return IndexSignature(int(count), int(last[0]), str(last[1]))


def frame_rows(store: Store, frame: str) -> list[IndexRow]:
    """Every indexed prompt of ``frame``, live or not, in rowid order."""
    rows = store.conn.execute(
        "SELECT rowid, key, frame, prompt, vector FROM semantic_entries WHERE frame = ? "
        "ORDER BY rowid",
        (frame,),
    ).fetchall()
    return [_row(row) for row in rows]


def rows_after(store: Store, rowid: int) -> list[IndexRow]:
    """The rows written after ``rowid``, in rowid order."""
    rows = store.conn.execute(
        "SELECT rowid, key, frame, prompt, vector FROM semantic_entries WHERE rowid > ? "
        "ORDER BY rowid",
        (rowid,),
    ).fetchall()
    return [_row(row) for row in rows]


def live_keys(
    store: Store, frame: str, query_prompt: str, keys: Sequence[str], now: float
) -> set[str]:
    """Those of ``keys`` that :func:`~aicache.local.semantic_store.candidates` would return:
    unexpired, still indexed in ``frame``, and not found wrong for ``query_prompt``."""
    if not keys:
        return set()
    marks = ", ".join("?" for _ in keys)
    # "+s.frame": found by key, not by scanning the frame's index (every row of the frame).
    rows = store.conn.execute(
        "SELECT s.key FROM semantic_entries AS s JOIN cache_entries AS c ON c.key = s.key "
        f"WHERE s.key IN ({marks}) AND +s.frame = ? "
        "AND (c.expires_at IS NULL OR c.expires_at > ?) "
        "AND s.key NOT IN (SELECT cached_key FROM semantic_feedback "
        "WHERE frame = ? AND query_prompt = ? AND wrong = 1)",
        (*keys, frame, now, frame, query_prompt),
    ).fetchall()
    return {str(row[0]) for row in rows}


@dataclass(frozen=True, slots=True)
class FrameMatch:
    """What a whole lookup found: the query's vector, and the match to serve if any."""

    vector: bytes
    match: SemanticCandidate | None
    score: float = 0.0


@runtime_checkable
class FrameLookup(SemanticLookup, Protocol):
    """A lookup that reads the frame's cached prompts itself.

    A warm process keeps the vectors in memory, so the caller need not read
    them from the store and send them over; :class:`aicache.local.semantic_run.SemanticCall`
    asks :meth:`nearest` instead of reading the candidates and calling ``choose``.
    """

    def nearest(self, frame: str, prompt: str, now: float) -> FrameMatch:
        """The vector of ``prompt`` and the cached prompt of ``frame`` to serve, if any."""
        ...


def _row(row: tuple[object, ...]) -> IndexRow:
    rowid, key, frame, prompt, vector = row
    assert isinstance(vector, bytes)
    return IndexRow(int(str(rowid)), str(key), str(frame), str(prompt), vector)


__all__ = [
    "FrameLookup",
    "FrameMatch",
    "IndexRow",
    "IndexSignature",
    "frame_rows",
    "live_keys",
    "rows_after",
    "signature",
]
