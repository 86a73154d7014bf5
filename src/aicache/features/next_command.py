"""Candidate features for next-command prediction, computed from a user's own history.

At each point of a user's history a :class:`HistoryState` (streaming, built
only from the commands before that point) proposes candidate programs (the
user's recent, frequent, directory and successor programs plus the top of
the public vocabulary) and describes each candidate with the numbers in
:data:`FEATURE_NAMES`: recency, decayed frequencies, the user's own
transition probabilities, directory and session statistics, failure retry
and a public-vocabulary prior. A model learns how to weigh these numbers, so
its parameters hold no command names and carry over from user to user.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from aicache.features.candidates import CandidateSet
from aicache.features.command_layout import (
    BIGRAM_DECAYS,
    FEATURE_NAMES,
    FREQ_DECAYS,
    NUM_FEATURES,
    CandidateConfig,
)
from aicache.features.history_items import HistoryItem
from aicache.features.history_state import HistoryState

__all__ = [
    "BIGRAM_DECAYS",
    "FEATURE_NAMES",
    "FREQ_DECAYS",
    "NUM_FEATURES",
    "CandidateConfig",
    "HistoryState",
    "extract_candidates",
]


def extract_candidates(
    items: Sequence[HistoryItem],
    *,
    config: CandidateConfig | None = None,
    use_context: bool = True,
) -> CandidateSet:
    """Candidate features at every point of a user's history, streaming.

    The features for point ``t`` are computed before ``items[t]`` is added to
    the state, so they use ``items[:t]`` only (plus, with ``use_context``, the
    session and directory of the moment, which the shell knows before the
    command is typed).

    Parameters
    ----------
    items
        The user's history in typed order.
    config
        Candidate-set sizes.
    use_context
        Whether to use the session and directory of the moment of prediction.

    Returns
    -------
    CandidateSet
        One group of candidate rows per item; the target is the index of the
        item's program among its group's candidates, or -1 when it is not one.
    """
    state = HistoryState(config)
    blocks: list[NDArray[np.float32]] = []
    sizes = np.zeros(len(items), dtype=np.int64)
    targets = np.full(len(items), -1, dtype=np.int64)
    for t, item in enumerate(items):
        session = item.session if use_context else None
        dir_hash = item.dir_hash if use_context else None
        ids, x = state.features(session, dir_hash)
        target = state.index(item.program)
        if target is not None:
            hit = np.flatnonzero(ids == target)
            if hit.size:
                targets[t] = int(hit[0])
        blocks.append(x)
        sizes[t] = ids.size
        state.update(item)
    offsets = np.zeros(len(items) + 1, dtype=np.int64)
    np.cumsum(sizes, out=offsets[1:])
    features = np.concatenate(blocks) if blocks else np.zeros((0, NUM_FEATURES), np.float32)
    return CandidateSet(features=features, offsets=offsets, targets=targets)
