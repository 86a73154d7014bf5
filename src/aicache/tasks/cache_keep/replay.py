"""Replaying a request stream through a cache of a fixed budget.

The same replay makes the task's training examples (the entries a cache
holds at sampled moments, labelled by whether each is asked again within a
horizon) and judges eviction policies by their hit rate: LRU, LFU, a learned
keep-score, and Belady's optimum (evict the entry whose next use is furthest
away), which needs the future and bounds what any policy can reach.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from aicache.features.cache_requests import Request
from aicache.tasks.cache_keep.keep_features import NUM_FEATURES, EntryState, entry_features

# The budgets (in entries) training examples are drawn at: a log-spaced range,
# so that the model sees small and large caches alike (never the judged ones only).
TRAINING_BUDGETS = (8, 16, 32, 64, 128, 256)
NEVER = np.iinfo(np.int64).max


@dataclass(frozen=True, slots=True)
class EncodedStream:
    """A request stream as arrays: one value per request, keys and programs as ids."""

    keys: NDArray[np.int64]
    programs: NDArray[np.int64]
    sizes: NDArray[np.float64]
    costs: NDArray[np.float64]
    next_use: NDArray[np.int64]
    """The index of the next request of the same key, or :data:`NEVER`."""

    def __len__(self) -> int:
        return int(self.keys.size)

    @property
    def distinct(self) -> int:
        """How many different keys the stream asks for."""
        return int(self.keys.max()) + 1 if self.keys.size else 0


def encode(requests: Sequence[Request]) -> EncodedStream:
    """``requests`` as arrays, with each request's next use of the same key."""
    key_ids: dict[str, int] = {}
    program_ids: dict[str, int] = {}
    keys = np.array([key_ids.setdefault(r.key, len(key_ids)) for r in requests], dtype=np.int64)
    programs = np.array(
        [program_ids.setdefault(r.program, len(program_ids)) for r in requests], dtype=np.int64
    )
    next_use = np.full(len(requests), NEVER, dtype=np.int64)
    seen: dict[int, int] = {}
    for index in range(len(requests) - 1, -1, -1):
        key = int(keys[index])
        if key in seen:
            next_use[index] = seen[key]
        seen[key] = index
    return EncodedStream(
        keys=keys,
        programs=programs,
        sizes=np.array([r.size for r in requests], dtype=np.float64),
        costs=np.array([r.cost for r in requests], dtype=np.float64),
        next_use=next_use,
    )


class CacheState:
    """A cache of ``budget`` entries replaying ``stream``, and what it knows of every key."""

    def __init__(self, stream: EncodedStream, budget: int) -> None:
        self.stream = stream
        self.budget = budget
        keys = stream.distinct
        self.last_use = np.zeros(keys, dtype=np.int64)
        self.prev_use = np.zeros(keys, dtype=np.int64)
        self.first_use = np.zeros(keys, dtype=np.int64)
        self.uses = np.zeros(keys, dtype=np.float64)
        self.size = np.ones(keys, dtype=np.float64)
        self.cost = np.ones(keys, dtype=np.float64)
        self.program = np.zeros(keys, dtype=np.int64)
        self.program_last = np.zeros(int(stream.programs.max()) + 1 if len(stream) else 0)
        self.members = np.zeros(budget, dtype=np.int64)
        self.count = 0
        self.slot: dict[int, int] = {}
        self.program_keys = np.zeros_like(self.program_last)
        self.program_reused = np.zeros_like(self.program_last)

    def observe(self, t: int) -> bool:
        """Count request ``t`` in what the cache knows; return whether it is a hit."""
        key = int(self.stream.keys[t])
        program = self.stream.programs[t]
        if self.uses[key] == 0:
            self.first_use[key] = t
            self.program_keys[program] += 1
        elif self.uses[key] == 1:
            self.program_reused[program] += 1
        self.uses[key] += 1
        self.prev_use[key] = self.last_use[key] if self.uses[key] > 1 else t
        self.last_use[key] = t
        self.program[key] = self.stream.programs[t]
        self.program_last[self.stream.programs[t]] = t
        return key in self.slot

    def state(self, t: int) -> EntryState:
        """What the cache knows of its members at request ``t`` (after observing it)."""
        members = self.members[: self.count]
        programs = self.program[members]
        return EntryState(
            program_reuse=(self.program_reused[programs] + 1) / (self.program_keys[programs] + 2),
            since_use=(t - self.last_use[members]).astype(np.float64),
            since_first=(t - self.first_use[members]).astype(np.float64),
            uses=self.uses[members],
            size=self.size[members],
            cost=self.cost[members],
            since_program=(t - self.program_last[self.program[members]]).astype(np.float64),
            semantic=np.zeros(self.count),
            last_gap=np.where(
                self.uses[members] > 1,
                self.last_use[members] - self.prev_use[members],
                t - self.first_use[members],
            ).astype(np.float64),
        )

    def next_uses(self) -> NDArray[np.int64]:
        """When each member is asked next (the future: only Belady and labels read it)."""
        return self.stream.next_use[self.last_use[self.members[: self.count]]]

    def insert(self, t: int, victim: int | None) -> None:
        """Store request ``t``'s answer, in place of the member at ``victim`` when full."""
        key = int(self.stream.keys[t])
        self.size[key], self.cost[key] = self.stream.sizes[t], self.stream.costs[t]
        if victim is None:
            victim, self.count = self.count, self.count + 1
        else:
            del self.slot[int(self.members[victim])]
        self.members[victim] = key
        self.slot[key] = victim


