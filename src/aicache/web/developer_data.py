"""What the developer's page shows and does, through the functions the CLI calls.

Reads: the cache's statistics (``aicache stats``), savings per tool and week,
the largest and oldest entries (``aicache list``), the models in use
(``aicache models``), what left this machine (``aicache privacy report``)
and suggestions (``aicache suggest``). Actions: ``clear``, ``prune``,
``privacy export``, ``privacy forget`` and ``leave``. The store is opened
for each answer and closed after it, so ``forget`` leaves nothing open.
"""

from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from aicache.deploy.node import NodeHome
from aicache.deploy.serving import served_model, suggest_next
from aicache.errors import AicacheError
from aicache.local import cache as cache_ops
from aicache.local.eviction import Budget, current_scorer, enforce_budget
from aicache.local.paths import REGISTRY_DIRNAME, ensure_private_dir
from aicache.local.privacy import export_data, forget
from aicache.local.semantic_store import prune_feedback, semantic_stats
from aicache.local.settings import Settings
from aicache.local.stats import WEEK_S, cache_stats, weekly_savings
from aicache.local.store import Store
from aicache.registry import ModelRegistry
from aicache.tasks.spec import all_specs

WEEKS_SHOWN = 12
TOP_ENTRIES = 10


class DeveloperData:
    """The developer page's reads and actions over the aicache home ``home``."""

    def __init__(self, home: Path) -> None:
        self.home = home

    def _store(self) -> Store:
        return Store.open(self.home)

    @property
    def registry_root(self) -> Path:
        """The serving registry (what ``suggest`` and ``privacy report`` read)."""
        return ensure_private_dir(self.home) / REGISTRY_DIRNAME

    # Reads --------------------------------------------------------------------

    def overview(self) -> dict[str, Any]:
        """Statistics, weekly savings, the largest and oldest entries."""
        now = time.time()
        with self._store() as store:
            stats = cache_stats(store)
            meaning = semantic_stats(store)
            weeks = weekly_savings(store, since=now - WEEKS_SHOWN * WEEK_S)
            entries = cache_ops.list_entries(store)

        def entry(e: cache_ops.EntrySummary) -> dict[str, Any]:
            return {
                "key": e.key[:12],
                "tool": e.tool,
                "command": " ".join(e.argv),
                "bytes": e.size,
                "created_at": e.created_at,
                "hits": e.hits,
            }

        return {
            "total": stats.total.as_dict(),
            "tools": [t.as_dict() for t in stats.tools],
            "entries": stats.entries,
            "entry_bytes": stats.entry_bytes,
            "hits": {
                "exact": stats.total.hits - meaning.hits,
                "semantic": meaning.hits,
                "semantic_wrong": meaning.wrong,
            },
            "weeks": [asdict(w) for w in weeks],
            "largest": [entry(e) for e in sorted(entries, key=lambda e: -e.size)[:TOP_ENTRIES]],
            "oldest": [entry(e) for e in sorted(entries, key=lambda e: e.created_at)[:TOP_ENTRIES]],
        }

    def models(self) -> dict[str, Any]:
        """Per task: the model in use and where it comes from; and suggestions, if any."""
        rows: list[dict[str, Any]] = []
        for spec in all_specs():
            try:
                model = served_model(spec.name, self.home)
            except AicacheError as exc:
                rows.append(
                    {"task": spec.name, "version": None, "origin": None, "note": exc.message}
                )
                continue
            rows.append(
                {
                    "task": spec.name,
                    "version": model.version,
                    "origin": model.origin,
                    "epsilon": model.privacy.get("epsilon"),
                    "note": "",
                }
            )
        suggestions: list[str] = []
        try:
            with self._store() as store:
                found = suggest_next(store, self.registry_root, k=5)
            suggestions = [s.shown for s in found.suggestions]
        except AicacheError:
            pass  # no model, or no history yet: the page says there is nothing to suggest
        return {"models": rows, "suggestions": suggestions}

    def privacy(self) -> dict[str, Any]:
        """What left this machine, per task and run, with ε (``aicache privacy report``)."""
        node = NodeHome(self.home)
        with ModelRegistry(self.registry_root) as registry:
            rows = node.privacy_report(registry)
        status = node.status()
        return {
            "joined": status.get("joined", False),
            "running": status.get("running", False),
            "federation": status.get("federation"),
            "tasks": rows,
        }

    # Actions (the CLI's own functions) ---------------------------------------------

    def clear(self) -> dict[str, Any]:
        """``aicache clear``: delete every cache entry."""
        with self._store() as store:
            return {"deleted": cache_ops.clear(store)}

    def prune(self) -> dict[str, Any]:
        """``aicache prune``: expired and old entries, then the size budget."""
        with self._store() as store:
            settings = Settings.from_stored(store.settings())
            now = time.time()
            result = cache_ops.prune(store, now=now, max_age_s=settings.max_age_s)
            prune_feedback(store, now=now, max_age_s=settings.max_age_s)
            budget = Budget(settings.max_entries, settings.max_size)
            evicted = (
                enforce_budget(store, budget, current_scorer(store)) if budget.limited else None
            )
        return {
            "expired": result.expired,
            "aged": result.aged,
            "raw_cleared": result.raw_cleared,
            "evicted": 0 if evicted is None else evicted.evicted,
        }

    def export(self) -> dict[str, object]:
        """``aicache privacy export``: everything kept about the user."""
        with self._store() as store:
            return export_data(store, self.home)

    def forget(self) -> dict[str, Any]:
        """``aicache privacy forget``: erase the store, its copies and personal model state."""
        erased = forget(self.home)
        return {"erased": [{"path": str(e.path), "what": e.what} for e in erased]}

    def leave(self) -> dict[str, Any]:
        """``aicache leave``: stop this machine's node."""
        return {"left": NodeHome(self.home).leave()}
