"""The next-command task: rank candidate programs from the user's own history.

Importing the package registers its spec (:mod:`.spec`).
"""

from aicache.tasks.next_command.spec import SPEC, history_from_store
from aicache.tasks.next_command.task import (
    DEFAULT_HIDDEN,
    PERSONAL_PRIOR,
    TOP_K,
    NextCommandContext,
    NextCommandSource,
    NextCommandTask,
)

__all__ = [
    "DEFAULT_HIDDEN",
    "PERSONAL_PRIOR",
    "SPEC",
    "TOP_K",
    "NextCommandContext",
    "NextCommandSource",
    "NextCommandTask",
    "history_from_store",
]
