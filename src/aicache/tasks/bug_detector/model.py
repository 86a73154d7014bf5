"""The bug detector's model: a linear scorer over hashed features, softmax over a site's tokens.

Each token of a site (:mod:`.sites`) gets the score ``s = Σ w[h(f)]·sign(f)``
over its features ``f``, hashed into :data:`DIMENSION` weights (the hashing
trick, with a sign bit against collisions). Training is a cloze task: among a
site's tokens the written one should win, so the loss is the cross-entropy of
the softmax over the site's scores with the written token as the label. Every
other token is a mutation of the developer's code (an operator, a bound, a
variable...), so each site is a set of buggy/correct pairs at once.

A finding's score is ``max_c s(c) - s(written)``: the log-odds that the best
other token is the one meant, under the model.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Self

import numpy as np
from numpy.typing import NDArray

from aicache.tasks.base import FitConfig, Params
from aicache.tasks.bug_detector.sites import KINDS, Site
from aicache.tasks.optim import Adam

DIMENSION = 1 << 16
_MASK = DIMENSION - 1
MIN_COUNT = 3
"""A fit changes only the weights of features seen at least this often in the developer's
own sites: a rarer one is mostly an identifier of that code, and under differential
privacy every weight an update moves takes its share of the clipping norm."""


def hash_features(features: Sequence[str]) -> tuple[list[int], list[int]]:
    """Each feature's weight index and sign (stable across processes, unlike ``hash``)."""
    indices, signs = [], []
    for feature in features:
        value = zlib.crc32(feature.encode())
        indices.append(value & _MASK)
        signs.append(1 if value & 0x80000000 else -1)
    return indices, signs


@dataclass(frozen=True, slots=True)
class SiteSet:
    """Sites as flat arrays: each site's token rows, each row's hashed features.

    Row ``site_ptr[i]`` is site ``i``'s written token; its rows run to
    ``site_ptr[i + 1]``. Row ``r``'s features are ``indices[row_ptr[r]:row_ptr[r + 1]]``.
    """

    indices: NDArray[np.int32]
    signs: NDArray[np.int8]
    row_ptr: NDArray[np.int64]
    site_ptr: NDArray[np.int64]
    kinds: NDArray[np.int8]

    def __len__(self) -> int:
        return int(self.site_ptr.size - 1)

    @classmethod
    def empty(cls) -> SiteSet:
        """No site at all."""
        zero = np.zeros(1, dtype=np.int64)
        return cls(
            np.zeros(0, np.int32), np.zeros(0, np.int8), zero, zero.copy(), np.zeros(0, np.int8)
        )

    @classmethod
    def from_sites(cls, sites: Sequence[Site]) -> SiteSet:
        """The arrays of ``sites``, features hashed."""
        indices: list[int] = []
        signs: list[int] = []
        row_ptr, site_ptr, kinds = [0], [0], []
        for site in sites:
            for features in site.features:
                found, sign = hash_features(features)
                indices.extend(found)
                signs.extend(sign)
                row_ptr.append(len(indices))
            site_ptr.append(len(row_ptr) - 1)
            kinds.append(KINDS.index(site.kind))
        return cls(
            np.asarray(indices, dtype=np.int32),
            np.asarray(signs, dtype=np.int8),
            np.asarray(row_ptr, dtype=np.int64),
            np.asarray(site_ptr, dtype=np.int64),
            np.asarray(kinds, dtype=np.int8),
        )

    def slice(self, start: int, stop: int | None) -> SiteSet:
        """Sites ``start`` to ``stop`` (exclusive; ``None``: to the end)."""
        count = len(self)
        start = min(max(start, 0), count)
        stop = count if stop is None else min(max(stop, start), count)
        first_row, last_row = int(self.site_ptr[start]), int(self.site_ptr[stop])
        first, last = int(self.row_ptr[first_row]), int(self.row_ptr[last_row])
        return SiteSet(
            self.indices[first:last].copy(),
            self.signs[first:last].copy(),
            self.row_ptr[first_row : last_row + 1] - first,
            self.site_ptr[start : stop + 1] - first_row,
            self.kinds[start:stop].copy(),
        )

    def take(self, sites: NDArray[np.int64]) -> SiteSet:
        """The sites numbered ``sites``, in that order (a training batch)."""
        sites = np.asarray(sites, dtype=np.int64)
        first, last = self.site_ptr[sites], self.site_ptr[sites + 1]
        rows = _ranges(first, last)
        features = _ranges(self.row_ptr[rows], self.row_ptr[rows + 1])
        return SiteSet(
            self.indices[features],
            self.signs[features],
            np.concatenate([[0], np.cumsum(np.diff(self.row_ptr)[rows])]).astype(np.int64),
            np.concatenate([[0], np.cumsum(last - first)]).astype(np.int64),
            self.kinds[sites],
        )

    @classmethod
    def concatenate(cls, parts: Sequence[SiteSet]) -> SiteSet:
        """The sites of ``parts`` in order."""
        if not parts:
            return cls.empty()
        row_offsets = np.cumsum([0, *(int(p.row_ptr[-1]) for p in parts)])
        site_offsets = np.cumsum([0, *(int(p.site_ptr[-1]) for p in parts)])
        return cls(
            np.concatenate([p.indices for p in parts]).astype(np.int32),
            np.concatenate([p.signs for p in parts]).astype(np.int8),
            np.concatenate(
                [np.zeros(1, np.int64)]
                + [p.row_ptr[1:] + row_offsets[i] for i, p in enumerate(parts)]
            ),
            np.concatenate(
                [np.zeros(1, np.int64)]
                + [p.site_ptr[1:] + site_offsets[i] for i, p in enumerate(parts)]
            ),
            np.concatenate([p.kinds for p in parts]).astype(np.int8),
        )

    def save(self, path: Path) -> None:
        """Write the arrays to ``path`` (``.npz``, no pickles)."""
        with path.open("wb") as handle:
            np.savez(
                handle,
                indices=self.indices,
                signs=self.signs,
                row_ptr=self.row_ptr,
                site_ptr=self.site_ptr,
                kinds=self.kinds,
            )

    @classmethod
    def load(cls, path: Path) -> Self:
        """Read arrays written by :meth:`save`."""
        with np.load(path, allow_pickle=False) as saved:
            return cls(
                saved["indices"].astype(np.int32),
                saved["signs"].astype(np.int8),
                saved["row_ptr"].astype(np.int64),
                saved["site_ptr"].astype(np.int64),
                saved["kinds"].astype(np.int8),
            )


