"""The model registry: every aggregated global model becomes a numbered version.

Metadata lives in ``registry.db`` (SQLite, WAL) beside an ``artifacts/``
folder of content-addressed array archives. Versions are immutable: a
rollback registers a new version whose artifact is the older one's, so the
lineage stays a simple chain. What ``suggest`` serves can be pinned to one
version (:meth:`ModelRegistry.pin`); unpinned, the newest version serves.
"""

from __future__ import annotations

import json
import re
import sqlite3
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from aicache.errors import AicacheError
from aicache.registry.artifacts import load_arrays, save_arrays

_SCHEMA = """
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
MAX_VERSION = 2**63 - 1
REGISTRY_FILE = "registry.db"
# PRAGMA application_id of a registry ("AICR"; the store is "AICA"), and its schema.
APPLICATION_ID = 0x41494352
SCHEMA_VERSION = 1
# The store's mark (aicache.local.schema, which this layer may not import).
STORE_APPLICATION_ID = 0x41494341
_TABLES = frozenset({"runs", "versions", "privacy_ledger", "signatures", "serving"})
_VERSION_COLUMNS = (
    "task, version, parent, round, run_id, strategy, strategy_config, num_clients, metrics, "
    "privacy, created_at, sha256, size, note"
)


@dataclass(frozen=True, slots=True)
class ModelVersion:
    """One registered global model.

    Attributes
    ----------
    task, version
        The task's name and this version's number (1, 2, ... per task).
    parent
        The version it was trained from (``None`` for the first).
    round
        The federated round of its run that produced it.
    run_id
        The run that produced it.
    strategy, strategy_config
        The aggregation rule by name, and its settings.
    num_clients
        How many clients' valid updates went into it.
    metrics
        Evaluation and training metrics of the round.
    privacy
        The privacy accounting of the run up to this version (``{"dp": "off"}``
        when no differential privacy was applied).
    created_at
        Seconds since the epoch.
    sha256, size
        The artifact's hash and size in bytes.
    note
        Free text (for example, which version a rollback restored).
    """

    task: str
    version: int
    parent: int | None
    round: int
    run_id: str
    strategy: str
    strategy_config: dict[str, Any]
    num_clients: int
    metrics: dict[str, float]
    privacy: dict[str, Any]
    created_at: float
    sha256: str
    size: int
    note: str = ""

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready form."""
        return {name: getattr(self, name) for name in self.__slots__}


@dataclass(frozen=True, slots=True)
class RunRecord:
    """A federated run as the registry remembers it (to resume it after a crash)."""

    run_id: str
    task: str
    spec: dict[str, Any]
    status: str
    started_at: float
    finished_at: float | None
    message: str | None


def _damaged(what: str, exc: Exception) -> AicacheError:
    return AicacheError(
        f"the model registry's record of {what} is damaged: {exc}",
        hint="Restore registry.db from a backup, or move the registry aside and train again.",
    )


def _run_record(row: tuple[Any, ...]) -> RunRecord:
    try:
        return RunRecord(row[0], row[1], json.loads(row[2]), row[3], row[4], row[5], row[6])
    except (ValueError, TypeError) as exc:  # a row edited or damaged outside aicache
        raise _damaged(f"run {row[0]}", exc) from exc


def _version(row: tuple[Any, ...]) -> ModelVersion:
    try:
        return _version_of(row)
    except (ValueError, TypeError) as exc:  # a row edited or damaged outside aicache
        raise _damaged(f"version {row[1]} of {row[0]}", exc) from exc


_DIGEST = re.compile(r"[0-9a-f]{64}")


def _version_of(row: tuple[Any, ...]) -> ModelVersion:
    # The digest becomes a file path: only a real SHA-256 may name an artifact.
    if not isinstance(row[11], str) or not _DIGEST.fullmatch(row[11]):
        raise ValueError(f"its artifact hash {row[11]!r} is not a SHA-256")
    if not all(isinstance(row[i], str) for i in (0, 4, 5, 13)):
        raise TypeError("its task, run, strategy or note is not text")
    return ModelVersion(
        task=row[0],
        version=row[1],
        parent=row[2],
        round=row[3],
        run_id=row[4],
        strategy=row[5],
        strategy_config=json.loads(row[6]),
        num_clients=row[7],
        metrics=json.loads(row[8]),
        privacy=json.loads(row[9]),
        created_at=row[10],
        sha256=row[11],
        size=row[12],
        note=row[13],
    )


