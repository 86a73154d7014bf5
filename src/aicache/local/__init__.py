"""The private side: store, cache, command runner, importers and privacy controls.

Nothing in this package is ever serialised to the network.

The public names below load their modules on first use: ``aicache run``
imports this package on every cache hit and must stay cheap to start.
"""

from __future__ import annotations

import typing as _typing

from aicache._lazy import lazy_exports as _lazy_exports

if _typing.TYPE_CHECKING:
    from aicache.local.cache import CachedAnswer, CacheKey, lookup, record
    from aicache.local.semantic_store import (
        FeedbackRow,
        SemanticCandidate,
        SemanticLookup,
        read_feedback,
    )
    from aicache.local.settings import Settings
    from aicache.local.store import Store

# Where each public name lives; imported on first use (see the docstring).
_HOMES = {
    "Store": "aicache.local.store",
    "Settings": "aicache.local.settings",
    "CacheKey": "aicache.local.cache",
    "CachedAnswer": "aicache.local.cache",
    "lookup": "aicache.local.cache",
    "record": "aicache.local.cache",
    "FeedbackRow": "aicache.local.semantic_store",
    "SemanticCandidate": "aicache.local.semantic_store",
    "SemanticLookup": "aicache.local.semantic_store",
    "read_feedback": "aicache.local.semantic_store",
}

__all__ = [
    "CacheKey",
    "CachedAnswer",
    "FeedbackRow",
    "SemanticCandidate",
    "SemanticLookup",
    "Settings",
    "Store",
    "lookup",
    "read_feedback",
    "record",
]

__getattr__ = _lazy_exports(__name__, _HOMES)
