"""Model versions: numbered per task, immutable, and which one serves.

Versions are immutable: a rollback registers a new version whose artifact is
the older one's, so the lineage stays a simple chain. What ``suggest`` serves
can be pinned to one version; unpinned, the newest version serves.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from aicache.errors import AicacheError
from aicache.registry.artifacts import load_arrays, save_arrays
from aicache.registry.database import VERSION_COLUMNS, RegistryDatabase
from aicache.registry.records import ModelVersion, model_version

MAX_VERSION = 2**63 - 1


class VersionBook:
    """The ``versions`` and ``serving`` tables, and the artifacts they name.

    Parameters
    ----------
    db
        The open registry database.
    root
        The registry directory: artifacts live in its ``artifacts/`` folder.
    """

    def __init__(self, db: RegistryDatabase, root: Path) -> None:
        self._db = db
        self._root = root
        self.artifacts = root / "artifacts"

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
        with self._db.write() as conn:
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
                f"INSERT INTO versions ({VERSION_COLUMNS}) "
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

    def all(self, task: str | None = None) -> list[ModelVersion]:
        """All versions (of ``task``), oldest first."""
        query = f"SELECT {VERSION_COLUMNS} FROM versions"
        params: tuple[str, ...] = ()
        if task:
            query, params = query + " WHERE task = ?", (task,)
        rows = self._db.conn.execute(query + " ORDER BY task, version", params).fetchall()
        return [model_version(row) for row in rows]

    def latest(self, task: str) -> ModelVersion | None:
        """The newest version of ``task``, or ``None`` when it has none."""
        row = self._db.conn.execute(
            f"SELECT {VERSION_COLUMNS} FROM versions WHERE task = ? ORDER BY version DESC LIMIT 1",
            (task,),
        ).fetchone()
        return None if row is None else model_version(row)

    def of_run(self, run_id: str) -> list[ModelVersion]:
        """The versions a run produced, in order."""
        rows = self._db.conn.execute(
            f"SELECT {VERSION_COLUMNS} FROM versions WHERE run_id = ? ORDER BY version",
            (run_id,),
        ).fetchall()
        return [model_version(row) for row in rows]

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
            row = self._db.conn.execute(
                f"SELECT {VERSION_COLUMNS} FROM versions WHERE task = ? AND version = ?",
                (task, number),
            ).fetchone()
            found = None if row is None else model_version(row)
        if found is None:
            raise AicacheError(
                f"no version {ref} of task {task!r} in the registry at {self._root}",
                hint="`aicache models list` shows what is registered; a simulation registers "
                "its versions.",
            )
        return found

    def load(self, version: ModelVersion) -> list[np.ndarray]:
        """The arrays of ``version`` (checked against its SHA-256)."""
        return load_arrays(self.artifacts, version.sha256)

    # Serving --------------------------------------------------------------

    def pin(self, task: str, version: ModelVersion | None) -> None:
        """Serve ``version`` of ``task`` from now on (``None``: the newest, whatever it is)."""
        with self._db.write() as conn:
            if version is None:
                conn.execute("DELETE FROM serving WHERE task = ?", (task,))
            else:
                conn.execute(
                    "INSERT OR REPLACE INTO serving (task, version, pinned_at) VALUES (?, ?, ?)",
                    (task, version.version, time.time()),
                )

    def pinned(self, task: str) -> ModelVersion | None:
        """The version of ``task`` pinned to serve, or ``None`` when none is pinned."""
        row = self._db.conn.execute(
            "SELECT version FROM serving WHERE task = ?", (task,)
        ).fetchone()
        return None if row is None else self.resolve(task, str(row[0]))
