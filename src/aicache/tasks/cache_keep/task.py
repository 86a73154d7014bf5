"""The cache-keep task: a score of "this entry will be asked again soon".

A logistic regression over the scale-free features of
:mod:`.keep_features`; a cache past its budget evicts the entries of the
lowest score. Its examples come from replaying a client's own request stream
(:mod:`.replay`): the entries a cache holds at sampled moments, each
labelled 1 when its key is asked again within as many requests as the cache
holds entries. The model is a dozen floats, the same for every user.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self

import numpy as np
from numpy.typing import NDArray

from aicache.features.cache_requests import Request
from aicache.tasks.base import FitConfig, FitResult, Params, Task, check_params
from aicache.tasks.cache_keep.keep_features import NUM_FEATURES, EntryState, entry_features
from aicache.tasks.cache_keep.replay import encode, labelled_entries

_BETA1, _BETA2, _EPS = 0.9, 0.999, 1e-8


@dataclass(frozen=True, slots=True)
class KeepExamples:
    """Labelled cache entries in time order: features ``(n, F)`` and labels ``(n,)`` in {0, 1}."""

    features: NDArray[np.float64]
    labels: NDArray[np.float64]

    def __len__(self) -> int:
        return int(self.labels.size)

    def slice(self, start: int, stop: int | None) -> KeepExamples:
        """Entries ``start`` to ``stop`` (exclusive; ``None``: to the end)."""
        return KeepExamples(self.features[start:stop], self.labels[start:stop])

    @classmethod
    def concatenate(cls, parts: Sequence[KeepExamples]) -> KeepExamples:
        """The entries of ``parts`` in order."""
        if not parts:
            return cls(np.zeros((0, NUM_FEATURES)), np.zeros(0))
        return cls(
            np.concatenate([p.features for p in parts]).astype(np.float64),
            np.concatenate([p.labels for p in parts]).astype(np.float64),
        )

    def save(self, path: Path) -> None:
        """Write the examples to ``path`` (``.npz``, no pickles)."""
        with path.open("wb") as handle:
            np.savez(handle, features=self.features, labels=self.labels)

    @classmethod
    def load(cls, path: Path) -> Self:
        """Read examples written by :meth:`save`."""
        with np.load(path, allow_pickle=False) as saved:
            return cls(saved["features"].astype(np.float64), saved["labels"].astype(np.float64))


@dataclass(frozen=True, slots=True)
class KeepContext:
    """Cached entries to score: one name per entry and what the cache knows of them."""

    names: tuple[str, ...]
    state: EntryState = field(repr=False)


def logits(params: Params, features: NDArray[np.float64]) -> NDArray[np.float64]:
    """The keep-score of each row of ``features`` (log-odds of being asked again soon)."""
    return np.asarray(features @ params[0] + params[1][0])


def _loss_and_grad(
    params: Params, examples: KeepExamples
) -> tuple[float, NDArray[np.float64], float]:
    z = logits(params, examples.features)
    y = examples.labels
    loss = float(np.mean(np.logaddexp(0.0, z) - y * z))
    error = 1.0 / (1.0 + np.exp(-z)) - y
    return loss, examples.features.T @ error / len(y), float(np.mean(error))


def auc(scores: NDArray[np.float64], labels: NDArray[np.float64]) -> float:
    """The area under the ROC curve (0.5 when one class is absent); ties count half."""
    positives = int(np.count_nonzero(labels > 0.5))
    negatives = labels.size - positives
    if positives == 0 or negatives == 0:
        return 0.5
    order = np.argsort(scores, kind="stable")
    ranks = np.empty(scores.size)
    ranks[order] = np.arange(1, scores.size + 1, dtype=np.float64)
    _, inverse, counts = np.unique(scores, return_inverse=True, return_counts=True)
    ranks = (np.bincount(inverse, weights=ranks) / counts)[inverse]
    positive_ranks = float(ranks[labels > 0.5].sum())
    return (positive_ranks - positives * (positives + 1) / 2) / (positives * negatives)


class CacheKeepTask(Task[Sequence[Request], KeepExamples, KeepContext, tuple[str, float]]):
    """Which cached entries to keep (task ``cache-keep``)."""

    name = "cache-keep"

    def init_params(self, seed: int) -> Params:
        """A fresh model ``[w (F,), b (1,)]``: small random weights, no bias."""
        rng = np.random.default_rng(seed)
        return [rng.normal(0.0, 0.01, NUM_FEATURES), np.zeros(1)]

    def load_local(self, source: Sequence[Request]) -> KeepExamples:
        """Labelled entries from replaying the client's request stream (see :mod:`.replay`)."""
        labelled = labelled_entries(encode(source))
        return KeepExamples(labelled.features, labelled.labels)

    def num_examples(self, examples: KeepExamples) -> int:
        """Every labelled entry is trained on."""
        return len(examples)

    def fit(self, params: Params, examples: KeepExamples, config: FitConfig) -> FitResult:
        """Train with Adam on the mean log-loss (plus weight decay and FedProx's term)."""
        check_params(params, self.init_params(0))
        start = [np.array(p, dtype=np.float64) for p in params]
        if not len(examples):
            return FitResult(
                params=start, num_examples=0, metrics={"loss_before": 0.0, "loss": 0.0}
            )
        before = _loss_and_grad(start, examples)[0]
        w, b = start[0].copy(), start[1].copy()
        moments = [np.zeros_like(w), np.zeros_like(b), np.zeros_like(w), np.zeros_like(b)]
        rng = np.random.default_rng(config.seed)
        step = 0
        for _ in range(config.local_epochs):
            order = rng.permutation(len(examples))
            for first in range(0, len(order), config.batch_size):
                rows = order[first : first + config.batch_size]
                batch = KeepExamples(examples.features[rows], examples.labels[rows])
                _, grad_w, grad_b = _loss_and_grad([w, b], batch)
                grads = [
                    grad_w + config.weight_decay * w + config.proximal_mu * (w - start[0]),
                    np.array([grad_b]) + config.proximal_mu * (b - start[1]),
                ]
                step += 1
                for index, (value, grad) in enumerate(zip((w, b), grads, strict=True)):
                    m, v = moments[index], moments[index + 2]
                    m[:] = _BETA1 * m + (1 - _BETA1) * grad
                    v[:] = _BETA2 * v + (1 - _BETA2) * grad * grad
                    corrected = (m / (1 - _BETA1**step)) / (np.sqrt(v / (1 - _BETA2**step)) + _EPS)
                    value -= config.learning_rate * corrected
        loss = _loss_and_grad([w, b], examples)[0]
        metrics = {"loss_before": before, "loss": loss if np.isfinite(loss) else before}
        return FitResult(params=[w, b], num_examples=len(examples), metrics=metrics)

    def evaluate(self, params: Params, examples: KeepExamples) -> dict[str, float]:
        """How well the score tells entries asked again soon from the others.

        Returns
        -------
        dict
            ``auc`` (ranking quality, what eviction uses), ``accuracy`` at
            score 0, ``loss`` (mean log-loss), ``reused`` (share of entries
            asked again soon) and ``num_examples``.
        """
        check_params(params, self.init_params(0))
        if not len(examples):
            return {"auc": 0.5, "accuracy": 0.0, "loss": 0.0, "reused": 0.0, "num_examples": 0.0}
        z = logits(params, examples.features)
        loss = _loss_and_grad(params, examples)[0]
        return {
            "auc": auc(z, examples.labels),
            "accuracy": float(np.mean((z > 0) == (examples.labels > 0.5))),
            "loss": loss,
            "reused": float(np.mean(examples.labels)),
            "num_examples": float(len(examples)),
        }

    def predict(self, params: Params, context: KeepContext) -> list[tuple[str, float]]:
        """The entries of ``context`` with their keep-scores, the one to keep most first."""
        check_params(params, self.init_params(0))
        z = logits(params, entry_features(context.state))
        order = np.argsort(-z, kind="stable")
        return [(context.names[int(i)], float(z[int(i)])) for i in order]
