"""The library-recs task: recommend the libraries that projects like this one use.

The model (:mod:`.model`) learns the co-use of the public vocabulary's packages
from each client's projects; a client's examples are its projects as
vocabulary ids, never a name outside the vocabulary. Its headline metric is
leave-one-out recall@10: hide one dependency of a project, recommend ten, a
hit when the hidden one is among them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from aicache.tasks.base import FitConfig, FitResult, Params, Task, check_params
from aicache.tasks.library_recs.model import (
    DIMENSIONS,
    hit_ranks,
    init_embeddings,
    loss_and_grad,
    scores,
    train,
)
from aicache.tasks.library_recs.projects import ProjectSet, hidden_one
from aicache.tasks.library_recs.vocabulary import ids_of, vocabulary

TASK_NAME = "library-recs"
TOP_K = (1, 10)
EVAL_BATCH = 512  # leave-one-out points scored at once (each row spans the vocabulary)


@dataclass(frozen=True, slots=True)
class LibraryQuery:
    """A project's dependencies (any names; those outside the vocabulary are ignored)."""

    dependencies: tuple[str, ...] = field(default_factory=tuple)
    k: int = 10


def recall_at(params: Params, examples: ProjectSet, ks: Sequence[int]) -> dict[int, float]:
    """Leave-one-out recall@k for each ``k`` over every point of ``examples`` (0 when none)."""
    points = hidden_one(examples)
    if not len(points):
        return dict.fromkeys(ks, 0.0)
    ranks = np.concatenate(
        [
            hit_ranks(
                scores(params, points.contexts[s : s + EVAL_BATCH]),
                points.targets[s : s + EVAL_BATCH],
            )
            for s in range(0, len(points), EVAL_BATCH)
        ]
    )
    return {k: float(np.mean(ranks < k)) for k in ks}


class LibraryRecsTask(Task[Sequence[Sequence[str]], ProjectSet, LibraryQuery, str]):
    """Library recommendation as item embeddings over the public vocabulary (``library-recs``).

    Parameters
    ----------
    dimensions
        Size of each package's embedding.
    """

    name = TASK_NAME

    def __init__(self, dimensions: int = DIMENSIONS) -> None:
        self.dimensions = dimensions

    def init_params(self, seed: int) -> Params:
        """Fresh parameters: ``[E (V, D), b (V,)]``."""
        return init_embeddings(len(vocabulary()), self.dimensions, seed)

    def load_local(self, source: Sequence[Sequence[str]]) -> ProjectSet:
        """Each project's dependencies as vocabulary ids, in order (other names counted only)."""
        return ProjectSet.from_lists([ids_of(list(project)) for project in source])

    def num_examples(self, examples: ProjectSet) -> int:
        """Leave-one-out points: each known dependency of a project with two or more."""
        return len(hidden_one(examples))

    def fit(self, params: Params, examples: ProjectSet, config: FitConfig) -> FitResult:
        """Train with Adam on the leave-one-out sampled softmax (see :mod:`.model`).

        Returns
        -------
        FitResult
            New parameters, the number of points, and the mean training loss
            before and in the last epoch (both 0 when there was nothing to train on).
        """
        check_params(params, self.init_params(0))
        points = hidden_one(examples)
        if not len(points):
            params = [np.array(p, dtype=np.float64) for p in params]
            return FitResult(
                params=params, num_examples=0, metrics={"loss_before": 0.0, "loss": 0.0}
            )
        before = loss_and_grad(params, points, need_grad=False)[0]
        new_params, _ = train(params, points, config)
        # The full softmax before and after, not the sampled one training saw: comparable.
        after = loss_and_grad(new_params, points, need_grad=False)[0]
        metrics = {"loss_before": before, "loss": after if np.isfinite(after) else before}
        return FitResult(params=new_params, num_examples=len(points), metrics=metrics)

    def evaluate(self, params: Params, examples: ProjectSet) -> dict[str, float]:
        """Leave-one-out recall@1 and recall@10, the vocabulary's coverage, and the loss.

        Returns
        -------
        dict
            ``recall10``, ``recall1``, ``coverage`` (share of the projects'
            dependencies inside the vocabulary), ``loss`` and ``num_examples``.
        """
        check_params(params, self.init_params(0))
        recall = recall_at(params, examples, TOP_K)
        points = hidden_one(examples)
        known = int(examples.ids.size)
        total = known + int(examples.unknown.sum())
        return {
            "recall10": recall[10],
            "recall1": recall[1],
            "coverage": known / total if total else 0.0,
            "loss": loss_and_grad(params, points, need_grad=False)[0] if len(points) else 0.0,
            "num_examples": float(len(points)),
        }

    def predict(self, params: Params, context: LibraryQuery) -> list[str]:
        """The ``k`` vocabulary packages the project most likely lacks, best first."""
        check_params(params, self.init_params(0))
        ids, _ = ids_of(list(context.dependencies))
        score = scores(params, [np.asarray(ids, dtype=np.int64)])[0]
        order = np.argsort(-score, kind="stable")[: context.k]
        names = vocabulary()
        return [names[int(i)] for i in order if np.isfinite(score[int(i)])]