Policy = Callable[[CacheState, int], int]
"""``policy(cache, t)``: which member (an index into the cache's members) to evict."""


def lru(cache: CacheState, t: int) -> int:
    """Evict the least recently used entry."""
    return int(np.argmin(cache.last_use[cache.members[: cache.count]]))


def lfu(cache: CacheState, t: int) -> int:
    """Evict the least often asked entry (uses counted over the whole stream), oldest first."""
    members = cache.members[: cache.count]
    return int(np.lexsort((cache.last_use[members], cache.uses[members]))[0])


def belady(cache: CacheState, t: int) -> int:
    """Evict the entry whose next use is furthest away (needs the future)."""
    return int(np.argmax(cache.next_uses()))


def scored(score: Callable[[NDArray[np.float64]], NDArray[np.float64]]) -> Policy:
    """Evict the entry of the lowest keep-score, ``score`` mapping features to scores."""

    def policy(cache: CacheState, t: int) -> int:
        return int(np.argmin(score(entry_features(cache.state(t)))))

    return policy


def hit_rate(stream: EncodedStream, budget: int, policy: Policy) -> float:
    """The share of ``stream``'s requests a cache of ``budget`` entries serves under ``policy``."""
    if not len(stream):
        return 0.0
    cache = CacheState(stream, budget)
    hits = 0
    for t in range(len(stream)):
        if cache.observe(t):
            hits += 1
            continue
        cache.insert(t, policy(cache, t) if cache.count == budget else None)
    return hits / len(stream)


@dataclass(frozen=True, slots=True)
class Labelled:
    """Features of cached entries at sampled moments, and whether each was asked again soon."""

    features: NDArray[np.float64]
    labels: NDArray[np.float64]
    times: NDArray[np.int64]


def labelled_entries(
    stream: EncodedStream,
    *,
    budgets: Sequence[int] = TRAINING_BUDGETS,
    points: int = 60,
    rows: int = 16,
    seed: int = 0,
) -> Labelled:
    """Training examples from replaying ``stream`` (see the module), in time order.

    At ``points`` random moments per budget (once the cache is full) up to
    ``rows`` of the cache's entries are taken; an entry's label is 1 when its
    key is asked again within ``budget`` requests. The cache evicts at
    random while replaying, so that it holds old and new, frequent and rare
    entries alike, as no single policy's cache would.
    """
    rng = np.random.default_rng(seed)
    features, labels, times = [], [], []
    for budget in budgets:
        if stream.distinct <= budget:
            continue  # everything fits: nothing is ever evicted at this budget
        cache = CacheState(stream, budget)
        moments = set(rng.choice(len(stream), size=min(points, len(stream)), replace=False))
        for t in range(len(stream)):
            if not cache.observe(t):
                victim = int(rng.integers(cache.count)) if cache.count == budget else None
                cache.insert(t, victim)
            if t in moments and cache.count == budget:
                chosen = rng.choice(budget, size=min(rows, budget), replace=False)
                features.append(entry_features(cache.state(t))[chosen])
                labels.append((cache.next_uses()[chosen] - t <= budget).astype(np.float64))
                times.append(np.full(chosen.size, t, dtype=np.int64))
    if not features:
        return Labelled(np.zeros((0, NUM_FEATURES)), np.zeros(0), np.zeros(0, dtype=np.int64))
    all_times = np.concatenate(times)
    order = np.argsort(all_times, kind="stable")
    return Labelled(
        np.concatenate(features)[order], np.concatenate(labels)[order], all_times[order]
    )
