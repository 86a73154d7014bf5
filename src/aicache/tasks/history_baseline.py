"""A user's own history alone: the count model a learned predictor must beat.

It predicts from the user's own transitions (how often ``b`` followed ``a``),
falls back on their overall frequencies, and keeps learning as they type. It
needs no training and shares nothing: it is what a cache without federated
learning could do for a new user. :class:`TransitionCounts` is also the
personal half of what ``suggest`` serves (see
:meth:`aicache.tasks.next_command.NextCommandTask.predict`).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence

from aicache.features.history_items import HistoryItem


class TransitionCounts:
    """Counts of what followed what in one user's history, updated as they type.

    Commands are plain strings: programs for the baseline, ``program
    subcommand`` for suggestions, so that ``git add`` and ``git commit`` are
    told apart.
    """

    def __init__(self, commands: Iterable[str] = ()) -> None:
        self.following: defaultdict[str, Counter[str]] = defaultdict(Counter)
        self.frequency: Counter[str] = Counter()
        self.last_seen: dict[str, int] = {}
        self.previous: str | None = None
        self._typed = 0
        for command in commands:
            self.update(command)

    def update(self, command: str) -> None:
        """Record that ``command`` was typed next."""
        if self.previous is not None:
            self.following[self.previous][command] += 1
        self.frequency[command] += 1
        self.last_seen[command] = self._typed
        self._typed += 1
        self.previous = command

    def ranked(self, after: str | None) -> list[str]:
        """Every command seen, likeliest after ``after`` first.

        Ties on the transition count are broken by the overall count, then by
        how recently the command was used.
        """
        following = self.following.get(after, Counter()) if after is not None else Counter()
        return sorted(
            self.frequency,
            key=lambda c: (following[c], self.frequency[c], self.last_seen[c]),
            reverse=True,
        )

    def next_shares(self, after: str) -> tuple[dict[str, float], int]:
        """How often each command followed ``after`` (shares summing to 1) and out of how many."""
        following = self.following.get(after)
        if not following:
            return {}, 0
        total = sum(following.values())
        return {command: count / total for command, count in following.items()}, total


def online_bigram_hits(
    history: Sequence[HistoryItem], ks: Sequence[int] = (1, 3)
) -> dict[int, list[bool]]:
    """For every command, whether the model's top ``k`` held it before it was typed.

    Candidates are ranked by :meth:`TransitionCounts.ranked` over programs,
    with what the user typed so far.

    Returns
    -------
    dict
        For each ``k``, one boolean per command of ``history`` (the first is
        always a miss: nothing is known yet).
    """
    counts = TransitionCounts()
    hits: dict[int, list[bool]] = {k: [] for k in ks}
    deepest = max(ks)
    for item in history:
        ranked = counts.ranked(counts.previous)[:deepest]
        for k in ks:
            hits[k].append(item.program in ranked[:k])
        counts.update(item.program)
    return hits
