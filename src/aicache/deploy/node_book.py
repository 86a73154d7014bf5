"""``nodes.db``: the operator's book of enrolled nodes, their Flower ids and last rounds."""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aicache.errors import AicacheError

_NODES_SCHEMA = """
CREATE TABLE IF NOT EXISTS nodes (
    name TEXT PRIMARY KEY,
    node_id TEXT NOT NULL,  -- Flower's ids are unsigned 64-bit: beyond SQLite's INTEGER
    public_key TEXT NOT NULL,
    enrolled_at REAL NOT NULL,
    revoked_at REAL,
    last_round INTEGER,
    last_run TEXT,
    last_seen REAL
)
"""


@dataclass(frozen=True, slots=True)
class NodeRecord:
    """An enrolled node as the server remembers it."""

    name: str
    node_id: int
    public_key: str
    enrolled_at: float
    revoked_at: float | None
    last_round: int | None
    last_run: str | None
    last_seen: float | None


def _record(row: tuple[Any, ...]) -> NodeRecord:
    return NodeRecord(row[0], int(row[1]), *row[2:])


class NodeBook:
    """``nodes.db``: which name is which Flower node, and when each last took part."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self._conn = sqlite3.connect(path, timeout=30, isolation_level=None)
        except sqlite3.DatabaseError as exc:
            raise AicacheError(f"the node list {path} cannot be opened: {exc}") from exc
        try:
            self._conn.execute(_NODES_SCHEMA)
        except sqlite3.DatabaseError as exc:
            self._conn.close()
            raise AicacheError(
                f"the node list {path} cannot be used: {exc}",
                hint="Move it aside; enrolled nodes must then be enrolled again.",
            ) from exc
        path.chmod(0o600)

    def close(self) -> None:
        """Close the database."""
        self._conn.close()

    def __enter__(self) -> NodeBook:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def get(self, name: str) -> NodeRecord | None:
        """The node called ``name``."""
        row = self._conn.execute("SELECT * FROM nodes WHERE name = ?", (name,)).fetchone()
        return None if row is None else _record(row)

    def all(self) -> list[NodeRecord]:
        """Every node ever enrolled, by name."""
        rows = self._conn.execute("SELECT * FROM nodes ORDER BY name").fetchall()
        return [_record(row) for row in rows]

    def add(self, name: str, node_id: int, public_key: str) -> None:
        """Record an enrolment (replacing a revoked one of the same name)."""
        self._conn.execute(
            "INSERT OR REPLACE INTO nodes (name, node_id, public_key, enrolled_at) "
            "VALUES (?, ?, ?, ?)",
            (name, str(node_id), public_key, time.time()),
        )

    def revoke(self, name: str) -> None:
        """Mark ``name`` revoked."""
        self._conn.execute("UPDATE nodes SET revoked_at = ? WHERE name = ?", (time.time(), name))

    def took_part(self, node_ids: list[int], run: str, round: int) -> None:
        """Record that ``node_ids`` replied in ``round`` of ``run``."""
        now = time.time()
        self._conn.executemany(
            "UPDATE nodes SET last_round = ?, last_run = ?, last_seen = ? WHERE node_id = ?",
            [(round, run, now, str(node)) for node in node_ids],
        )
