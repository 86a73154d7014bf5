"""The next-command task's spec: what the rest of aicache knows about it."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from aicache.features.candidates import CandidateSet
from aicache.features.history_items import (
    HistoryItem,
    history_version,
    items_from_home,
    items_from_store,
)
from aicache.tasks.base import AnyTask
from aicache.tasks.history_baseline import online_bigram_hits
from aicache.tasks.next_command.attacks import label_flipped, log_perplexity, plant
from aicache.tasks.next_command.sources import GreenbergSource, SyntheticSource
from aicache.tasks.next_command.task import NextCommandContext, NextCommandTask
from aicache.tasks.spec import (
    Metric,
    PredictionKind,
    TaskAttacks,
    TaskSpec,
    TaskTags,
    register_spec,
)


def read_store(task: AnyTask, home: Path) -> CandidateSet:
    """This machine's candidate sets: every imported command of ``home``'s store."""
    examples: CandidateSet = task.load_local(items_from_home(home))
    return examples


def history_from_store(conn: sqlite3.Connection) -> list[HistoryItem]:
    """The user's typed history in order, from an open store: what ``suggest`` predicts from."""
    return items_from_store(conn)


def own_history_cold_start(history: Sequence[HistoryItem], n: int) -> dict[str, float]:
    """The user's own history alone on their first ``n`` commands (an online count model)."""
    hits = online_bigram_hits(history[:n], (1, 3))
    return {"top1": float(np.mean(hits[1])), "top3": float(np.mean(hits[3]))}


SPEC = register_spec(
    TaskSpec(
        name=NextCommandTask.name,
        factory=NextCommandTask,
        examples=CandidateSet,
        metrics=(
            Metric(name="top1", label="top-1", bounded=True),
            Metric(name="top3", label="top-3", bounded=True),
            Metric(name="top5", label="top-5", headline=False, bounded=True),
            Metric(name="coverage", label="coverage", headline=False, bounded=True),
            Metric(name="loss", label="loss", higher_is_better=False, headline=False),
        ),
        synthetic=lambda seed, clients: SyntheticSource(seed, clients),
        formats={"greenberg": GreenbergSource},
        read_store=read_store,
        store_version=history_version,
        context=lambda: NextCommandContext(history=(), k=3),
        record_label="commands",
        cold_start=own_history_cold_start,
        tags=TaskTags(gradient=True, prediction=PredictionKind.RANKED_STRINGS),
        attacks=TaskAttacks(
            label_flipped=label_flipped, plant=plant, log_perplexity=log_perplexity
        ),
    )
)
