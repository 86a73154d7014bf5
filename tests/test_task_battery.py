"""The shared battery (:mod:`aicache.tasks.checks`) on every registered task.

A task brings its own data (its spec's synthetic population) and declares
what its predictions are; the battery's checks are chosen by its tags.
"""

from __future__ import annotations

import pytest

from aicache.tasks.base import get_task, task_names
from aicache.tasks.checks import Check, parametrize_with_checks
from aicache.tasks.spec import TaskSpec, all_specs, spec_names


def test_every_task_has_a_spec() -> None:
    # Prepare / Execute
    names = set(task_names())
    # Assert
    assert names, "no task is registered"
    assert names == set(spec_names())


def test_unknown_task_is_a_key_error() -> None:
    # Prepare / Execute / Assert
    with pytest.raises(KeyError, match="unknown task"):
        get_task("no-such-task")


@parametrize_with_checks(all_specs())
def test_task_passes_the_battery(spec: TaskSpec, check: Check) -> None:
    # Prepare / Execute / Assert: the check raises CheckFailed naming what is wrong
    check(spec)
