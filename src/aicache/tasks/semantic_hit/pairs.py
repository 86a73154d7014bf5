"""The semantic-hit task's examples: one feature vector and one label per pair.

A pair is a question and a cached prompt; its label says whether the cached
answer serves the question (1) or not (0). Only the features (numbers from
:mod:`.features`) are kept: the texts never leave :func:`.features.pair_features`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray


@dataclass(frozen=True, slots=True)
class LabelledPair:
    """Two texts and whether one answers for the other.

    Attributes
    ----------
    query
        The question asked now.
    cached
        The cached prompt it is compared with.
    same
        Whether the cached answer is right for the question.
    """

    query: str
    cached: str
    same: bool


@dataclass(frozen=True, slots=True)
class PairSet:
    """Pair features and labels, in the order the pairs came.

    Attributes
    ----------
    features
        ``(n, F)`` float64, one row per pair (see :data:`.features.FEATURE_NAMES`).
    labels
        ``(n,)`` float64, 1.0 where the cached answer is right, else 0.0.
    """

    features: NDArray[np.float64]
    labels: NDArray[np.float64]

    def __len__(self) -> int:
        """How many pairs."""
        return int(self.labels.size)

    def slice(self, start: int, stop: int | None) -> PairSet:
        """Pairs ``start`` to ``stop`` (exclusive; ``None``: to the end)."""
        return PairSet(self.features[start:stop], self.labels[start:stop])

    def take(self, rows: NDArray[np.int64]) -> PairSet:
        """The pairs at ``rows``, in that order."""
        return PairSet(self.features[rows], self.labels[rows])

    @classmethod
    def concatenate(cls, parts: Sequence[PairSet]) -> PairSet:
        """The pairs of ``parts`` in order."""
        if not parts:
            raise ValueError("nothing to concatenate")
        return cls(
            np.concatenate([p.features for p in parts]).astype(np.float64),
            np.concatenate([p.labels for p in parts]).astype(np.float64),
        )

    def save(self, path: Path) -> None:
        """Write the pairs to ``path`` (``.npz``, no pickles)."""
        with path.open("wb") as handle:
            np.savez(handle, features=self.features, labels=self.labels)

    @classmethod
    def load(cls, path: Path) -> PairSet:
        """Read pairs written by :meth:`save`."""
        with np.load(path, allow_pickle=False) as saved:
            return cls(
                np.asarray(saved["features"], dtype=np.float64),
                np.asarray(saved["labels"], dtype=np.float64),
            )
