"""A developer's errors as the error-patterns task counts them: ``tool: signature`` keys.

A key is the program that failed and the signature its stderr left
(:func:`aicache.local.normalise.error_signature`: the one stripping rule,
so that no path, value, free word or name of the user's own code is in
it). On a node the errors are the store's own events: every failing call
through ``aicache run`` kept its signature.
"""

from __future__ import annotations

import hashlib
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from aicache.local.normalise import error_signature
from aicache.local.store import Store

BUCKETS = 4096
"""Size of the public hashed domain keys are counted in."""


@dataclass(frozen=True, slots=True)
class ErrorOccurrence:
    """One error a developer hit: when (any clock, larger is later) and its key."""

    ts: float
    key: str


def key_of(tool: str, signature: str) -> str:
    """The key the federation counts: the tool and the signature its failure left."""
    return f"{tool}: {signature}"


def error_key(tool: str, stderr: str) -> str | None:
    """``tool: signature`` of ``stderr``'s error, or ``None`` when it names none."""
    signature = error_signature(stderr)
    return None if signature is None else key_of(tool, signature)


def bucket(key: str) -> int:
    """The bucket of ``key`` in the hashed domain: fixed by its text, the same everywhere."""
    digest = hashlib.sha256(key.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % BUCKETS


def errors_from_store(conn: sqlite3.Connection) -> list[ErrorOccurrence]:
    """Every failing call with a signature recorded in an open store, in order."""
    rows = conn.execute(
        "SELECT ts, tool, error_signature FROM events WHERE error_signature IS NOT NULL ORDER BY id"
    ).fetchall()
    return [ErrorOccurrence(float(ts), key_of(str(tool), str(sig))) for ts, tool, sig in rows]


def errors_from_home(home: Path) -> list[ErrorOccurrence]:
    """The errors of the store of the aicache home ``home``."""
    with Store.open(home) as store:
        return errors_from_store(store.conn)


def errors_version(home: Path) -> str:
    """Changes whenever the store's errors change: their count and last event."""
    with Store.open(home) as store:
        row = store.conn.execute(
            "SELECT count(*), coalesce(max(id), 0) FROM events WHERE error_signature IS NOT NULL"
        ).fetchone()
    return f"errors {int(row[0])} last {int(row[1])}"
