"""The decision the cache asks on a miss: does a cached prompt answer this question?

:func:`load_pair_decision` turns the served model's parameters (see
:func:`aicache.deploy.serving.served_model`) into a :class:`PairDecision`;
``judge`` scores a question against the nearest cached prompts. The embedder
is loaded on first use (the ``semantic`` extra), so holding a decision costs
nothing until a question is judged.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from aicache.tasks.base import Params, ensure_compatible
from aicache.tasks.semantic_hit.features import COSINE, PairEmbedder, pair_features
from aicache.tasks.semantic_hit.model import probabilities

TASK_NAME = "semantic-hit"
THRESHOLD = 0.66
"""The probability from which a cached answer is served, set by a rule, not by
hand: the lowest probability at which the shipped model reaches precision 0.95
on developers of its training population that took no part in training (see
``scripts/train_shipped_model.py``, which writes it in the model's record; a
test checks the two agree). A wrong hit costs more than a miss."""


# Below this cosine a cached prompt is not shortlisted: unrelated questions (MiniLM puts
# paraphrases well above 0.5) need no learned decision, and loading it costs time. The
# cache never serves such a pair, so neither does :meth:`PairDecision.judge_pairs`.
COSINE_FLOOR = 0.5


@dataclass(frozen=True, slots=True)
class Judgement:
    """The decision on one cached prompt.

    Attributes
    ----------
    score
        The model's probability that the cached answer is right, in [0, 1].
    serve
        Whether the cache would serve it (``score >= threshold``).
    """

    score: float
    serve: bool


class PairDecision:
    """Judges whether cached prompts answer a question, with one model.

    Parameters
    ----------
    params
        The semantic-hit model's arrays.
    threshold
        The probability from which an answer is served.
    embedder
        The embedder to use; ``None`` loads :mod:`aicache.features.embedding`'s
        on first use.
    """

    def __init__(
        self,
        params: Params,
        *,
        threshold: float = THRESHOLD,
        embedder: PairEmbedder | None = None,
    ) -> None:
        if not 0.0 <= threshold <= 1.0:
            raise ValueError(f"threshold {threshold} is not a probability in [0, 1]")
        self.params = [np.asarray(p, dtype=np.float64) for p in params]
        self.threshold = threshold
        self._embedder = embedder

    @property
    def embedder(self) -> PairEmbedder:
        """The embedder, loaded on first use.

        Raises
        ------
        aicache.errors.AicacheError
            When the ``semantic`` extra or its weights are missing.
        """
        if self._embedder is None:
            from aicache.features.embedding import load_embedder

            self._embedder = load_embedder()
        return self._embedder

    def scores(self, features: NDArray[np.floating]) -> NDArray[np.float64]:
        """The probability of each row of pair features (:mod:`.features`)."""
        return probabilities(self.params, features)

    def judge(
        self,
        query: str,
        candidates: Sequence[str],
        *,
        query_vector: NDArray[np.floating] | None = None,
        candidate_vectors: NDArray[np.floating] | None = None,
    ) -> list[Judgement]:
        """One judgement per candidate, in the candidates' order.

        Parameters
        ----------
        query
            The question asked now.
        candidates
            Cached prompts to compare it with.
        query_vector, candidate_vectors
            Their sentence vectors when already at hand (both or neither):
            ``(384,)`` and ``(len(candidates), 384)``.
        """
        if not candidates:
            return []
        features = pair_features(
            self.embedder,
            [query] * len(candidates),
            list(candidates),
            query_vectors=query_vector,
            cached_vectors=candidate_vectors,
        )
        return [Judgement(float(p), bool(p >= self.threshold)) for p in self.scores(features)]

    def judge_pairs(self, pairs: Sequence[tuple[str, str]]) -> list[Judgement]:
        """One judgement per ``(question, cached prompt)`` pair, in order."""
        if not pairs:
            return []
        features = pair_features(self.embedder, [a for a, _ in pairs], [b for _, b in pairs])
        near = features[:, COSINE] >= COSINE_FLOOR  # what the cache would shortlist at all
        return [
            Judgement(float(p), bool(p >= self.threshold and shortlisted))
            for p, shortlisted in zip(self.scores(features), near, strict=True)
        ]


def load_pair_decision(params: Sequence[NDArray[np.floating]]) -> PairDecision:
    """The decision of a semantic-hit model's arrays (the served model's, usually).

    Raises
    ------
    aicache.errors.AicacheError
        If the arrays are not a semantic-hit model of this version.
    """
    arrays = [np.asarray(p, dtype=np.float64) for p in params]
    ensure_compatible(TASK_NAME, arrays)
    return PairDecision(arrays)
