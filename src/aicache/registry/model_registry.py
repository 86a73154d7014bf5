"""The model registry: every aggregated global model becomes a numbered version.

:class:`ModelRegistry` is the one object callers hold; its parts live in
their own modules over one SQLite file (:mod:`aicache.registry.database`):
runs (:mod:`~aicache.registry.runs`), versions and what serves
(:mod:`~aicache.registry.versions`), signatures
(:mod:`~aicache.registry.signatures`) and the privacy ledger
(:mod:`~aicache.registry.ledger`). Versions are immutable: a rollback
registers a new version whose artifact is the older one's, so the lineage
stays a simple chain.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from aicache.registry.database import (
    APPLICATION_ID,
    REGISTRY_FILE,
    SCHEMA_VERSION,
    STORE_APPLICATION_ID,
    RegistryDatabase,
)
from aicache.registry.ledger import PrivacyLedger
from aicache.registry.records import ModelVersion, RunRecord
from aicache.registry.runs import RunBook
from aicache.registry.signatures import SignatureBook
from aicache.registry.versions import MAX_VERSION, VersionBook

__all__ = [
    "APPLICATION_ID",
    "MAX_VERSION",
    "REGISTRY_FILE",
    "SCHEMA_VERSION",
    "STORE_APPLICATION_ID",
    "ModelRegistry",
    "ModelVersion",
    "RunRecord",
]


class ModelRegistry:
    """Versions of every task's global model under one directory.

    Parameters
    ----------
    root
        The registry directory; created (owner-only) if missing.

    Attributes
    ----------
    runs, model_versions, signatures, privacy_ledger
        The registry's parts; the methods below are their one front door.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self._db = RegistryDatabase(root)
        self.runs = RunBook(self._db, root)
        self.model_versions = VersionBook(self._db, root)
        self.signatures = SignatureBook(self._db)
        self.privacy_ledger = PrivacyLedger(self._db)
        self.artifacts = self.model_versions.artifacts

    def close(self) -> None:
        """Close the database connection."""
        self._db.close()

    def __enter__(self) -> ModelRegistry:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # Runs -----------------------------------------------------------------

    def start_run(self, task: str, spec: dict[str, Any]) -> str:
        """Record the start of a run and return its id."""
        return self.runs.start(task, spec)

    def finish_run(self, run_id: str, status: str, message: str | None = None) -> None:
        """Mark a run ``finished`` or ``failed``."""
        self.runs.finish(run_id, status, message)

    def run(self, run_id: str) -> RunRecord:
        """The run ``run_id`` (:class:`~aicache.errors.AicacheError` if there is none)."""
        return self.runs.get(run_id)

    def all_runs(self) -> list[RunRecord]:
        """Every run, newest first."""
        return self.runs.all()

    def resumable_run(self, task: str) -> RunRecord | None:
        """The newest run of ``task`` that did not finish: interrupted, or failed mid-way."""
        return self.runs.resumable(task)

    def reopen_run(self, run_id: str) -> None:
        """Mark a resumed run ``running`` again."""
        self.runs.reopen(run_id)

    def unfinished_run(self, task: str) -> RunRecord | None:
        """The newest run of ``task`` that never finished (crashed or killed), if any."""
        return self.runs.unfinished(task)

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
        return self.model_versions.register(
            task,
            arrays,
            run_id=run_id,
            round=round,
            parent=parent,
            strategy=strategy,
            strategy_config=strategy_config,
            num_clients=num_clients,
            metrics=metrics,
            privacy=privacy,
            note=note,
        )

    def versions(self, task: str | None = None) -> list[ModelVersion]:
        """All versions (of ``task``), oldest first."""
        return self.model_versions.all(task)

    def latest(self, task: str) -> ModelVersion | None:
        """The newest version of ``task``, or ``None`` when it has none."""
        return self.model_versions.latest(task)

    def run_versions(self, run_id: str) -> list[ModelVersion]:
        """The versions a run produced, in order."""
        return self.model_versions.of_run(run_id)

    def resolve(self, task: str, ref: str) -> ModelVersion:
        """The version named by ``ref``: ``latest`` or a version number (else an error)."""
        return self.model_versions.resolve(task, ref)

    def load(self, version: ModelVersion) -> list[np.ndarray]:
        """The arrays of ``version`` (checked against its SHA-256)."""
        return self.model_versions.load(version)

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
        self.model_versions.pin(task, version)

    def pinned(self, task: str) -> ModelVersion | None:
        """The version of ``task`` pinned to serve, or ``None`` when none is pinned."""
        return self.model_versions.pinned(task)

    # Signatures -----------------------------------------------------------

    def add_signature(self, task: str, version: int, manifest: bytes, signature: bytes) -> None:
        """Keep the signed manifest of ``version`` (what clients verify before use)."""
        self.signatures.add(task, version, manifest, signature)

    def signature(self, task: str, version: int) -> tuple[bytes, bytes] | None:
        """The signed manifest and signature of ``version``, if it has them."""
        return self.signatures.get(task, version)

    def signed_manifests(self, task: str) -> dict[int, bytes]:
        """Every signed manifest of ``task``, by local version number."""
        return self.signatures.manifests(task)

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
        self.privacy_ledger.record_spend(
            run_id=run_id,
            task=task,
            federation=federation,
            spend=spend,
            rounds=rounds,
            epsilon=epsilon,
            delta=delta,
        )

    def ledger(self, task: str, federation: str | None = None) -> list[dict[str, Any]]:
        """The ledger's rows for ``task`` (and ``federation``), oldest first."""
        return self.privacy_ledger.rows(task, federation)
