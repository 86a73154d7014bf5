"""Recommendations for one project from the global model, each with its reason.

A reason is read from the global model's weights only (which of the project's
own dependencies point to the package, and the probability the model gives
it), never from another developer's data: the model is all that was shared.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from aicache.tasks.base import Params
from aicache.tasks.library_recs.model import scores
from aicache.tasks.library_recs.vocabulary import ids_of, normalise, vocabulary


@dataclass(frozen=True, slots=True)
class Recommendation:
    """One recommended package.

    Attributes
    ----------
    name
        The package (PyPI name, normal form).
    probability
        The global model's probability that it is the project's next dependency.
    related
        The project's dependencies that point to it most, strongest first.
    """

    name: str
    probability: float
    related: tuple[str, ...]

    @property
    def reason(self) -> str:
        """One line saying why, from the global model."""
        share = f"{self.probability:.0%}" if self.probability >= 0.01 else "under 1 %"
        if self.related:
            return f"goes with {' and '.join(self.related)} (global model: {share} likely next)"
        return "among the most downloaded packages on PyPI (public download ranking)"


@dataclass(frozen=True, slots=True)
class Recommendations:
    """What the model recommends for a project, and which of its dependencies it knew."""

    known: tuple[str, ...]
    unknown: tuple[str, ...]
    items: tuple[Recommendation, ...]


def recommend(params: Params, dependencies: Sequence[str], n: int = 10) -> Recommendations:
    """The ``n`` packages the project with ``dependencies`` most likely lacks, best first.

    Names outside the public vocabulary are ignored (and listed as unknown).
    """
    names = vocabulary()
    ids, _ = ids_of(list(dependencies))
    known_set = {names[i] for i in ids}
    unknown = tuple(
        dict.fromkeys(normalise(d) for d in dependencies if normalise(d) not in known_set)
    )
    context = np.asarray(ids, dtype=np.int64)
    score = scores(params, [context])[0]
    finite = np.isfinite(score)
    probability = np.zeros_like(score)
    if finite.any():
        shifted = np.exp(score[finite] - score[finite].max())
        probability[finite] = shifted / shifted.sum()
    if context.size:
        order = [int(i) for i in np.argsort(-score, kind="stable")[:n] if finite[int(i)]]
    else:
        # Nothing known to go on: the public download ranking itself (the vocabulary's
        # order), which is what "the most used packages" means, not the model's biases.
        order = list(range(min(n, len(names))))
    embeddings = params[0]
    items = []
    for j in order:
        pull = embeddings[context] @ embeddings[j] if context.size else np.zeros(0)
        strongest = [int(context[k]) for k in np.argsort(-pull, kind="stable")[:2] if pull[k] > 0]
        items.append(
            Recommendation(names[j], float(probability[j]), tuple(names[i] for i in strongest))
        )
    return Recommendations(tuple(names[i] for i in ids), unknown, tuple(items))
