"""The privacy ledger: what each run has spent on a federation's data, per task."""

from __future__ import annotations

import json
import time
from typing import Any

from aicache.registry.database import RegistryDatabase

_LEDGER_COLUMNS = (
    "run_id",
    "task",
    "federation",
    "spend",
    "rounds",
    "epsilon",
    "delta",
    "updated_at",
)


class PrivacyLedger:
    """The ``privacy_ledger`` table: one row per run, updated as the run spends.

    Parameters
    ----------
    db
        The open registry database.
    """

    def __init__(self, db: RegistryDatabase) -> None:
        self._db = db

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
        with self._db.write() as conn:
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

    def rows(self, task: str, federation: str | None = None) -> list[dict[str, Any]]:
        """The ledger's rows for ``task`` (and ``federation``), oldest first."""
        query = f"SELECT {', '.join(_LEDGER_COLUMNS)} FROM privacy_ledger WHERE task = ?"
        params: tuple[str, ...] = (task,)
        if federation is not None:
            query, params = query + " AND federation = ?", (task, federation)
        rows = self._db.conn.execute(query + " ORDER BY updated_at", params).fetchall()
        return [
            {**dict(zip(_LEDGER_COLUMNS, row, strict=True)), "spend": json.loads(row[3])}
            for row in rows
        ]
