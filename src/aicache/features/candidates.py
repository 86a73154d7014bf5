"""Ragged groups of candidate feature rows: the examples of a ranking task.

Each prediction point is a group of rows (one per candidate) stored
contiguously; ``offsets[i]:offsets[i + 1]`` are group ``i``'s rows and
``targets[i]`` is the index of the right candidate within the group, or -1
when the right answer was not among the candidates (it then counts as a miss
in evaluation and is skipped in training).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray


@dataclass(frozen=True, slots=True)
class CandidateSet:
    """Candidate feature rows grouped by prediction point.

    Attributes
    ----------
    features
        Float32 array ``(rows, num_features)``.
    offsets
        Int64 array ``(groups + 1,)``: group ``i`` is ``features[offsets[i]:offsets[i + 1]]``.
    targets
        Int64 array ``(groups,)``: the right candidate's index within its group, or -1.
    """

    features: NDArray[np.float32]
    offsets: NDArray[np.int64]
    targets: NDArray[np.int64]

    def __post_init__(self) -> None:
        if self.offsets.ndim != 1 or self.offsets.size != self.targets.size + 1:
            raise ValueError("offsets must have one more entry than targets")
        if self.offsets.size and (self.offsets[0] != 0 or self.offsets[-1] != len(self.features)):
            raise ValueError("offsets must start at 0 and end at the number of rows")

    def __len__(self) -> int:
        return int(self.targets.size)

    @property
    def num_features(self) -> int:
        """How many numbers describe one candidate."""
        return int(self.features.shape[1])

    @property
    def sizes(self) -> NDArray[np.int64]:
        """How many candidates each group has."""
        return np.diff(self.offsets)

    def slice(self, start: int, stop: int | None) -> CandidateSet:
        """Groups ``start`` to ``stop`` (exclusive; ``None``: to the end), e.g. a
        chronological split."""
        start, stop, _ = slice(start, stop).indices(len(self))
        stop = max(stop, start)
        lo, hi = int(self.offsets[start]), int(self.offsets[stop])
        return CandidateSet(
            features=self.features[lo:hi],
            offsets=self.offsets[start : stop + 1] - lo,
            targets=self.targets[start:stop],
        )

    @classmethod
    def concatenate(cls, parts: Sequence[CandidateSet]) -> CandidateSet:
        """Join groups from several sets (e.g. pooled users) in order."""
        if not parts:
            raise ValueError("nothing to concatenate")
        offsets = [np.zeros(1, dtype=np.int64)]
        base = 0
        for part in parts:
            offsets.append(part.offsets[1:] + base)
            base += len(part.features)
        return cls(
            features=np.concatenate([p.features for p in parts]),
            offsets=np.concatenate(offsets),
            targets=np.concatenate([p.targets for p in parts]),
        )

    def save(self, path: Path) -> None:
        """Write the three arrays to ``path`` (an ``.npz`` file, loadable without pickles)."""
        with path.open("wb") as handle:  # a handle: numpy would append .npz to a bare name
            np.savez(handle, features=self.features, offsets=self.offsets, targets=self.targets)

    @classmethod
    def load(cls, path: Path) -> CandidateSet:
        """Read a set written by :meth:`save`.

        Raises
        ------
        OSError, ValueError, KeyError
            If ``path`` is not such a file.
        """
        with np.load(path, allow_pickle=False) as saved:
            return cls(saved["features"], saved["offsets"], saved["targets"])

    def take(self, groups: NDArray[np.int64]) -> CandidateSet:
        """The groups at ``groups`` (indices, in the order given)."""
        groups = np.asarray(groups, dtype=np.int64)
        sizes = self.sizes[groups]
        offsets = np.zeros(groups.size + 1, dtype=np.int64)
        np.cumsum(sizes, out=offsets[1:])
        starts = np.repeat(self.offsets[groups] - offsets[:-1], sizes)
        rows = starts + np.arange(int(offsets[-1]), dtype=np.int64)
        return CandidateSet(
            features=self.features[rows], offsets=offsets, targets=self.targets[groups]
        )
