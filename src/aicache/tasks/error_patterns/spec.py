"""The error-patterns task's spec: what the rest of aicache knows about it."""

from __future__ import annotations

from pathlib import Path

from aicache.features.error_events import errors_from_home, errors_version
from aicache.tasks.base import AnyTask
from aicache.tasks.error_patterns.catalogue import catalogue
from aicache.tasks.error_patterns.population import SyntheticErrors
from aicache.tasks.error_patterns.task import ErrorContext, ErrorExamples, ErrorPatternsTask
from aicache.tasks.spec import (
    Aggregation,
    Metric,
    PredictionKind,
    TaskSpec,
    TaskTags,
    register_spec,
)


def read_store(task: AnyTask, home: Path) -> ErrorExamples:
    """This machine's contribution: its store's failing calls, bounded."""
    examples: ErrorExamples = task.load_local(errors_from_home(home))
    return examples


def example_context() -> ErrorContext:
    """The public catalogue of recorded errors."""
    return ErrorContext(keys=catalogue())


SPEC = register_spec(
    TaskSpec(
        name=ErrorPatternsTask.name,
        factory=ErrorPatternsTask,
        examples=ErrorExamples,
        metrics=(
            Metric(name="common", label="own errors common", bounded=True),
            Metric(name="share", label="mean share hitting them", bounded=True),
        ),
        synthetic=lambda seed, clients: SyntheticErrors(seed, clients),
        read_store=read_store,
        store_version=errors_version,
        context=example_context,
        record_label="errors",
        aggregation=Aggregation.SUM,
        tags=TaskTags(gradient=False, prediction=PredictionKind.SCORED_STRINGS),
    )
)
