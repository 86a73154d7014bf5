"""The developer's own error keys, read from the local store (this task's store reader)."""

from __future__ import annotations

from pathlib import Path

from aicache.features.error_events import RecentError, recent_errors_of_home

__all__ = ["RecentError", "my_errors"]


def my_errors(home: Path, limit: int) -> list[RecentError]:
    """The ``limit`` error keys of the newest failing calls in ``home``'s store, newest first."""
    return recent_errors_of_home(home, limit)