def _unusable(path: Path, reason: str) -> AicacheError:
    return AicacheError(
        f"the model registry {path} cannot be used: {reason}",
        hint="Nothing was changed. Point --registry at another directory, or move "
        f"{path.name} aside.",
    )


def _check_ours(conn: sqlite3.Connection, path: Path) -> None:
    """Refuse a database that is not a registry (or one from a newer aicache).

    A registry is marked with its own ``application_id`` (the store has
    another). An unmarked file is taken only when it is empty, or when it is
    a registry made before the mark: its tables are the registry's own.
    """
    app_id = int(conn.execute("PRAGMA application_id").fetchone()[0])
    version = int(conn.execute("PRAGMA user_version").fetchone()[0])
    if app_id == APPLICATION_ID:
        if version > SCHEMA_VERSION:
            raise _unusable(
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
    if app_id == 0 and "versions" in tables and tables <= _TABLES:
        columns = {str(row[1]) for row in conn.execute("PRAGMA table_info(versions)")}
        if columns == {name.strip() for name in _VERSION_COLUMNS.split(",")}:
            return
    owner = "aicache's private store" if app_id == STORE_APPLICATION_ID else "another program"
    raise _unusable(path, f"it is an SQLite database of {owner}, not a model registry")


class ModelRegistry:
    """Versions of every task's global model under one directory.

    Parameters
    ----------
    root
        The registry directory; created (owner-only) if missing.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.artifacts = root / "artifacts"
        path = root / REGISTRY_FILE
        try:
            root.mkdir(mode=0o700, parents=True, exist_ok=True)
            self._conn = sqlite3.connect(path, timeout=30, isolation_level=None)
        except (sqlite3.DatabaseError, OSError) as exc:
            raise _unusable(path, str(exc)) from exc
        try:
            self._conn.execute("PRAGMA busy_timeout = 30000")
            _check_ours(self._conn, path)  # before anything is written to the file
            if self._conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                self._conn.execute("PRAGMA journal_mode = WAL")
            with self._write() as conn:
                _check_ours(conn, path)  # another process may have created it meanwhile
                for statement in _SCHEMA.split(";"):
                    conn.execute(statement)
                conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
                conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        except sqlite3.DatabaseError as exc:
            self._conn.close()
            raise _unusable(path, str(exc)) from exc
        except BaseException:
            self._conn.close()
            raise

    def close(self) -> None:
        """Close the database connection."""
        self._conn.close()

    def __enter__(self) -> ModelRegistry:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            yield self._conn
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        self._conn.execute("COMMIT")

    # Runs -----------------------------------------------------------------

    def start_run(self, task: str, spec: dict[str, Any]) -> str:
        """Record the start of a run and return its id."""
        run_id = uuid.uuid4().hex[:16]
        with self._write() as conn:
            conn.execute(
                "INSERT INTO runs (run_id, task, spec, status, started_at) "
                "VALUES (?, ?, ?, 'running', ?)",
                (run_id, task, json.dumps(spec, sort_keys=True), time.time()),
            )
        return run_id

    def finish_run(self, run_id: str, status: str, message: str | None = None) -> None:
        """Mark a run ``finished`` or ``failed``."""
        with self._write() as conn:
            conn.execute(
                "UPDATE runs SET status = ?, finished_at = ?, message = ? WHERE run_id = ?",
                (status, time.time(), message, run_id),
            )

    def run(self, run_id: str) -> RunRecord:
        """The run ``run_id``.

        Raises
        ------
        AicacheError
            If the registry has no such run.
        """
        row = self._conn.execute(
            "SELECT run_id, task, spec, status, started_at, finished_at, message FROM runs "
            "WHERE run_id = ?",
            (run_id,),
        ).fetchone()
        if row is None:
            raise AicacheError(f"no run {run_id!r} in the registry at {self.root}")
        return _run_record(row)

    def resumable_run(self, task: str) -> RunRecord | None:
        """The newest run of ``task`` that did not finish: interrupted, or failed mid-way."""
        row = self._conn.execute(
            "SELECT run_id, task, spec, status, started_at, finished_at, message FROM runs "
            "WHERE task = ? AND status IN ('running', 'failed') ORDER BY started_at DESC LIMIT 1",
            (task,),
        ).fetchone()
        return None if row is None else _run_record(row)

    def reopen_run(self, run_id: str) -> None:
        """Mark a resumed run ``running`` again."""
        with self._write() as conn:
            conn.execute(
                "UPDATE runs SET status = 'running', finished_at = NULL, message = NULL "
                "WHERE run_id = ?",
                (run_id,),
            )

    def unfinished_run(self, task: str) -> RunRecord | None:
        """The newest run of ``task`` that never finished (crashed or killed), if any."""
        row = self._conn.execute(
            "SELECT run_id, task, spec, status, started_at, finished_at, message FROM runs "
            "WHERE task = ? AND status = 'running' ORDER BY started_at DESC LIMIT 1",
            (task,),
        ).fetchone()
        return None if row is None else _run_record(row)

    # Versions -------------------------------------------------------------

    def register(
        self,
        task: str,
        arrays: list[np.ndarray],
        *,
        run_id: str,
        round: int,
        parent: int | None,
        strategy: str,
        strategy_config: dict[str, Any],
        num_clients: int,
        metrics: dict[str, float],
        privacy: dict[str, Any],
        note: str = "",
    ) -> ModelVersion:
        """Store ``arrays`` as the next version of ``task``, trained from ``parent``."""
        digest, size = save_arrays(self.artifacts, arrays)
        with self._write() as conn:
            latest = conn.execute(
                "SELECT max(version) FROM versions WHERE task = ?", (task,)
            ).fetchone()[0]
            version = ModelVersion(
                task=task,
                version=(latest or 0) + 1,
                parent=parent,
                round=round,
                run_id=run_id,
                strategy=strategy,
                strategy_config=strategy_config,
                num_clients=num_clients,
                metrics=metrics,
                privacy=privacy,
                created_at=time.time(),
                sha256=digest,
                size=size,
                note=note,
            )
            conn.execute(
                f"INSERT INTO versions ({_VERSION_COLUMNS}) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    version.task,
                    version.version,
                    version.parent,
                    version.round,
                    version.run_id,
                    version.strategy,
                    json.dumps(version.strategy_config, sort_keys=True),
                    version.num_clients,
                    json.dumps(version.metrics, sort_keys=True),
                    json.dumps(version.privacy, sort_keys=True),
                    version.created_at,
                    version.sha256,
                    version.size,
                    version.note,
                ),
            )
        return version

    def versions(self, task: str | None = None) -> list[ModelVersion]:
        """All versions (of ``task``), oldest first."""
        query = f"SELECT {_VERSION_COLUMNS} FROM versions"
        params: tuple[str, ...] = ()
        if task:
            query, params = query + " WHERE task = ?", (task,)
        rows = self._conn.execute(query + " ORDER BY task, version", params).fetchall()
        return [_version(row) for row in rows]

    def latest(self, task: str) -> ModelVersion | None:
        """The newest version of ``task``, or ``None`` when it has none."""
        row = self._conn.execute(
            f"SELECT {_VERSION_COLUMNS} FROM versions WHERE task = ? ORDER BY version DESC LIMIT 1",
            (task,),
        ).fetchone()
        return None if row is None else _version(row)

    def run_versions(self, run_id: str) -> list[ModelVersion]:
        """The versions a run produced, in order."""
        rows = self._conn.execute(
            f"SELECT {_VERSION_COLUMNS} FROM versions WHERE run_id = ? ORDER BY version",
            (run_id,),
        ).fetchall()
        return [_version(row) for row in rows]

    def resolve(self, task: str, ref: str) -> ModelVersion:
        """The version named by ``ref``: ``latest`` or a version number.

        Raises
        ------
        AicacheError
            If ``ref`` is malformed or names no version.
        """
        if ref == "latest":
            found = self.latest(task)
        else:
            try:
                number = int(ref)
                if not 1 <= number <= MAX_VERSION:  # SQLite integers are 64-bit
                    raise ValueError(ref)
            except ValueError as exc:
                raise AicacheError(
                    f"invalid model version {ref!r}: use latest or a version number from 1 "
                    f"to {MAX_VERSION}",
                    hint="`aicache models list` shows what is registered.",
                ) from exc
            row = self._conn.execute(
                f"SELECT {_VERSION_COLUMNS} FROM versions WHERE task = ? AND version = ?",
                (task, number),
            ).fetchone()
            found = None if row is None else _version(row)
        if found is None:
            raise AicacheError(
                f"no version {ref} of task {task!r} in the registry at {self.root}",
                hint="`aicache models list` shows what is registered; a simulation registers "
                "its versions.",
            )
        return found

    def load(self, version: ModelVersion) -> list[np.ndarray]:
        """The arrays of ``version`` (checked against its SHA-256)."""
        return load_arrays(self.artifacts, version.sha256)

    def rollback(self, task: str, to: ModelVersion) -> ModelVersion:
        """Make ``to`` the latest model again, as a new version that reuses its artifact."""
        arrays = self.load(to)
        restored = self.register(
            task,
            arrays,
            run_id=to.run_id,
            round=to.round,
            parent=to.version,
            strategy=to.strategy,
            strategy_config=to.strategy_config,
            num_clients=to.num_clients,
            metrics=to.metrics,
            privacy=to.privacy,
            note=f"rollback to version {to.version}",
        )
        signed = self.signature(task, to.version)
        if signed is not None:  # a model from a federation stays verifiable after a rollback
            self.add_signature(task, restored.version, *signed)
        if self.pinned(task) is not None:  # a rollback is meant to change what serves
            self.pin(task, restored)
        return restored

    # Serving --------------------------------------------------------------

    def pin(self, task: str, version: ModelVersion | None) -> None:
        """Serve ``version`` of ``task`` from now on (``None``: the newest, whatever it is)."""
        with self._write() as conn:
            if version is None:
                conn.execute("DELETE FROM serving WHERE task = ?", (task,))
            else:
                conn.execute(
                    "INSERT OR REPLACE INTO serving (task, version, pinned_at) VALUES (?, ?, ?)",
                    (task, version.version, time.time()),
                )

    def pinned(self, task: str) -> ModelVersion | None:
        """The version of ``task`` pinned to serve, or ``None`` when none is pinned."""
        row = self._conn.execute("SELECT version FROM serving WHERE task = ?", (task,)).fetchone()
        return None if row is None else self.resolve(task, str(row[0]))

    # Signatures -----------------------------------------------------------

    def add_signature(self, task: str, version: int, manifest: bytes, signature: bytes) -> None:
        """Keep the signed manifest of ``version`` (what clients verify before use)."""
        with self._write() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO signatures (task, version, manifest, signature) "
                "VALUES (?, ?, ?, ?)",
                (task, version, manifest.decode(), signature),
            )

    def signature(self, task: str, version: int) -> tuple[bytes, bytes] | None:
        """The signed manifest and signature of ``version``, if it has them."""
        row = self._conn.execute(
            "SELECT manifest, signature FROM signatures WHERE task = ? AND version = ?",
            (task, version),
        ).fetchone()
        return None if row is None else (row[0].encode(), bytes(row[1]))

    def signed_manifests(self, task: str) -> dict[int, bytes]:
        """Every signed manifest of ``task``, by local version number."""
        rows = self._conn.execute(
            "SELECT version, manifest FROM signatures WHERE task = ? ORDER BY version", (task,)
        ).fetchall()
        return {int(row[0]): row[1].encode() for row in rows}

    # Privacy ledger -------------------------------------------------------

    def record_spend(
        self,
        *,
        run_id: str,
        task: str,
        federation: str,
        spend: dict[str, Any],
        rounds: int,
        epsilon: float,
        delta: float,
    ) -> None:
        """Record (or update) what a run has spent on a federation's data for a task."""
        with self._write() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO privacy_ledger (run_id, task, federation, spend, rounds, "
                "epsilon, delta, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    run_id,
                    task,
                    federation,
                    json.dumps(spend, sort_keys=True),
                    rounds,
                    epsilon,
                    delta,
                    time.time(),
                ),
            )

    def ledger(self, task: str, federation: str | None = None) -> list[dict[str, Any]]:
        """The ledger's rows for ``task`` (and ``federation``), oldest first."""
        query = (
            "SELECT run_id, task, federation, spend, rounds, epsilon, delta, updated_at "
            "FROM privacy_ledger WHERE task = ?"
        )
        params: tuple[str, ...] = (task,)
        if federation is not None:
            query, params = query + " AND federation = ?", (task, federation)
        rows = self._conn.execute(query + " ORDER BY updated_at", params).fetchall()
        names = (
            "run_id",
            "task",
            "federation",
            "spend",
            "rounds",
            "epsilon",
            "delta",
            "updated_at",
        )
        return [{**dict(zip(names, row, strict=True)), "spend": json.loads(row[3])} for row in rows]
