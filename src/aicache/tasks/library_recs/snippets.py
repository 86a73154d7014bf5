"""Rank the user's own cached answers by how much they concern the current project.

"You asked this before": a cached command (``claude -p "how do I ..."``) that
names one of the project's libraries, or a library the global model says goes
with them, comes first. The global model decides how much a library that the
project does not use yet counts; the cached texts are read here, on the
machine, and go nowhere.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from aicache.features.project_deps import IMPORT_TO_DISTRIBUTION, normalise
from aicache.tasks.base import Params
from aicache.tasks.library_recs.model import scores
from aicache.tasks.library_recs.vocabulary import ids_of, index, vocabulary

_WORD = re.compile(r"[A-Za-z][A-Za-z0-9_.-]*[A-Za-z0-9]|[A-Za-z]")
OWN_WEIGHT = 1.0  # a library the project uses
RELATED_WEIGHT = 0.5  # at most, for the library the model finds closest to the project
RECENCY_WEIGHT = 0.2
MIN_RELEVANCE = 0.05
RECENCY_DAYS = 30.0
# Names too common as English words to mean the package when a question uses them.
AMBIGUOUS = frozenset(
    {"requests", "click", "rich", "six", "mock", "attrs", "future", "packaging", "pip", "wheel",
     "setuptools", "toml", "jinja2", "idna", "certifi", "colorama", "tqdm", "typing"}
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class CachedQuestion:
    """One cached answer as the ranking sees it: its key, command text, age and uses."""

    key: str
    text: str
    created_at: float
    hits: int = 0


@dataclass(frozen=True, slots=True)
class RankedQuestion:
    """A cached answer with its relevance to the project and why."""

    key: str
    text: str
    score: float
    libraries: tuple[str, ...]
    reason: str


def mentioned_libraries(text: str) -> list[str]:
    """The vocabulary packages a text names (by package or import name), in order."""
    known = index()
    found: list[str] = []
    for word in _WORD.findall(text):
        name = normalise(IMPORT_TO_DISTRIBUTION.get(word, word))
        if name in known and name not in AMBIGUOUS and name not in found:
            found.append(name)
    return found


def rank_cached(
    params: Params,
    dependencies: Sequence[str],
    questions: Sequence[CachedQuestion],
    *,
    now: float,
    n: int = 10,
) -> list[RankedQuestion]:
    """The ``n`` cached answers most relevant to a project with ``dependencies``, best first.

    Only answers that name a library count: one of the project's own
    (:data:`OWN_WEIGHT`), or another the global model relates to them (up to
    :data:`RELATED_WEIGHT`, in proportion to its probability); newer and
    more used answers break ties.
    """
    ids, _ = ids_of(list(dependencies))
    own = {vocabulary()[i] for i in ids}
    score = scores(params, [np.asarray(ids, dtype=np.int64)])[0]
    finite = np.where(np.isfinite(score), score, -np.inf)
    related = np.exp(finite - finite.max())  # 1 for the model's first choice, less for others
    ranked: list[RankedQuestion] = []
    for question in questions:
        libraries = mentioned_libraries(question.text)
        if not libraries:
            continue
        weight = 0.0
        for name in libraries:
            weight += OWN_WEIGHT if name in own else RELATED_WEIGHT * float(related[index()[name]])
        if weight < MIN_RELEVANCE:  # about libraries this project has nothing to do with
            continue
        age_days = max(now - question.created_at, 0.0) / 86400
        weight += RECENCY_WEIGHT * math.exp(-age_days / RECENCY_DAYS) + 0.01 * math.log1p(
            question.hits
        )
        mine = [name for name in libraries if name in own]
        reason = (
            f"about {', '.join(mine)}, which this project uses"
            if mine
            else f"about {', '.join(libraries[:2])}, which the global model relates to this project"
        )
        ranked.append(RankedQuestion(question.key, question.text, weight, tuple(libraries), reason))
    ranked.sort(key=lambda r: r.score, reverse=True)
    return ranked[:n]
