"""The cache-keep task's spec: what the rest of aicache knows about it."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from aicache.features.cache_requests import requests_from_home, requests_version
from aicache.tasks.base import AnyTask
from aicache.tasks.cache_keep.keep_features import EntryState
from aicache.tasks.cache_keep.sources import GreenbergRequests, SyntheticRequests
from aicache.tasks.cache_keep.task import CacheKeepTask, KeepContext, KeepExamples
from aicache.tasks.spec import (
    Metric,
    PredictionKind,
    TaskAttacks,
    TaskSpec,
    TaskTags,
    register_spec,
)


def read_store(task: AnyTask, home: Path) -> KeepExamples:
    """This machine's examples: its store's calls through the cache, replayed."""
    examples: KeepExamples = task.load_local(requests_from_home(home))
    return examples


def label_flipped(examples: KeepExamples) -> KeepExamples:
    """The same entries with each label inverted (the label-flip poisoning attack)."""
    return KeepExamples(examples.features, 1.0 - examples.labels)


def example_context() -> KeepContext:
    """Three entries: asked often and lately, once long ago, once just now."""
    values = np.array
    return KeepContext(
        names=("often", "stale", "new"),
        state=EntryState(
            since_use=values([2.0, 400.0, 0.0]),
            since_first=values([300.0, 400.0, 0.0]),
            uses=values([12.0, 1.0, 1.0]),
            size=values([2000.0, 500.0, 800.0]),
            cost=values([4.0, 1.0, 2.0]),
            since_program=values([1.0, 50.0, 0.0]),
            semantic=values([0.0, 0.0, 0.0]),
            last_gap=values([20.0, 400.0, 0.0]),
            program_reuse=values([0.8, 0.3, 0.5]),
        ),
    )


SPEC = register_spec(
    TaskSpec(
        name=CacheKeepTask.name,
        factory=CacheKeepTask,
        examples=KeepExamples,
        metrics=(
            Metric(name="auc", label="keep AUC", bounded=True),
            Metric(name="accuracy", label="accuracy", bounded=True),
            Metric(name="loss", label="loss", higher_is_better=False, headline=False),
            Metric(name="reused", label="reused soon", headline=False, bounded=True),
        ),
        synthetic=lambda seed, clients: SyntheticRequests(seed, clients),
        formats={"greenberg": GreenbergRequests},
        read_store=read_store,
        store_version=requests_version,
        context=example_context,
        record_label="requests",
        tags=TaskTags(gradient=True, prediction=PredictionKind.SCORED_STRINGS),
        attacks=TaskAttacks(label_flipped=label_flipped),
    )
)
