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
from pathlib import Path
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
    """The served cache-keep model of ``store``'s home as a scorer; LRU, saying why, without one.

    The serving order is :func:`aicache.deploy.serving.serving_model`'s; when
    the home's registry holds no version of the task, the shipped model is
    read directly, without loading the deployment layer (Flower, gRPC): this
    runs on a miss past the budget, before the command's answer is returned.
    """
    registry_root = store.path.parent / REGISTRY_DIRNAME
    try:
        if _has_versions(registry_root):
            from aicache.deploy.serving import serving_model

            model = serving_model(registry_root, TASK)
            return LearnedScorer(model.params, model.label)
        from aicache.registry.shipped import shipped_model
        from aicache.tasks.base import ensure_compatible

        shipped = shipped_model(TASK)
        if shipped is None:
            return LruScorer(f"no {TASK} model came with this install")
        ensure_compatible(TASK, shipped.arrays)
        return LearnedScorer(shipped.arrays, "the shipped model")
    except ImportError as exc:  # a partial install: the cache still works
        return LruScorer(f"the learned keep-score cannot load here: {exc}")
    except AicacheError as exc:
        return LruScorer(f"no usable {TASK} model: {exc.message}")


def _has_versions(registry_root: Path) -> bool:
    """Whether the registry at ``registry_root`` holds a version of the task (it is not created)."""
    if not registry_root.is_dir():
        return False
    from aicache.registry import ModelRegistry

    with ModelRegistry(registry_root) as registry:
        return registry.latest(TASK) is not None
