"""Evaluating a registered model on users it never saw, with a cold-start view.

Which metrics are reported, and the baseline of the cold-start view, come from
the task's spec (:mod:`aicache.tasks.spec`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from aicache.tasks.base import ensure_compatible, get_task
from aicache.tasks.spec import ClientSource, get_spec

__all__ = ["UserEvaluation", "evaluate_unseen", "summary"]


@dataclass(frozen=True, slots=True)
class UserEvaluation:
    """One unseen user's results.

    Attributes
    ----------
    user
        The user's name in the source.
    records
        How many records (commands, ...) the user has.
    record_label
        What the task calls its records (the spec's ``record_label``): the
        key of ``records`` in ``row``, so that JSON consumers keep theirs.
    overall
        The global model's headline metrics on all of them.
    cold_global
        The global model's headline metrics on the cold-start view.
    cold_own
        The task's own-data baseline on the cold-start view (empty without one).
    """

    user: str
    records: int
    overall: dict[str, float]
    cold_global: dict[str, float]
    cold_own: dict[str, float]
    record_label: str = "records"

    def row(self) -> dict[str, Any]:
        """The flat row of ``summary``: ``commands``, ``top1``, ``cold_global_top1``, ..."""
        return {
            "user": self.user,
            self.record_label: self.records,
            **self.overall,
            **{f"cold_global_{k}": v for k, v in self.cold_global.items()},
            **{f"cold_own_{k}": v for k, v in self.cold_own.items()},
        }


def evaluate_unseen(
    task_name: str,
    params: list[np.ndarray],
    source: ClientSource,
    *,
    cold_start: int = 200,
) -> list[UserEvaluation]:
    """The model on every user of ``source``, all of whose records are unseen.

    The cold-start view covers each user's first ``cold_start`` records: the
    global model against the task's baseline on the user's own data alone
    (for next-command an online count model that learns as they type, see
    :mod:`aicache.tasks.history_baseline`).
    """
    task, spec = get_task(task_name), get_spec(task_name)
    ensure_compatible(task_name, params)
    headline = [m.name for m in spec.headline]
    results = []
    for client, user in enumerate(source.names()):
        records = source.records(client)
        examples = task.load_local(records)
        overall = task.evaluate(params, examples)
        cold = task.evaluate(params, examples.slice(0, cold_start))
        own = spec.cold_start(records, cold_start) if spec.cold_start else {}
        results.append(
            UserEvaluation(
                user=user,
                records=len(records),
                overall={k: overall[k] for k in headline},
                cold_global={k: cold[k] for k in headline},
                cold_own={k: own[k] for k in headline if k in own},
                record_label=spec.record_label,
            )
        )
    return results


def summary(results: list[UserEvaluation]) -> dict[str, Any]:
    """Macro averages over users, and the per-user rows."""
    rows = [r.row() for r in results]
    keys = [k for k in rows[0] if k not in ("user", results[0].record_label)] if rows else []
    return {
        "users": len(results),
        **{key: float(np.mean([row[key] for row in rows])) for key in keys},
        "per_user": rows,
    }
