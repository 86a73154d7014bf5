"""The user's verdicts on semantic hits, from the private store: what the semantic-hit
task trains on at a node.

A served semantic hit is recorded by the cache (``aicache.local.semantic_store``)
with the question, the cached prompt it matched and whether it turned out
wrong (a ``--refresh``, the same question asked again soon, ``aicache wrong``).
Until a store has that table there is nothing to read, and no example.
"""

from __future__ import annotations

import hashlib
import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aicache.local.store import Store

FEEDBACK_MODULE = "aicache.local.semantic_store"


@dataclass(frozen=True, slots=True)
class Verdict:
    """One served semantic hit and what the user made of it.

    Attributes
    ----------
    query
        The question asked.
    cached_prompt
        The cached prompt whose answer was served.
    wrong
        Whether the user showed it was the wrong answer.
    """

    query: str
    cached_prompt: str
    wrong: bool


def _reader() -> Any:
    """The store's reader of verdicts, or ``None`` on a version of the cache without one."""
    try:
        module = importlib.import_module(FEEDBACK_MODULE)
    except ImportError:
        return None
    return getattr(module, "read_feedback", None)


def verdicts_from_home(home: Path) -> list[Verdict]:
    """Every verdict of the store of the aicache home ``home``, oldest first."""
    reader = _reader()
    if reader is None:
        return []
    with Store.open(home) as store:
        rows = reader(store)
        return [Verdict(str(r.query), str(r.cached_prompt), bool(r.wrong)) for r in rows]


def verdicts_version(home: Path) -> str:
    """A key that changes whenever the verdicts of ``home``'s store do."""
    digest = hashlib.sha256()
    for verdict in verdicts_from_home(home):
        digest.update(f"{verdict.query}\0{verdict.cached_prompt}\0{verdict.wrong}\n".encode())
    return digest.hexdigest()[:32]
