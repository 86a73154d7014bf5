"""A developer's errors as the error-patterns task counts them: ``tool: signature`` keys.

A key is the program that failed and the signature its stderr left
(:func:`aicache.local.normalise.error_signature`: the one stripping rule,
so that no path, value, free word or name of the user's own code is in
it). On a node the errors are the store's own events: every failing call
through ``aicache run`` kept its signature.
"""

from __future__ import annotations

import hashlib
import re
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from aicache.local.cache import event_hash
from aicache.local.normalise import error_signature
from aicache.local.store import Store

_VERSION_SUFFIX = re.compile(r"-?\d+(?:\.\d+)*$")
BUCKETS = 4096
"""Size of the public hashed domain keys are counted in."""


@dataclass(frozen=True, slots=True)
class ErrorOccurrence:
    """One error a developer hit: when (any clock, larger is later) and its key."""

    ts: float
    key: str


def key_of(tool: str, signature: str) -> str:
    """The key the federation counts: the tool and the signature its failure left.

    A version suffix of the tool's name is dropped (``python3.11``, ``pip3`` and
    ``gcc-12`` fail as ``python``, ``pip`` and ``gcc`` do).
    """
    return f"{_VERSION_SUFFIX.sub('', tool) or tool}: {signature}"


def error_key(tool: str, stderr: str) -> str | None:
    """``tool: signature`` of ``stderr``'s error, or ``None`` when it names none."""
    signature = error_signature(stderr)
    return None if signature is None else key_of(tool, signature)


def bucket(key: str) -> int:
    """The bucket of ``key`` in the hashed domain: fixed by its text, the same everywhere."""
    digest = hashlib.sha256(key.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % BUCKETS


HISTORY_FAILURE = "failed (imported history: no error text)"
"""The signature of a failure an imported history records without its output."""


def errors_from_store(conn: sqlite3.Connection) -> list[ErrorOccurrence]:
    """Every failure recorded in an open store, oldest first.

    Failing calls through the cache carry their signature; a command an
    imported history marks as failed (Greenberg's traces have an error field)
    carries only its program, as :data:`HISTORY_FAILURE`. Imported commands
    without a time count as older than every call through the cache.
    """
    imported = conn.execute(
        "SELECT coalesce(ts, 0), program FROM commands WHERE failed = 1 ORDER BY source, seq"
    ).fetchall()
    rows = conn.execute(
        "SELECT ts, tool, error_signature FROM events WHERE error_signature IS NOT NULL ORDER BY id"
    ).fetchall()
    errors = [ErrorOccurrence(float(ts), key_of(str(p), HISTORY_FAILURE)) for ts, p in imported]
    errors += [ErrorOccurrence(float(ts), key_of(str(tool), str(sig))) for ts, tool, sig in rows]
    # A stable sort: imported commands of one session keep their order.
    return sorted(errors, key=lambda e: e.ts)


def errors_from_home(home: Path) -> list[ErrorOccurrence]:
    """The errors of the store of the aicache home ``home``."""
    with Store.open(home) as store:
        return errors_from_store(store.conn)


def errors_version(home: Path) -> str:
    """Changes whenever the store's errors change: their counts and last rows."""
    with Store.open(home) as store:
        row = store.conn.execute(
            "SELECT count(*), coalesce(max(id), 0) FROM events WHERE error_signature IS NOT NULL"
        ).fetchone()
        imported = store.conn.execute(
            "SELECT count(*), coalesce(max(id), 0) FROM commands WHERE failed = 1"
        ).fetchone()
    return (
        f"errors {int(row[0])} last {int(row[1])} "
        f"imported {int(imported[0])} last {int(imported[1])}"
    )


FOLLOW_UP_S = 1800.0
"""How soon after a failure a cached answer counts as one that followed it."""
_ANSWERED = ("miss", "refresh", "hit")


@dataclass(frozen=True, slots=True)
class RecentError:
    """One of the developer's error keys, as ``aicache errors`` lists it.

    Attributes
    ----------
    key
        ``tool: signature``.
    tool, signature
        Its parts.
    times
        How many failing calls left it.
    last_ts
        When the latest of them ran (seconds since the epoch).
    answer
        The cache key of an answer the store holds that was asked within
        :data:`FOLLOW_UP_S` after a failure with this key (the latest such),
        or ``None``.
    """

    key: str
    tool: str
    signature: str
    times: int
    last_ts: float
    answer: str | None


def recent_errors(conn: sqlite3.Connection, limit: int) -> list[RecentError]:
    """The ``limit`` error keys of the store's most recent failing calls, newest first."""
    rows = conn.execute(
        "SELECT id, ts, tool, error_signature FROM events "
        "WHERE error_signature IS NOT NULL ORDER BY id DESC"
    ).fetchall()
    groups: dict[tuple[str, str], list[tuple[int, float]]] = {}
    for event_id, ts, tool, signature in rows:
        groups.setdefault((str(tool), str(signature)), []).append((int(event_id), float(ts)))
    stored = {
        event_hash(str(key)): str(key) for (key,) in conn.execute("SELECT key FROM cache_entries")
    }
    answers = [
        (int(i), float(ts), stored[str(h)])
        for i, ts, h in conn.execute(
            "SELECT id, ts, key_hash FROM events WHERE outcome IN (?, ?, ?) ORDER BY id",
            _ANSWERED,
        )
        if str(h) in stored
    ]
    found = []
    for (tool, signature), failures in list(groups.items())[:limit]:
        answer = next(
            (
                key
                for failure_id, failure_ts in failures
                for answer_id, answer_ts, key in answers
                if answer_id > failure_id and answer_ts <= failure_ts + FOLLOW_UP_S
            ),
            None,
        )
        found.append(
            RecentError(
                key_of(tool, signature), tool, signature, len(failures), failures[0][1], answer
            )
        )
    return found


def recent_errors_of_home(home: Path, limit: int) -> list[RecentError]:
    """:func:`recent_errors` of the store of the aicache home ``home``."""
    with Store.open(home) as store:
        return recent_errors(store.conn, limit)
