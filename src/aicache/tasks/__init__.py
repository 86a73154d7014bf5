"""Learned capabilities: one package per task, each registering one :class:`TaskSpec`.

Use :func:`get_spec` for what the engine knows of a task and :func:`get_task`
for the task itself; :mod:`aicache.tasks.checks` is the battery every task passes.
"""

from aicache.tasks.base import FitConfig, FitResult, Params, Task, get_task, task_names
from aicache.tasks.spec import (
    Aggregation,
    Comparison,
    Curve,
    Examples,
    Metric,
    PredictionKind,
    TaskSpec,
    TaskTags,
    get_spec,
    register_spec,
    spec_names,
)

__all__ = [
    "Aggregation",
    "Comparison",
    "Curve",
    "Examples",
    "FitConfig",
    "FitResult",
    "Metric",
    "Params",
    "PredictionKind",
    "Task",
    "TaskSpec",
    "TaskTags",
    "get_spec",
    "get_task",
    "register_spec",
    "spec_names",
    "task_names",
]