def _ranges(starts: NDArray[np.int64], stops: NDArray[np.int64]) -> NDArray[np.int64]:
    """The concatenation of ``range(a, b)`` for each pair, without a Python loop."""
    lengths = stops - starts
    total = int(lengths.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    offsets = np.repeat(starts - np.concatenate([[0], np.cumsum(lengths)[:-1]]), lengths)
    return np.asarray(np.arange(total, dtype=np.int64) + offsets)


def row_scores(weights: NDArray[np.float64], sites: SiteSet) -> NDArray[np.float64]:
    """Every token row's score."""
    rows = sites.row_ptr.size - 1
    if rows == 0:
        return np.zeros(0)
    contributions = weights[sites.indices] * sites.signs
    row_of = np.repeat(np.arange(rows), np.diff(sites.row_ptr))
    return np.bincount(row_of, weights=contributions, minlength=rows).astype(np.float64)


def _site_of_rows(sites: SiteSet) -> NDArray[np.int64]:
    return np.repeat(np.arange(len(sites)), np.diff(sites.site_ptr))


def log_softmax(scores: NDArray[np.float64], sites: SiteSet) -> NDArray[np.float64]:
    """Each row's log-probability among its site's tokens."""
    starts = sites.site_ptr[:-1]
    site_of = _site_of_rows(sites)
    peak = np.maximum.reduceat(scores, starts)[site_of]
    total = np.add.reduceat(np.exp(scores - peak), starts)
    return np.asarray(scores - peak - np.log(total)[site_of])


def loss_and_grad(
    params: Sequence[NDArray[np.float64]], sites: SiteSet, need_grad: bool = True
) -> tuple[float, Params]:
    """Mean cross-entropy of the written tokens and, unless not needed, its gradient."""
    count = len(sites)
    if count == 0:
        return 0.0, [np.zeros_like(params[0])]
    scores = row_scores(params[0], sites)
    log_p = log_softmax(scores, sites)
    loss = float(-np.mean(log_p[sites.site_ptr[:-1]]))
    if not need_grad:
        return loss, []
    d_rows = np.exp(log_p)
    d_rows[sites.site_ptr[:-1]] -= 1.0
    d_rows /= count
    per_feature = np.repeat(d_rows, np.diff(sites.row_ptr)) * sites.signs
    grad = np.bincount(sites.indices, weights=per_feature, minlength=DIMENSION)
    return loss, [grad.astype(np.float64)]


def site_scores(
    weights: NDArray[np.float64], sites: SiteSet
) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    """Each site's finding score ``max_c s(c) - s(written)`` and the best other row's offset.

    The offset counts from the site's first row (1 is its first alternative).
    """
    scores = row_scores(weights, sites)
    starts = sites.site_ptr[:-1]
    written = scores[starts]
    others = scores.copy()
    others[starts] = -np.inf
    best = np.maximum.reduceat(others, starts)
    site_of = _site_of_rows(sites)
    rows = np.flatnonzero((others == best[site_of]) & np.isfinite(others))
    # The first row reaching the best score, counted from its site's first row.
    first_rows = starts.copy()
    first_rows[site_of[rows[::-1]]] = rows[::-1]
    return np.asarray(best - written), np.asarray(first_rows - starts)


def train(
    params: Sequence[NDArray[np.float64]], sites: SiteSet, config: FitConfig
) -> tuple[Params, float]:
    """Adam on the sites' cross-entropy (with weight decay and FedProx's term from ``config``).

    Only the weights of features seen :data:`MIN_COUNT` times in ``sites`` move.

    Returns
    -------
    tuple
        The trained weights and the mean batch loss of the last epoch (NaN
        when nothing was trained).
    """
    adam = Adam(params, config)
    start = np.array(params[0], dtype=np.float64)
    # Weights of rare features stay as they came (decay and FedProx's term included).
    counts = np.bincount(sites.indices, minlength=DIMENSION)
    frozen = counts < MIN_COUNT
    if frozen.all():  # too little code for any feature to recur: learn from what there is
        frozen = counts == 0
    rng = np.random.default_rng(config.seed)
    count = len(sites)
    order = np.arange(count)
    last = float("nan")
    for _ in range(config.local_epochs if count else 0):
        rng.shuffle(order)
        losses = []
        for begin in range(0, count, config.batch_size):
            batch = sites.take(np.sort(order[begin : begin + config.batch_size]))
            loss, grads = loss_and_grad(adam.current, batch)
            losses.append(loss)
            adam.update(grads)
            adam.current[0][frozen] = start[frozen]
        last = float(np.mean(losses))
    return list(adam.current), last
