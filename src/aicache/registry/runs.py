"""The registry's record of federated runs: started, finished or failed, and resumable."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

from aicache.errors import AicacheError
from aicache.registry.database import RegistryDatabase
from aicache.registry.records import RunRecord, run_record

_RUN_COLUMNS = "run_id, task, spec, status, started_at, finished_at, message"


class RunBook:
    """The ``runs`` table: one row per run, so a crashed run can be resumed.

    Parameters
    ----------
    db
        The open registry database.
    root
        The registry directory (named in errors).
    """

    def __init__(self, db: RegistryDatabase, root: Path) -> None:
        self._db = db
        self._root = root

    def start(self, task: str, spec: dict[str, Any]) -> str:
        """Record the start of a run and return its id."""
        run_id = uuid.uuid4().hex[:16]
        with self._db.write() as conn:
            conn.execute(
                "INSERT INTO runs (run_id, task, spec, status, started_at) "
                "VALUES (?, ?, ?, 'running', ?)",
                (run_id, task, json.dumps(spec, sort_keys=True), time.time()),
            )
        return run_id

    def finish(self, run_id: str, status: str, message: str | None = None) -> None:
        """Mark a run ``finished`` or ``failed``."""
        with self._db.write() as conn:
            conn.execute(
                "UPDATE runs SET status = ?, finished_at = ?, message = ? WHERE run_id = ?",
                (status, time.time(), message, run_id),
            )

    def get(self, run_id: str) -> RunRecord:
        """The run ``run_id``.

        Raises
        ------
        AicacheError
            If the registry has no such run.
        """
        row = self._db.conn.execute(
            f"SELECT {_RUN_COLUMNS} FROM runs WHERE run_id = ?", (run_id,)
        ).fetchone()
        if row is None:
            raise AicacheError(f"no run {run_id!r} in the registry at {self._root}")
        return run_record(row)

    def all(self) -> list[RunRecord]:
        """Every run, newest first."""
        rows = self._db.conn.execute(
            f"SELECT {_RUN_COLUMNS} FROM runs ORDER BY started_at DESC"
        ).fetchall()
        return [run_record(row) for row in rows]

    def resumable(self, task: str) -> RunRecord | None:
        """The newest run of ``task`` that did not finish: interrupted, or failed mid-way."""
        return self._newest(task, "status IN ('running', 'failed')")

    def reopen(self, run_id: str) -> None:
        """Mark a resumed run ``running`` again."""
        with self._db.write() as conn:
            conn.execute(
                "UPDATE runs SET status = 'running', finished_at = NULL, message = NULL "
                "WHERE run_id = ?",
                (run_id,),
            )

    def unfinished(self, task: str) -> RunRecord | None:
        """The newest run of ``task`` that never finished (crashed or killed), if any."""
        return self._newest(task, "status = 'running'")

    def _newest(self, task: str, condition: str) -> RunRecord | None:
        row = self._db.conn.execute(
            f"SELECT {_RUN_COLUMNS} FROM runs WHERE task = ? AND {condition} "
            "ORDER BY started_at DESC LIMIT 1",
            (task,),
        ).fetchone()
        return None if row is None else run_record(row)
