"""The cache-keep task: which cached entries a cache past its budget should keep.

Importing the package registers its spec (:mod:`.spec`).
"""

from aicache.tasks.cache_keep.keep_features import (
    FEATURE_NAMES,
    NUM_FEATURES,
    EntryState,
    entry_features,
)
from aicache.tasks.cache_keep.spec import SPEC
from aicache.tasks.cache_keep.task import CacheKeepTask, KeepContext, KeepExamples, logits

__all__ = [
    "FEATURE_NAMES",
    "NUM_FEATURES",
    "SPEC",
    "CacheKeepTask",
    "EntryState",
    "KeepContext",
    "KeepExamples",
    "entry_features",
    "logits",
]
