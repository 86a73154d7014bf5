"""Evaluating a registered model on users it never saw, with a cold-start view."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from aicache.errors import AicacheError
from aicache.simulation.sources import GreenbergSource, SyntheticSource
from aicache.tasks.base import check_params, get_task
from aicache.tasks.history_baseline import online_bigram_hits


@dataclass(frozen=True, slots=True)
class UserEvaluation:
    """One unseen user's results."""

    user: str
    commands: int
    top1: float
    top3: float
    cold_global_top1: float
    cold_global_top3: float
    cold_own_top1: float
    cold_own_top3: float


def ensure_compatible(task_name: str, params: list[np.ndarray]) -> None:
    """Refuse a model whose arrays do not fit the task as this version defines it.

    Raises
    ------
    AicacheError
        Naming the mismatch (a model registered by another version of the task).
    """
    try:
        check_params(params, get_task(task_name).init_params(0))
    except ValueError as exc:
        raise AicacheError(
            f"the model does not fit task {task_name} as this aicache defines it: {exc}",
            hint="It was trained by another version of the task; train a new one with "
            "`aicache simulate`.",
        ) from exc


def evaluate_unseen(
    task_name: str,
    params: list[np.ndarray],
    source: SyntheticSource | GreenbergSource,
    *,
    cold_start: int = 200,
) -> list[UserEvaluation]:
    """The model on every user of ``source``, all of whose commands are unseen.

    The cold-start view covers each user's first ``cold_start`` commands: the
    global model against the user's own history alone (an online count model
    that learns as they type, see :mod:`aicache.tasks.history_baseline`).
    """
    task = get_task(task_name)
    ensure_compatible(task_name, params)
    results = []
    for client, user in enumerate(source.names()):
        history = source.history(client)
        examples = task.load_local(history)
        overall = task.evaluate(params, examples)
        cold = task.evaluate(params, examples.slice(0, cold_start))
        own = online_bigram_hits(history[:cold_start], (1, 3))
        results.append(
            UserEvaluation(
                user=user,
                commands=len(history),
                top1=overall["top1"],
                top3=overall["top3"],
                cold_global_top1=cold["top1"],
                cold_global_top3=cold["top3"],
                cold_own_top1=float(np.mean(own[1])),
                cold_own_top3=float(np.mean(own[3])),
            )
        )
    return results


def summary(results: list[UserEvaluation]) -> dict[str, Any]:
    """Macro averages over users, and the per-user rows."""
    keys = (
        "top1",
        "top3",
        "cold_global_top1",
        "cold_global_top3",
        "cold_own_top1",
        "cold_own_top3",
    )
    return {
        "users": len(results),
        **{key: float(np.mean([getattr(r, key) for r in results])) for key in keys},
        "per_user": [asdict(r) for r in results],
    }
