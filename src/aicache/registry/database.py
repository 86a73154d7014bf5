"""The registry's SQLite file: its schema, its mark, and how it is opened and written.

Metadata lives in ``registry.db`` (SQLite, WAL) beside an ``artifacts/``
folder of content-addressed array archives. The file carries its own
``application_id`` so that neither aicache's private store nor another
program's database is ever taken for a registry.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from aicache.errors import AicacheError

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    task TEXT NOT NULL,
    spec TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('running', 'finished', 'failed')),
    started_at REAL NOT NULL,
    finished_at REAL,
    message TEXT
);
CREATE TABLE IF NOT EXISTS versions (
    task TEXT NOT NULL,
    version INTEGER NOT NULL,
    parent INTEGER,
    round INTEGER NOT NULL,
    run_id TEXT NOT NULL,
    strategy TEXT NOT NULL,
    strategy_config TEXT NOT NULL,
    num_clients INTEGER NOT NULL,
    metrics TEXT NOT NULL,
    privacy TEXT NOT NULL,
    created_at REAL NOT NULL,
    sha256 TEXT NOT NULL,
    size INTEGER NOT NULL,
    note TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (task, version)
);
CREATE TABLE IF NOT EXISTS privacy_ledger (
    run_id TEXT PRIMARY KEY,
    task TEXT NOT NULL,
    federation TEXT NOT NULL,
    spend TEXT NOT NULL,
    rounds INTEGER NOT NULL,
    epsilon REAL NOT NULL,
    delta REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS signatures (
    task TEXT NOT NULL,
    version INTEGER NOT NULL,
    manifest TEXT NOT NULL,
    signature BLOB NOT NULL,
    PRIMARY KEY (task, version)
);
CREATE TABLE IF NOT EXISTS serving (
    task TEXT PRIMARY KEY,
    version INTEGER NOT NULL,
    pinned_at REAL NOT NULL
)
"""
REGISTRY_FILE = "registry.db"
# PRAGMA application_id of a registry ("AICR"; the store is "AICA"), and its schema.
APPLICATION_ID = 0x41494352
SCHEMA_VERSION = 1
# The store's mark (aicache.local.schema, which this layer may not import).
STORE_APPLICATION_ID = 0x41494341
TABLES = frozenset({"runs", "versions", "privacy_ledger", "signatures", "serving"})
VERSION_COLUMNS = (
    "task, version, parent, round, run_id, strategy, strategy_config, num_clients, metrics, "
    "privacy, created_at, sha256, size, note"
)


def unusable(path: Path, reason: str) -> AicacheError:
    """The error for a registry file that cannot be used, with the way out."""
    return AicacheError(
        f"the model registry {path} cannot be used: {reason}",
        hint="Nothing was changed. Point --registry at another directory, or move "
        f"{path.name} aside.",
    )


def check_ours(conn: sqlite3.Connection, path: Path) -> None:
    """Refuse a database that is not a registry (or one from a newer aicache).

    A registry is marked with its own ``application_id`` (the store has
    another). An unmarked file is taken only when it is empty, or when it is
    a registry made before the mark: its tables are the registry's own.
    """
    app_id = int(conn.execute("PRAGMA application_id").fetchone()[0])
    version = int(conn.execute("PRAGMA user_version").fetchone()[0])
    if app_id == APPLICATION_ID:
        if version > SCHEMA_VERSION:
            raise unusable(
                path,
                f"it was written by a newer aicache (registry schema {version}, this one knows "
                f"{SCHEMA_VERSION}); upgrade aicache",
            )
        return
    tables = {
        str(row[0]) for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
    }
    if app_id == 0 and not tables:
        return
    if app_id == 0 and "versions" in tables and tables <= TABLES:
        columns = {str(row[1]) for row in conn.execute("PRAGMA table_info(versions)")}
        if columns == {name.strip() for name in VERSION_COLUMNS.split(",")}:
            return
    owner = "aicache's private store" if app_id == STORE_APPLICATION_ID else "another program"
    raise unusable(path, f"it is an SQLite database of {owner}, not a model registry")


class RegistryDatabase:
    """An open ``registry.db``: checked, in WAL mode, with its schema in place.

    Parameters
    ----------
    root
        The registry directory; created (owner-only) if missing.

    Raises
    ------
    AicacheError
        If the file cannot be opened, is not a registry, or is from a newer aicache.
    """

    def __init__(self, root: Path) -> None:
        path = root / REGISTRY_FILE
        try:
            root.mkdir(mode=0o700, parents=True, exist_ok=True)
            self.conn = sqlite3.connect(path, timeout=30, isolation_level=None)
        except (sqlite3.DatabaseError, OSError) as exc:
            raise unusable(path, str(exc)) from exc
        try:
            self.conn.execute("PRAGMA busy_timeout = 30000")
            check_ours(self.conn, path)  # before anything is written to the file
            if self.conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                self.conn.execute("PRAGMA journal_mode = WAL")
            with self.write() as conn:
                check_ours(conn, path)  # another process may have created it meanwhile
                for statement in SCHEMA.split(";"):
                    conn.execute(statement)
                conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
                conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        except sqlite3.DatabaseError as exc:
            self.conn.close()
            raise unusable(path, str(exc)) from exc
        except BaseException:
            self.conn.close()
            raise

    def close(self) -> None:
        """Close the connection."""
        self.conn.close()

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """A write transaction, taken up front so two processes never deadlock."""
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield self.conn
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")
