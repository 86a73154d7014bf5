"""The semantic model ``aicache run`` hands to the cache, loaded only when a miss needs it.

Nothing here is imported on an exact hit beyond this module itself, which
imports no library: the embedder, numpy and the served decision load inside
:func:`semantic_provider` and the decision loader it passes on.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from aicache.local.semantic_store import SemanticLookup
    from aicache.tasks.semantic_hit.serving import PairJudge


def semantic_provider() -> SemanticLookup:
    """The cache's semantic lookup: the sentence embedder and the served decision, through
    the warm semantic service unless ``AICACHE_SEMANTIC_SERVICE=off``.

    Raises
    ------
    AicacheError
        When the embedder (the ``semantic`` extra or its weights) is missing.
    ServiceError
        When the warm service does not get ready in time.
    """
    from aicache.local.semantic_client import service_lookup

    warm = service_lookup()
    if warm is not None:  # the warm service: this process loads no model
        return warm
    from aicache.features.embedding import load_embedder
    from aicache.tasks.semantic_hit.serving import SemanticServing

    return SemanticServing(load_embedder(), served_decision)


def served_decision() -> PairJudge:
    """The semantic-hit decision this machine serves: pinned, else newest, else shipped."""
    from aicache.deploy.serving import served_model
    from aicache.local.paths import aicache_home, ensure_private_dir
    from aicache.tasks.semantic_hit.decision import TASK_NAME, load_pair_decision

    return load_pair_decision(served_model(TASK_NAME, ensure_private_dir(aicache_home())).params)


__all__ = ["semantic_provider", "served_decision"]
