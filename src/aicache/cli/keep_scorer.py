"""The learned keep-score the cache's budget evicts by, supplied to the local layer.

The local layer knows no model (see :mod:`aicache.local.eviction`): the
command line registers :func:`learned_scorer` as its provider, which loads
the served ``cache-keep`` model (pinned, newest, else shipped; see
:mod:`aicache.deploy.serving`) only when a cache is past its budget. This
module imports nothing heavy at import time: ``aicache run`` registers it on
every call, and a cache hit must stay fast.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from aicache.errors import AicacheError
from aicache.local.eviction import EntryStats, KeepScorer, LruScorer
from aicache.local.paths import REGISTRY_DIRNAME
from aicache.local.store import Store

TASK = "cache-keep"


@dataclass(frozen=True, slots=True)
class LearnedScorer:
    """Scores entries with a cache-keep model's parameters."""

    params: list[Any]
    label: str

    @property
    def description(self) -> str:
        """``the learned keep-score (the shipped model)``."""
        return f"the learned keep-score ({self.label})"

    def keep_scores(self, entries: Sequence[EntryStats]) -> list[float]:
        """The model's log-odds that each entry is asked again soon."""
        import numpy as np

        from aicache.tasks.cache_keep import EntryState, entry_features, logits

        def column(name: str) -> Any:
            return np.array([float(getattr(e, name)) for e in entries], dtype=np.float64)

        state = EntryState(
            since_use=column("since_use"),
            since_first=column("since_first"),
            uses=column("uses"),
            size=column("size"),
            cost=column("duration_s"),
            since_program=column("since_program"),
            semantic=column("semantic"),
            last_gap=column("last_gap"),
            program_reuse=column("program_reuse"),
        )
        return [float(z) for z in logits(self.params, entry_features(state))]


def learned_scorer(store: Store) -> KeepScorer:
    """The served cache-keep model of ``store``'s home as a scorer; LRU, saying why, without one."""
    try:
        from aicache.deploy.serving import serving_model

        model = serving_model(store.path.parent / REGISTRY_DIRNAME, TASK)
    except ImportError as exc:  # a partial install: the cache still works
        return LruScorer(f"the learned keep-score cannot load here: {exc}")
    except AicacheError as exc:
        return LruScorer(f"no usable {TASK} model: {exc.message}")
    return LearnedScorer(model.params, model.label)
