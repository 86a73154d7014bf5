"""The semantic-hit task's spec: what the rest of aicache knows about it."""

from __future__ import annotations

from pathlib import Path

from aicache.features.semantic_feedback import verdicts_from_home, verdicts_version
from aicache.tasks.base import AnyTask
from aicache.tasks.semantic_hit.baseline import compare
from aicache.tasks.semantic_hit.pairs import LabelledPair, PairSet
from aicache.tasks.semantic_hit.sources import Nl2BashSource, StsbSource, SyntheticPairs
from aicache.tasks.semantic_hit.task import PairQuery, SemanticHitTask
from aicache.tasks.spec import (
    Metric,
    PredictionKind,
    TaskAttacks,
    TaskSpec,
    TaskTags,
    register_spec,
)


def read_store(task: AnyTask, home: Path) -> PairSet:
    """This machine's labelled pairs: each served semantic hit, right unless marked wrong."""
    pairs = [LabelledPair(v.query, v.cached_prompt, not v.wrong) for v in verdicts_from_home(home)]
    examples: PairSet = task.load_local(pairs)
    return examples


def label_flipped(examples: PairSet) -> PairSet:
    """Every pair's label flipped: a client that teaches the cache to serve near misses."""
    return PairSet(examples.features, 1.0 - examples.labels)


SPEC = register_spec(
    TaskSpec(
        name=SemanticHitTask.name,
        factory=SemanticHitTask,
        examples=PairSet,
        metrics=(
            Metric(name="f05", label="F0.5", bounded=True),
            Metric(name="precision", label="precision", bounded=True),
            Metric(name="recall", label="recall", bounded=True),
            Metric(name="accuracy", label="accuracy", headline=False, bounded=True),
            Metric(name="loss", label="loss", higher_is_better=False, headline=False),
        ),
        synthetic=lambda seed, clients: SyntheticPairs(seed, clients),
        formats={"nl2bash": Nl2BashSource, "stsb": StsbSource},
        read_store=read_store,
        store_version=verdicts_version,
        context=lambda: PairQuery(
            "how do I undo my last commit",
            ("how can I revert the latest git commit", "how do I delete a remote branch"),
        ),
        record_label="pairs",
        tags=TaskTags(gradient=True, prediction=PredictionKind.DECISIONS),
        attacks=TaskAttacks(label_flipped=label_flipped),
        compare=compare,
        extras=("semantic",),
    )
)
