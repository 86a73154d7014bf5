"""What the registry hands out: model versions and runs, typed, decoded from their rows."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from aicache.errors import AicacheError


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


def damaged(what: str, exc: Exception) -> AicacheError:
    """The error for a row that was edited or damaged outside aicache."""
    return AicacheError(
        f"the model registry's record of {what} is damaged: {exc}",
        hint="Restore registry.db from a backup, or move the registry aside and train again.",
    )


def run_record(row: tuple[Any, ...]) -> RunRecord:
    """The run of a ``runs`` row (columns in table order)."""
    try:
        return RunRecord(row[0], row[1], json.loads(row[2]), row[3], row[4], row[5], row[6])
    except (ValueError, TypeError) as exc:  # a row edited or damaged outside aicache
        raise damaged(f"run {row[0]}", exc) from exc


def model_version(row: tuple[Any, ...]) -> ModelVersion:
    """The version of a ``versions`` row (columns as in ``VERSION_COLUMNS``)."""
    try:
        return _version_of(row)
    except (ValueError, TypeError) as exc:  # a row edited or damaged outside aicache
        raise damaged(f"version {row[1]} of {row[0]}", exc) from exc


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
