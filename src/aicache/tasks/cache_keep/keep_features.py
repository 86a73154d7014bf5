"""The keep-score's features: what a cache knows of each entry, made scale-free.

Every feature is a rank, a log or a ratio measured on the cache's own request
clock (how many requests went by), relative to how many entries the cache
holds, so that one model serves a light user and a heavy one, a cache of ten
entries and one of a thousand.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

FEATURE_NAMES: tuple[str, ...] = (
    "recency_rank",
    "log_since_use",
    "log_uses",
    "frequency_rank",
    "log_age",
    "log_rate",
    "log_size_ratio",
    "log_cost_ratio",
    "log_since_program",
    "semantic_share",
    "log_gap_ratio",
    "log_last_gap",
    "program_reuse",
)
NUM_FEATURES = len(FEATURE_NAMES)
_CLIP = 5.0  # log ratios beyond e^5 carry no more information and would dominate a fit


@dataclass(frozen=True, slots=True)
class EntryState:
    """What the cache knows of its entries at one moment, one value per entry.

    Attributes
    ----------
    since_use
        Requests since the entry's key was last asked.
    since_first
        Requests since its key was first asked.
    uses
        How many times its key has been asked (at least 1).
    size
        The answer's size in bytes.
    cost
        Seconds it took to compute the answer.
    since_program
        Requests since the entry's program was last used.
    semantic
        How many of its uses were served as semantic hits (0 without them).
    last_gap
        Requests between its key's last two uses (for a key asked once: since then).
    program_reuse
        Of the keys of the entry's program asked so far, the share asked more than once.
    """

    since_use: NDArray[np.float64]
    since_first: NDArray[np.float64]
    uses: NDArray[np.float64]
    size: NDArray[np.float64]
    cost: NDArray[np.float64]
    since_program: NDArray[np.float64]
    semantic: NDArray[np.float64]
    last_gap: NDArray[np.float64]
    program_reuse: NDArray[np.float64]

    def __len__(self) -> int:
        return int(self.since_use.size)


def _rank(values: NDArray[np.float64]) -> NDArray[np.float64]:
    """Each value's rank in ``values`` as a share in [0, 1] (0: smallest); ties share a rank."""
    n = values.size
    if n < 2:
        return np.zeros(n)
    order = np.argsort(values, kind="stable")
    ranks = np.empty(n)
    ranks[order] = np.arange(n, dtype=np.float64)
    # Ties take their mean rank, so the order of equal entries says nothing.
    _, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
    sums = np.bincount(inverse, weights=ranks)
    return np.asarray((sums / counts)[inverse] / (n - 1))


def _log_ratio_to_median(values: NDArray[np.float64]) -> NDArray[np.float64]:
    positive = np.maximum(values, 1e-9)
    return np.asarray(np.clip(np.log(positive / np.median(positive)), -_CLIP, _CLIP))


def entry_features(state: EntryState) -> NDArray[np.float64]:
    """The ``(n, NUM_FEATURES)`` features of the ``n`` entries of ``state`` (see the module)."""
    n = len(state)
    if n == 0:
        return np.zeros((0, NUM_FEATURES))
    scale = float(n)
    uses = np.maximum(state.uses, 1.0)
    since_use = np.maximum(state.since_use, 0.0)
    since_first = np.maximum(state.since_first, since_use)
    columns = (
        _rank(since_use),
        np.log1p(since_use / scale),
        np.log(uses),
        _rank(-uses),
        np.log1p(since_first / scale),
        np.clip(np.log(uses * scale / (since_first + 1.0)), -_CLIP, _CLIP),
        _log_ratio_to_median(state.size),
        _log_ratio_to_median(state.cost),
        np.log1p(np.maximum(state.since_program, 0.0) / scale),
        np.clip(state.semantic / uses, 0.0, 1.0),
        np.clip(np.log1p(since_use * uses / (since_first + 1.0)), 0.0, _CLIP),
        np.log1p(np.maximum(state.last_gap, 0.0) / scale),
        np.clip(state.program_reuse, 0.0, 1.0),
    )
    return np.stack(columns, axis=1).astype(np.float64)
