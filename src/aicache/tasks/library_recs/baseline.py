"""Count baselines of library recommendation, and the report's comparison with them.

- popularity: the packages most used by other projects, the project's own left out;
- co-occurrence: each candidate scored by how often it appears with each of the
  project's visible dependencies (``Σ_i count(i, j) / count(i)``), popularity
  breaking ties.

In a simulation's report both count the pooled test projects of every client
except the project being judged (leave-one-project-out): the model trained on
the train splits, which the comparison does not see.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from aicache.tasks.base import Params
from aicache.tasks.library_recs.model import hit_ranks, scores
from aicache.tasks.library_recs.projects import ProjectSet, hidden_one
from aicache.tasks.library_recs.vocabulary import vocabulary
from aicache.tasks.spec import Comparison, Curve

KS = tuple(range(1, 21))


class CoUseCounts:
    """How often each package, and each pair of packages, appears in a set of projects."""

    def __init__(self, projects: ProjectSet, size: int | None = None) -> None:
        size = len(vocabulary()) if size is None else size
        self.single = np.zeros(size)
        self.pairs = np.zeros((size, size))
        for p in range(len(projects)):
            self.add(projects.project(p), 1.0)

    def add(self, ids: NDArray[np.int64], sign: float) -> None:
        """Count (``sign`` 1) or uncount (-1) one project."""
        self.single[ids] += sign
        self.pairs[np.ix_(ids, ids)] += sign
        self.pairs[ids, ids] -= sign

    def popularity(self, context: NDArray[np.int64]) -> NDArray[np.float64]:
        """Every package's count, the context's own at ``-inf``."""
        out = self.single.copy()
        out[context] = -np.inf
        return out

    def co_occurrence(self, context: NDArray[np.int64]) -> NDArray[np.float64]:
        """Co-use with the context's packages, popularity as a small tie-breaker."""
        out = self.single * 1e-6
        if context.size:
            out = out + (self.pairs[context] / np.maximum(self.single[context], 1.0)[:, None]).sum(
                0
            )
        out[context] = -np.inf
        return out


def baseline_ranks(
    counts: CoUseCounts, projects: ProjectSet, leave_out: bool
) -> dict[str, NDArray[np.int64]]:
    """Each leave-one-out point's rank under both baselines (``leave_out``: uncount it)."""
    ranks: dict[str, list[int]] = {"popularity": [], "co-occurrence": []}
    for p in range(len(projects)):
        single = projects.take([p])
        points = hidden_one(single)
        if not len(points):
            continue
        if leave_out:
            counts.add(single.ids, -1.0)
        for context, target in zip(points.contexts, points.targets, strict=True):
            for name, rule in (
                ("popularity", counts.popularity),
                ("co-occurrence", counts.co_occurrence),
            ):
                ranks[name].append(int(hit_ranks(rule(context)[None, :], target[None])[0]))
        if leave_out:
            counts.add(single.ids, 1.0)
    return {k: np.asarray(v, dtype=np.int64) for k, v in ranks.items()}


def model_ranks(params: Params, projects: ProjectSet) -> NDArray[np.int64]:
    """Each leave-one-out point's rank under the model."""
    points = hidden_one(projects)
    if not len(points):
        return np.zeros(0, dtype=np.int64)
    return np.concatenate(
        [
            hit_ranks(scores(params, points.contexts[s : s + 512]), points.targets[s : s + 512])
            for s in range(0, len(points), 512)
        ]
    )


def _recall(ranks: NDArray[np.int64], k: int) -> float:
    return float(np.mean(ranks < k)) if ranks.size else 0.0


def _curve(label: str, ranks: NDArray[np.int64]) -> Curve:
    """Recall@k against precision@k for k = 1..20 (one hidden package: precision = hits / k)."""
    recall = [_recall(ranks, k) for k in KS]
    return Curve(
        label=label,
        xs=tuple(recall),
        ys=tuple(r / k for r, k in zip(recall, KS, strict=True)),
        point=(recall[9], recall[9] / 10),
    )


def compare(params: Params, tests: Sequence[ProjectSet]) -> Comparison:
    """The model against both count baselines on every client's test projects, pooled."""
    pooled = ProjectSet.concatenate(list(tests))
    learned = model_ranks(params, pooled)
    counted = baseline_ranks(CoUseCounts(pooled), pooled, leave_out=True)
    best = counted["co-occurrence"]
    return Comparison(
        title="library recommendations: leave-one-out, k = 1..20",
        x_label="recall@k (share of hidden dependencies recommended)",
        y_label="precision@k (hits / k)",
        curves=(
            _curve("learned co-use model", learned),
            _curve("co-occurrence counts (baseline)", best),
            _curve("popularity (baseline)", counted["popularity"]),
        ),
        baseline_label="co-occurrence counts of the other test projects "
        f"(popularity: recall@10 {_recall(counted['popularity'], 10):.3f})",
        baseline={
            "recall10": _recall(best, 10),
            "recall1": _recall(best, 1),
        },
    )
