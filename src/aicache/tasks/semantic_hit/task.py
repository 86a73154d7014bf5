"""The semantic-hit task: is a cached answer right for a reworded question?

The model is a classifier (:mod:`.model`) over features of the pair
(:mod:`.features`), by default a logistic regression: hidden units added at
most 0.03 of F0.5 on populations it was not trained on (docs/BENCHMARKS.md),
and under differential privacy every extra weight takes its share of the
noise (its norm grows with the square root of the number of weights). A
client's examples are those feature rows and their labels, never the texts.
Its headline metrics are the precision, recall and F0.5 of the decision at
:data:`.decision.THRESHOLD` (F0.5: a wrong hit costs more than a miss).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from aicache.tasks.base import FitConfig, FitResult, Params, Task, check_params
from aicache.tasks.semantic_hit.decision import TASK_NAME, THRESHOLD, PairDecision
from aicache.tasks.semantic_hit.features import NUM_FEATURES, PairEmbedder, pair_features
from aicache.tasks.semantic_hit.model import init_classifier, loss_and_grad, probabilities, train
from aicache.tasks.semantic_hit.pairs import LabelledPair, PairSet

DEFAULT_HIDDEN = 0  # logistic regression: see the module docstring
BETA = 0.5  # F-beta's beta: precision weighs twice as much as recall


@dataclass(frozen=True, slots=True)
class PairQuery:
    """A question and the cached prompts the cache found nearest to it."""

    query: str
    candidates: tuple[str, ...]


def decision_metrics(
    scores: NDArray[np.floating], labels: NDArray[np.floating], threshold: float
) -> dict[str, float]:
    """Precision, recall and F0.5 of serving the pairs scored ``>= threshold``.

    A decision that serves nothing has precision 0 (scikit-learn's convention):
    a model that never serves is not a precise one.
    """
    served = np.asarray(scores) >= threshold
    right = np.asarray(labels) > 0.5
    true_positive = float(np.count_nonzero(served & right))
    precision = true_positive / np.count_nonzero(served) if served.any() else 0.0
    recall = true_positive / np.count_nonzero(right) if right.any() else 0.0
    b2 = BETA * BETA
    denominator = b2 * precision + recall
    f = (1 + b2) * precision * recall / denominator if denominator > 0 else 0.0
    return {"precision": precision, "recall": recall, "f05": f}


class SemanticHitTask(Task[Sequence[LabelledPair], PairSet, PairQuery, bool]):
    """The semantic-hit decision as a pair classifier (task ``semantic-hit``).

    Parameters
    ----------
    hidden
        Hidden units of the classifier (0 for logistic regression).
    embedder
        The embedder examples are computed with; ``None`` loads the package's
        on first use (the ``semantic`` extra).
    """

    name = TASK_NAME

    def __init__(self, hidden: int = DEFAULT_HIDDEN, embedder: PairEmbedder | None = None) -> None:
        self.hidden = hidden
        self._embedder = embedder

    def _embedding(self) -> PairEmbedder:
        if self._embedder is None:
            from aicache.features.embedding import load_embedder

            self._embedder = load_embedder()
        return self._embedder

    def init_params(self, seed: int) -> Params:
        """A fresh classifier: ``[w (F,), b (1,), W (F, H), c (H,), v (H,)]``."""
        return init_classifier(NUM_FEATURES, self.hidden, seed)

    def load_local(self, source: Sequence[LabelledPair]) -> PairSet:
        """The features and labels of ``source``'s pairs, in order."""
        pairs = list(source)
        features = pair_features(
            self._embedding(), [p.query for p in pairs], [p.cached for p in pairs]
        )
        labels = np.asarray([1.0 if p.same else 0.0 for p in pairs], dtype=np.float64)
        return PairSet(features, labels)

    def num_examples(self, examples: PairSet) -> int:
        """Every pair is trained on."""
        return len(examples)

    def fit(self, params: Params, examples: PairSet, config: FitConfig) -> FitResult:
        """Train with Adam on binary cross-entropy.

        Returns
        -------
        FitResult
            New parameters, the number of pairs, and the mean training loss
            before and in the last epoch (both 0 when there was nothing to train on).
        """
        check_params(params, self.init_params(0))
        if not len(examples):
            params = [np.array(p, dtype=np.float64) for p in params]
            return FitResult(
                params=params, num_examples=0, metrics={"loss_before": 0.0, "loss": 0.0}
            )
        before = loss_and_grad(params, examples, need_grad=False)[0]
        new_params, loss = train(params, examples, config)
        metrics = {"loss_before": before, "loss": loss if np.isfinite(loss) else before}
        return FitResult(params=new_params, num_examples=len(examples), metrics=metrics)

    def evaluate(self, params: Params, examples: PairSet) -> dict[str, float]:
        """The decision's precision, recall and F0.5, accuracy and loss.

        Returns
        -------
        dict
            ``precision``, ``recall``, ``f05``, ``accuracy``, ``loss`` and
            ``num_examples``.
        """
        check_params(params, self.init_params(0))
        if not len(examples):
            zeros = ("precision", "recall", "f05", "accuracy", "loss", "num_examples")
            return dict.fromkeys(zeros, 0.0)
        scores = probabilities(params, examples.features)
        metrics = decision_metrics(scores, examples.labels, THRESHOLD)
        metrics["accuracy"] = float(np.mean((scores >= THRESHOLD) == (examples.labels > 0.5)))
        metrics["loss"] = loss_and_grad(params, examples, need_grad=False)[0]
        metrics["num_examples"] = float(len(examples))
        return metrics

    def predict(self, params: Params, context: PairQuery) -> list[bool]:
        """Whether each candidate's cached answer would be served, in the candidates' order."""
        check_params(params, self.init_params(0))
        decision = PairDecision(params, embedder=self._embedding())
        return [j.serve for j in decision.judge(context.query, context.candidates)]
