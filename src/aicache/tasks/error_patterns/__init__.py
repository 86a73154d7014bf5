"""The error-patterns task: which error signatures are common across developers.

Importing the package registers its spec (:mod:`.spec`). The release with its
threshold and privacy is :mod:`.release`; the population of simulated
developers samples recorded real tool output (:mod:`.catalogue`).
"""

from aicache.tasks.error_patterns.catalogue import RecordedError, catalogue, recorded_errors
from aicache.tasks.error_patterns.release import CommonError, Release, release_of
from aicache.tasks.error_patterns.spec import SPEC
from aicache.tasks.error_patterns.task import (
    CONTRIBUTION_NORM,
    MAX_KEYS,
    MIN_DEVELOPERS,
    ErrorContext,
    ErrorExamples,
    ErrorPatternsTask,
    contribution,
)

__all__ = [
    "CONTRIBUTION_NORM",
    "MAX_KEYS",
    "MIN_DEVELOPERS",
    "SPEC",
    "CommonError",
    "ErrorContext",
    "ErrorExamples",
    "ErrorPatternsTask",
    "RecordedError",
    "Release",
    "catalogue",
    "contribution",
    "recorded_errors",
    "release_of",
]
