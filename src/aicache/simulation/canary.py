"""Measured leakage: the exposure of a canary (Carlini et al., "The Secret Sharer", 2019).

A canary is a random sequence of made-up commands planted in one client's
history. After training, an attacker holding the global model (but no
victim's data) ranks the canary among many random sequences of the same kind
by the model's log-perplexity. Exposure is ``log2(|R|) - log2(rank)``: about
1 bit for a sequence the model knows nothing about (it ties with all the
others and sits in the middle), up to ``log2(|R|)`` for one it memorised.
"""

from __future__ import annotations

import math
import string
from collections.abc import Sequence

import numpy as np

from aicache.features.history_items import HistoryItem
from aicache.features.history_state import HistoryState
from aicache.tasks.ranking import scores

FLOOR = 1e-9  # the probability given to a command that is not among the candidates


def random_sequence(rng: np.random.Generator, length: int = 5) -> tuple[str, ...]:
    """Made-up command names, e.g. ``('qz7kwm', 'b2xfje', ...)``."""
    letters = np.array(list(string.ascii_lowercase + string.digits))
    return tuple("".join(rng.choice(letters, 6)) for _ in range(length))


def plant(
    history: list[HistoryItem], canary: Sequence[str], times: int, seed: int
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


def exposure(
    params: list[np.ndarray],
    canary: Sequence[str],
    prefix: Sequence[HistoryItem],
    *,
    candidates: int = 1000,
    seed: int = 0,
) -> float:
    """The canary's exposure among ``candidates`` random sequences of its length."""
    rng = np.random.default_rng(seed)
    target = log_perplexity(params, prefix, canary)
    others = np.array(
        [
            log_perplexity(params, prefix, random_sequence(rng, len(canary)))
            for _ in range(candidates)
        ]
    )
    # Ties share their ranks: the canary's rank is the mean of the places it ties for.
    rank = 1 + np.count_nonzero(others < target) + np.count_nonzero(others == target) / 2
    return math.log2(candidates + 1) - math.log2(rank)
