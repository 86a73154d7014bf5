"""A client's stream of cache requests, as the cache-keep task replays it.

A request is what a cache would be asked: a key (what identifies the
answer), the program that answers it, and, where known, the answer's size
and the time it took to compute. On a node the stream is the store's own
events (every call through the cache, hits and misses alike, keyed by the
hash events keep); in a simulation it is a trace in which each command line
is a request and its repetition a hit (Greenberg's traces).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path

from aicache.local.history import parse_greenberg, read_text
from aicache.local.normalise import command_tokens
from aicache.local.store import Store


@dataclass(frozen=True, slots=True)
class Request:
    """One request to the cache.

    Attributes
    ----------
    key
        What identifies the answer: a request with the same key is a hit
        while the answer is cached.
    program
        The program that answers it (``git``, ``claude``).
    size
        The answer's size in bytes (1 when unknown).
    cost
        Seconds it took to compute the answer (1 when unknown).
    """

    key: str
    program: str
    size: float = 1.0
    cost: float = 1.0


def requests_from_greenberg(path: Path) -> list[Request]:
    """One user's trace in Greenberg's format: each command line a request.

    Raises
    ------
    ValueError, OSError
        If the file cannot be read or is not such a trace.
    """
    requests = []
    for command in parse_greenberg(read_text(path)):
        line = " ".join(command.line.split())
        program = command_tokens(command.line).program
        if line and program:
            requests.append(Request(key=line, program=program))
    return requests


def requests_from_store(conn: sqlite3.Connection) -> list[Request]:
    """Every call through the cache recorded in an open store, in order.

    Every event is a request, errors too (the budget's clock counts them
    alike); a miss's cost is its run time, a hit's the time it saved.
    """
    rows = conn.execute(
        "SELECT key_hash, tool, output_bytes, latency_ms, saved_s, outcome FROM events ORDER BY id"
    ).fetchall()
    requests = []
    for key_hash, tool, size, latency_ms, saved_s, outcome in rows:
        cost = float(saved_s) if outcome == "hit" else float(latency_ms) / 1000
        requests.append(
            Request(
                key=str(key_hash),
                program=str(tool),
                size=max(1.0, float(size)),
                cost=max(1e-3, cost),
            )
        )
    return requests


def requests_from_home(home: Path) -> list[Request]:
    """The request stream of the store of the aicache home ``home``."""
    with Store.open(home) as store:
        return requests_from_store(store.conn)


def requests_version(home: Path) -> str:
    """Changes whenever the store's request stream changes: its last event and count."""
    with Store.open(home) as store:
        row = store.conn.execute("SELECT count(*), coalesce(max(id), 0) FROM events").fetchone()
    return f"events {int(row[0])} last {int(row[1])}"
