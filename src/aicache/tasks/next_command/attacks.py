"""How the robustness and leakage experiments attack next-command prediction.

Label flipping moves each point's answer to another candidate; a canary is a
sequence of made-up commands planted in one client's history, whose exposure
(Carlini et al., "The Secret Sharer", 2019) ranks it by the model's
log-perplexity (see :mod:`aicache.simulation.canary`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from aicache.features.candidates import CandidateSet
from aicache.features.history_items import HistoryItem
from aicache.features.history_state import HistoryState
from aicache.tasks.ranking import scores

FLOOR = 1e-9  # the probability given to a command that is not among the candidates


def label_flipped(examples: CandidateSet) -> CandidateSet:
    """``examples`` with each point's answer moved to another candidate of its group.

    The right candidate ``t`` of a group of ``k`` becomes ``(t + 1) mod k``: the
    client learns to rank a wrong command first. Groups of one candidate, and
    points whose answer is absent (-1), stay as they are.
    """
    sizes = examples.sizes
    flipped = np.where(
        (examples.targets >= 0) & (sizes > 1),
        (examples.targets + 1) % np.maximum(sizes, 1),
        examples.targets,
    )
    return CandidateSet(examples.features, examples.offsets, flipped.astype(np.int64))


def plant(
    history: Sequence[HistoryItem], canary: Sequence[str], times: int, seed: int
) -> list[HistoryItem]:
    """``history`` with ``canary`` inserted ``times`` times at random places."""
    rng = np.random.default_rng(seed)
    result = list(history)
    for _ in range(times):
        at = int(rng.integers(0, len(result) + 1))
        session = result[min(at, len(result) - 1)].session if result else None
        result[at:at] = [HistoryItem(command, session) for command in canary]
    return result


def log_perplexity(
    params: list[np.ndarray], prefix: Sequence[HistoryItem], sequence: Sequence[str]
) -> float:
    """``-Σ log p(s_i | prefix, s_<i)`` under the next-command model."""
    state = HistoryState()
    for item in prefix:
        state.update(item)
    total = 0.0
    for command in sequence:
        ids, features = state.features()
        names = [state.names[int(i)] for i in ids]
        score, _ = scores(params, features)
        probabilities = np.exp(score - score.max())
        probabilities /= probabilities.sum()
        probability = float(probabilities[names.index(command)]) if command in names else FLOOR
        total -= math.log(max(probability, FLOOR))
        state.update(HistoryItem(command))
    return total
