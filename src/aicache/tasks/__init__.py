"""Learned capabilities: one module per task, all following :class:`~aicache.tasks.base.Task`.

Use :func:`~aicache.tasks.base.get_task` to get a task by name.
"""

from aicache.tasks.base import FitConfig, FitResult, Params, Task, get_task, task_names

__all__ = ["FitConfig", "FitResult", "Params", "Task", "get_task", "task_names"]
