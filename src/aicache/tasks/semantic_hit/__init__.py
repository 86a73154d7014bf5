"""The semantic-hit task: does a cached answer serve a reworded question?

Importing the package registers its spec (:mod:`.spec`). The cache asks the
decision through :mod:`.decision`.
"""

from aicache.tasks.semantic_hit.decision import (
    THRESHOLD,
    Judgement,
    PairDecision,
    load_pair_decision,
)
from aicache.tasks.semantic_hit.pairs import LabelledPair, PairSet
from aicache.tasks.semantic_hit.spec import SPEC
from aicache.tasks.semantic_hit.task import PairQuery, SemanticHitTask

__all__ = [
    "SPEC",
    "THRESHOLD",
    "Judgement",
    "LabelledPair",
    "PairDecision",
    "PairQuery",
    "PairSet",
    "SemanticHitTask",
    "load_pair_decision",
]
