"""The library-recs task's spec: what the rest of aicache knows about it."""

from __future__ import annotations

from aicache.tasks.library_recs.baseline import compare
from aicache.tasks.library_recs.projects import ProjectSet
from aicache.tasks.library_recs.sources import DebianSource, SyntheticProjects
from aicache.tasks.library_recs.task import LibraryQuery, LibraryRecsTask
from aicache.tasks.spec import Metric, PredictionKind, TaskSpec, TaskTags, register_spec

SPEC = register_spec(
    TaskSpec(
        name=LibraryRecsTask.name,
        factory=LibraryRecsTask,
        examples=ProjectSet,
        metrics=(
            Metric(name="recall10", label="recall@10", bounded=True),
            Metric(name="recall1", label="recall@1", bounded=True),
            Metric(name="coverage", label="coverage", headline=False, bounded=True),
            Metric(name="loss", label="loss", higher_is_better=False, headline=False),
        ),
        synthetic=lambda seed, clients: SyntheticProjects(seed, clients),
        formats={"debian": DebianSource},
        context=lambda: LibraryQuery(("fastapi", "sqlalchemy")),
        record_label="projects",
        tags=TaskTags(gradient=True, prediction=PredictionKind.RANKED_STRINGS),
        compare=compare,
    )
)
