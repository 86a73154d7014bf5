"""A user's own history alone: the count model a learned predictor must beat.

It predicts from the user's own transitions (how often ``b`` followed ``a``),
falls back on their overall frequencies, and keeps learning as they type. It
needs no training and shares nothing: it is what a cache without federated
learning could do for a new user.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence

from aicache.features.history_items import HistoryItem


def online_bigram_hits(
    history: Sequence[HistoryItem], ks: Sequence[int] = (1, 3)
) -> dict[int, list[bool]]:
    """For every command, whether the model's top ``k`` held it before it was typed.

    Candidates are ranked by the count of ``previous -> candidate`` in the
    user's history so far, ties broken by the candidate's overall count, then
    by how recently it was used.

    Returns
    -------
    dict
        For each ``k``, one boolean per command of ``history`` (the first is
        always a miss: nothing is known yet).
    """
    transitions: defaultdict[str, Counter[str]] = defaultdict(Counter)
    frequency: Counter[str] = Counter()
    last_seen: dict[str, int] = {}
    hits: dict[int, list[bool]] = {k: [] for k in ks}
    deepest = max(ks)
    for index, item in enumerate(history):
        program = item.program
        following = transitions[history[index - 1].program] if index else Counter()
        ranked = sorted(
            frequency,
            key=lambda c: (following[c], frequency[c], last_seen[c]),
            reverse=True,
        )[:deepest]
        for k in ks:
            hits[k].append(program in ranked[:k])
        if index:
            following[program] += 1
        frequency[program] += 1
        last_seen[program] = index
    return hits
