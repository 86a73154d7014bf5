"""The error-patterns task: how many developers hit each error signature.

The model is a histogram over the public hashed domain of
:mod:`.catalogue`: ``counts[b]`` developers hit a key of bucket ``b``,
``trend[b]`` is how many more of them hit it more often lately than before,
``reports[0]`` how many developers reported. A client's update is its own
contribution, bounded before it leaves (contribution bounding, as in
Wilson et al. 2020, "Differentially private SQL with bounded user
contribution"): each of at most :data:`MAX_KEYS` of its keys (its most
frequent) counts once, with a trend vote in {-1, 0, 1}, so the update's L2
norm is at most :data:`CONTRIBUTION_NORM` in counts. The arrays are kept in
units of that norm (a count of one is ``1 / CONTRIBUTION_NORM``), so that a
contribution's norm is at most 1, the federation's default clipping norm,
and Gaussian noise of that sensitivity makes the sum differentially private;
:func:`in_counts` reads them as counts. The federation sums the
updates (Aggregation.SUM); :mod:`.release` thresholds the noised sum.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self

import numpy as np
from numpy.typing import NDArray

from aicache.features.error_events import BUCKETS, ErrorOccurrence, bucket
from aicache.tasks.base import FitConfig, FitResult, Params, Task, check_params

MAX_KEYS = 8
"""The most keys one developer's contribution counts (its most frequent)."""
CONTRIBUTION_NORM = math.sqrt(2 * MAX_KEYS + 1)
"""The L2 norm a contribution never exceeds: ``MAX_KEYS`` counts and votes, one report."""
MIN_DEVELOPERS = 5
"""Fewer developers than this never make a key common, whatever the noise."""
COMMON_SHARE = 0.05
"""The share of reporting developers a key needs to count as common in ``evaluate``."""


@dataclass(frozen=True, slots=True)
class ErrorExamples:
    """A developer's bounded contribution: one row per key it reports, most frequent first.

    ``buckets`` is each key's bucket, ``votes`` its trend vote (+1: more
    often in the newer half of the developer's errors, -1: less often),
    ``shares`` the row's part of the developer's single report (the rows of
    one developer sum to 1, so that the rows of any split add up to it).
    """

    buckets: NDArray[np.int64]
    votes: NDArray[np.float64]
    shares: NDArray[np.float64]

    def __len__(self) -> int:
        return int(self.buckets.size)

    def slice(self, start: int, stop: int | None) -> ErrorExamples:
        """Rows ``start`` to ``stop`` (exclusive; ``None``: to the end)."""
        return ErrorExamples(
            self.buckets[start:stop], self.votes[start:stop], self.shares[start:stop]
        )

    @classmethod
    def concatenate(cls, parts: Sequence[ErrorExamples]) -> ErrorExamples:
        """The rows of ``parts`` in order."""
        if not parts:
            return cls(np.zeros(0, dtype=np.int64), np.zeros(0), np.zeros(0))
        return cls(
            np.concatenate([p.buckets for p in parts]).astype(np.int64),
            np.concatenate([p.votes for p in parts]).astype(np.float64),
            np.concatenate([p.shares for p in parts]).astype(np.float64),
        )

    def save(self, path: Path) -> None:
        """Write the rows to ``path`` (``.npz``, no pickles)."""
        with path.open("wb") as handle:
            np.savez(handle, buckets=self.buckets, votes=self.votes, shares=self.shares)

    @classmethod
    def load(cls, path: Path) -> Self:
        """Read rows written by :meth:`save`."""
        with np.load(path, allow_pickle=False) as saved:
            return cls(
                saved["buckets"].astype(np.int64),
                saved["votes"].astype(np.float64),
                saved["shares"].astype(np.float64),
            )


@dataclass(frozen=True, slots=True)
class ErrorContext:
    """Keys to look up in the global histogram (a developer's own, or a public list)."""

    keys: tuple[str, ...] = field(default_factory=tuple)


