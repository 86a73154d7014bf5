"""A client's projects as the library-recs task handles them: vocabulary ids per project."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Self

import numpy as np
from numpy.typing import NDArray

Ints = NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class ProjectSet:
    """Projects in order: each one's dependencies inside the vocabulary, and how many are not.

    Attributes
    ----------
    ids
        Every project's vocabulary ids, one project after the other.
    offsets
        Project ``p``'s ids are ``ids[offsets[p]:offsets[p + 1]]``.
    unknown
        How many of each project's dependencies lie outside the vocabulary.
    """

    ids: Ints
    offsets: Ints
    unknown: Ints

    @classmethod
    def from_lists(cls, projects: Sequence[tuple[Sequence[int], int]]) -> ProjectSet:
        """Projects given as ``(ids, unknown)`` pairs."""
        sizes = [len(ids) for ids, _ in projects]
        flat = [i for ids, _ in projects for i in ids]
        return cls(
            np.asarray(flat, dtype=np.int64),
            np.concatenate([[0], np.cumsum(sizes, dtype=np.int64)]).astype(np.int64),
            np.asarray([u for _, u in projects], dtype=np.int64),
        )

    def __len__(self) -> int:
        return int(self.unknown.size)

    def project(self, index: int) -> Ints:
        """Project ``index``'s vocabulary ids."""
        return self.ids[self.offsets[index] : self.offsets[index + 1]]

    def take(self, indices: Sequence[int] | Ints) -> ProjectSet:
        """The projects at ``indices``, in that order."""
        return ProjectSet.from_lists(
            [(self.project(int(i)).tolist(), int(self.unknown[int(i)])) for i in indices]
        )

    def slice(self, start: int, stop: int | None) -> Self:
        """Projects ``start`` to ``stop`` (exclusive; ``None``: to the end)."""
        chosen = range(len(self))[start:stop]
        first, last = (chosen.start, chosen.stop) if len(chosen) else (0, 0)
        ids = self.ids[self.offsets[first] : self.offsets[last]] if len(chosen) else self.ids[:0]
        offsets = self.offsets[first : last + 1] - self.offsets[first] if len(chosen) else None
        return type(self)(
            ids.copy(),
            np.zeros(1, dtype=np.int64) if offsets is None else offsets.astype(np.int64),
            self.unknown[first:last].copy(),
        )

    @classmethod
    def concatenate(cls, parts: Sequence[Self]) -> Self:
        """The projects of ``parts`` in order."""
        if not parts:
            return cls(np.zeros(0, np.int64), np.zeros(1, np.int64), np.zeros(0, np.int64))
        sizes = np.concatenate([np.diff(p.offsets) for p in parts]).astype(np.int64)
        return cls(
            np.concatenate([p.ids for p in parts]).astype(np.int64),
            np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64),
            np.concatenate([p.unknown for p in parts]).astype(np.int64),
        )

    def save(self, path: Path) -> None:
        """Write the projects to ``path`` (``.npz``, no pickles)."""
        with path.open("wb") as handle:
            np.savez(handle, ids=self.ids, offsets=self.offsets, unknown=self.unknown)

    @classmethod
    def load(cls, path: Path) -> Self:
        """Read projects written by :meth:`save`."""
        with np.load(path, allow_pickle=False) as saved:
            return cls(
                saved["ids"].astype(np.int64),
                saved["offsets"].astype(np.int64),
                saved["unknown"].astype(np.int64),
            )


@dataclass(frozen=True, slots=True)
class HiddenOne:
    """Leave-one-out points: each known dependency of each project, hidden in turn.

    Attributes
    ----------
    contexts
        Row ``r``'s visible dependencies (the project without its hidden one).
    targets
        Row ``r``'s hidden dependency.
    """

    contexts: list[Ints]
    targets: Ints

    def __len__(self) -> int:
        return int(self.targets.size)

    def take(self, rows: Ints) -> HiddenOne:
        """The points at ``rows``."""
        return HiddenOne([self.contexts[int(r)] for r in rows], self.targets[rows])


def hidden_one(projects: ProjectSet) -> HiddenOne:
    """Every leave-one-out point of ``projects`` whose project has two dependencies or more.

    A project with a single dependency has nothing left to recommend from.
    """
    contexts: list[Ints] = []
    targets: list[int] = []
    for p in range(len(projects)):
        ids = projects.project(p)
        if ids.size + int(projects.unknown[p]) < 2:
            continue
        for position in range(ids.size):
            contexts.append(np.delete(ids, position))
            targets.append(int(ids[position]))
    return HiddenOne(contexts, np.asarray(targets, dtype=np.int64))
