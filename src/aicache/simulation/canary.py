"""Measured leakage: the exposure of a canary (Carlini et al., "The Secret Sharer", 2019).

A canary is a random sequence of made-up tokens (commands, for next-command
prediction) planted in one client's records. After training, an attacker
holding the global model (but no victim's data) ranks the canary among many
random sequences of the same kind by the model's log-perplexity. Exposure is
``log2(|R|) - log2(rank)``: about 1 bit for a sequence the model knows
nothing about (it ties with all the others and sits in the middle), up to
``log2(|R|)`` for one it memorised. How a canary is planted and scored is
the task's (its spec's ``attacks``).
"""

from __future__ import annotations

import math
import string
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from aicache.tasks.spec import get_spec


def random_sequence(rng: np.random.Generator, length: int = 5) -> tuple[str, ...]:
    """Made-up tokens, e.g. ``('qz7kwm', 'b2xfje', ...)``."""
    letters = np.array(list(string.ascii_lowercase + string.digits))
    return tuple("".join(rng.choice(letters, 6)) for _ in range(length))


def _scorer(task: str) -> tuple[Callable[..., Any], Callable[..., float]]:
    """The task's ``plant`` and ``log_perplexity``, or an error naming the task."""
    attacks = get_spec(task).attacks
    if attacks.plant is None or attacks.log_perplexity is None:
        raise ValueError(f"task {task} predicts no sequences: a canary's exposure does not apply")
    return attacks.plant, attacks.log_perplexity


def plant(records: Any, canary: Sequence[str], *, task: str, times: int, seed: int) -> Any:
    """``records`` (one client's raw data of ``task``) with ``canary`` inserted ``times`` times.

    Raises
    ------
    ValueError
        If the task predicts no sequences.
    """
    planted, _ = _scorer(task)
    return planted(records, canary, times, seed)


def exposure(
    params: list[np.ndarray],
    canary: Sequence[str],
    prefix: Any,
    *,
    task: str,
    candidates: int = 1000,
    seed: int = 0,
) -> float:
    """The canary's exposure among ``candidates`` random sequences of its length.

    ``prefix`` is the attacker's own records, read before each sequence.

    Raises
    ------
    ValueError
        If the task predicts no sequences.
    """
    _, log_perplexity = _scorer(task)
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