def contribution(errors: Sequence[ErrorOccurrence]) -> ErrorExamples:
    """A developer's bounded contribution from its errors (see :class:`ErrorExamples`)."""
    if not errors:
        return ErrorExamples.concatenate([])
    ordered = sorted(errors, key=lambda e: e.ts)
    middle = len(ordered) // 2
    early = Counter(e.key for e in ordered[:middle])
    late = Counter(e.key for e in ordered[middle:])
    total = early + late
    # Ties broken by the key's text, so that a contribution is reproducible.
    # One key per bucket: two keys of one developer that share a bucket count once
    # there, or the contribution would pass its bound (a count of 2 in one bucket).
    by_bucket: dict[int, str] = {}
    for key in sorted(total, key=lambda k: (-total[k], k)):
        by_bucket.setdefault(bucket(key), key)
    kept = list(by_bucket.values())[:MAX_KEYS]
    votes = np.sign([late[k] - early[k] for k in kept]).astype(np.float64)
    return ErrorExamples(
        np.array([bucket(k) for k in kept], dtype=np.int64),
        votes,
        np.full(len(kept), 1.0 / len(kept)),
    )


def histogram(examples: ErrorExamples) -> Params:
    """The arrays ``[counts, trend, reports]`` a contribution adds, in units of its bound."""
    counts = np.bincount(examples.buckets, minlength=BUCKETS).astype(np.float64)
    trend = np.bincount(examples.buckets, weights=examples.votes, minlength=BUCKETS)
    arrays = [counts, trend.astype(np.float64), np.array([float(examples.shares.sum())])]
    return [a / CONTRIBUTION_NORM for a in arrays]


def in_counts(params: Params) -> Params:
    """The model's arrays as counts of developers (see the module)."""
    return [np.asarray(p, dtype=np.float64) * CONTRIBUTION_NORM for p in params]


class ErrorPatternsTask(
    Task[Sequence[ErrorOccurrence], ErrorExamples, ErrorContext, tuple[str, float]]
):
    """Which error signatures are common across developers (task ``error-patterns``)."""

    name = "error-patterns"
    max_examples = MAX_KEYS

    def init_params(self, seed: int) -> Params:
        """An empty histogram ``[counts (B,), trend (B,), reports (1,)]`` (no seed needed)."""
        return [np.zeros(BUCKETS), np.zeros(BUCKETS), np.zeros(1)]

    def load_local(self, source: Sequence[ErrorOccurrence]) -> ErrorExamples:
        """The developer's bounded contribution (see :func:`contribution`)."""
        return contribution(source)

    def num_examples(self, examples: ErrorExamples) -> int:
        """Every row counts."""
        return len(examples)

    def fit(self, params: Params, examples: ErrorExamples, config: FitConfig) -> FitResult:
        """The global histogram plus this contribution (no optimisation: a count)."""
        check_params(params, self.init_params(0))
        added = histogram(examples)
        new = [np.asarray(p, dtype=np.float64) + a for p, a in zip(params, added, strict=True)]
        return FitResult(params=new, num_examples=len(examples), metrics={})

    def evaluate(self, params: Params, examples: ErrorExamples) -> dict[str, float]:
        """How well the global histogram knows this developer's errors.

        Returns
        -------
        dict
            ``common`` (share of its keys hit by at least
            :data:`COMMON_SHARE` of the reporting developers: a share, so
            that it does not grow with the rounds summed), ``share`` (the
            mean share of reporting developers who hit its keys) and
            ``num_examples``.
        """
        check_params(params, self.init_params(0))
        if not len(examples):
            return {"common": 0.0, "share": 0.0, "num_examples": 0.0}
        counts_all, _, reports = in_counts(params)
        counts = counts_all[examples.buckets]
        # Shares of the reporting developers do not grow with the rounds summed.
        shares = np.clip(counts / max(float(reports[0]), 1.0), 0.0, 1.0)
        return {
            "common": float(np.mean(shares >= COMMON_SHARE)),
            "share": float(np.mean(shares)),
            "num_examples": float(len(examples)),
        }

    def predict(self, params: Params, context: ErrorContext) -> list[tuple[str, float]]:
        """The context's keys with their global counts, the most common first."""
        check_params(params, self.init_params(0))
        counts = in_counts(params)[0]
        scored = [(k, float(counts[bucket(k)])) for k in dict.fromkeys(context.keys)]
        return sorted(scored, key=lambda pair: (-pair[1], pair[0]))
