"""The bug-detector task's spec: what the rest of aicache knows about it."""

from __future__ import annotations

from aicache.tasks.bug_detector.model import SiteSet
from aicache.tasks.bug_detector.sources import InstalledPackages, ProjectFolders
from aicache.tasks.bug_detector.task import BugDetectorTask, ScanContext
from aicache.tasks.spec import Metric, PredictionKind, TaskSpec, TaskTags, register_spec

EXAMPLE = """def last_index(items, wanted):
    for i in range(len(items) - 1, -1, -1):
        if items[i] == wanted:
            return i
    return -1
"""

SPEC = register_spec(
    TaskSpec(
        name=BugDetectorTask.name,
        factory=BugDetectorTask,
        examples=SiteSet,
        metrics=(
            Metric(name="detection_auc", label="detection AUC", bounded=True),
            Metric(name="recall", label="planted bugs found", bounded=True),
            Metric(name="false_alarms", label="false alarms", higher_is_better=False, bounded=True),
            Metric(name="accuracy", label="cloze accuracy", headline=False, bounded=True),
            Metric(name="loss", label="loss", higher_is_better=False, headline=False),
        ),
        synthetic=lambda seed, clients: InstalledPackages(seed, clients),
        formats={"projects": ProjectFolders},
        context=lambda: ScanContext(EXAMPLE, "example.py"),
        record_label="sites",
        tags=TaskTags(gradient=True, prediction=PredictionKind.SCORED_STRINGS),
    )
)
