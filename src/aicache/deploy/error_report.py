"""What ``aicache errors`` shows: my recent error keys, and what the federation says of them.

My keys come from my own store (the task's store reader); whether each is
common across the federation comes from the newest ``error-patterns``
model the node holds (:func:`aicache.deploy.serving.served_model`: pinned,
newest, else shipped), read with its privacy record into a release with its
threshold (:mod:`aicache.tasks.error_patterns.release`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aicache.deploy.serving import ServedModel, served_model
from aicache.errors import AicacheError
from aicache.federation.privacy_view import noised_per_client
from aicache.local.paths import REGISTRY_DIRNAME
from aicache.registry import ModelRegistry
from aicache.registry.shipped import shipped_model
from aicache.tasks.error_patterns import CommonError, Release, release_of
from aicache.tasks.error_patterns.mine import RecentError, my_errors

TASK = "error-patterns"
NO_MODEL = (
    "this node holds no error-patterns model yet; a federation delivers one "
    "(`aicache join`, then `aicache models pull`)"
)


@dataclass(frozen=True, slots=True)
class ErrorRow:
    """One of my error keys and what the federation says of it."""

    mine: RecentError
    common: CommonError | None


@dataclass(frozen=True, slots=True)
class ErrorReport:
    """The answer to ``aicache errors``.

    Attributes
    ----------
    rows
        My most recent error keys, newest first.
    model
        The model the federation's view came from, or ``None`` when the node has none.
    release
        That model read as a release (threshold, ε), or ``None``.
    missing
        Why there is no federation view, when there is none.
    """

    rows: list[ErrorRow]
    model: ServedModel | None
    release: Release | None
    missing: str | None

    def as_dict(self) -> dict[str, Any]:
        """The report as JSON-ready data."""
        return {
            "errors": [
                {
                    "key": r.mine.key,
                    "tool": r.mine.tool,
                    "signature": r.mine.signature,
                    "times": r.mine.times,
                    "last": r.mine.last_ts,
                    "answer": r.mine.answer,
                    "common": r.common is not None,
                    "developers_band": None if r.common is None else r.common.band,
                    "share": None if r.common is None else round(r.common.share, 4),
                    "rising": None if r.common is None else r.common.rising,
                }
                for r in self.rows
            ],
            "model_version": None if self.model is None else self.model.version,
            "model": None if self.model is None else self.model.origin,
            "release": None if self.release is None else self.release.describe(),
            "missing": self.missing,
        }


def error_report(home: Path, limit: int) -> ErrorReport:
    """My ``limit`` most recent error keys in ``home``, marked by the federation's release."""
    mine = my_errors(home, limit)
    unmarked = [ErrorRow(m, None) for m in mine]
    with ModelRegistry(home / REGISTRY_DIRNAME) as registry:
        held = registry.latest(TASK) is not None
    if not held and shipped_model(TASK) is None:
        # None ships: counts of a simulated population would mean nothing here.
        return ErrorReport(unmarked, None, None, NO_MODEL)
    try:
        model = served_model(TASK, home)
    except AicacheError as exc:
        return ErrorReport(unmarked, None, None, exc.message)
    summed = None
    if model.version is not None:
        with ModelRegistry(home / REGISTRY_DIRNAME) as registry:
            found = [v for v in registry.versions(TASK) if v.version == model.version]
        summed = found[0].round if found else None
    release = release_of(
        model.params,
        model.privacy,
        rounds=summed,
        per_contribution=noised_per_client(model.privacy),
    )
    rows = [ErrorRow(m, release.lookup(m.key)) for m in mine]
    return ErrorReport(rows, model, release, None)
