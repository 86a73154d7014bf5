"""Semantic hits for the cache: the model side of ``aicache run``'s miss path.

The cache (:mod:`aicache.local.semantic_run`) asks two things: a vector for a
prompt, stored with its cached answer, and, for a new prompt, which cached
prompt of the same frame to serve, if any. :class:`SemanticServing` answers
both: it embeds with the sentence embedder, shortlists the nearest cached
prompts by cosine (brute force over the stored vectors: a matrix product), and
asks the learned pair decision about the shortlist only; the decision's model
loads on the first shortlist, so a miss with no near prompt never loads it.

Vectors are stored as little-endian float16 (768 bytes for 384 dimensions):
half the size of float32, and their cosines agree to about 1e-3, far inside
what separates a paraphrase from a near miss.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

from aicache.tasks.semantic_hit.decision import COSINE_FLOOR

# Cached prompts the decision sees per lookup, nearest first.
SHORTLIST = 5
_STORED = np.dtype("<f2")


class SentenceEmbedder(Protocol):
    """What serving needs of :class:`aicache.features.embedding.Embedder`."""

    def embed(self, texts: Sequence[str]) -> NDArray[np.float32]:
        """Unit sentence vectors, one row per text."""
        ...


class Judged(Protocol):
    """One verdict of the pair decision (``Judgement``)."""

    @property
    def score(self) -> float:
        """How sure the decision is that the cached answer fits (higher is surer)."""
        ...

    @property
    def serve(self) -> bool:
        """Whether the cache would serve it."""
        ...


class PairJudge(Protocol):
    """What serving needs of the semantic-hit task's ``PairDecision``."""

    def judge(
        self,
        query: str,
        candidates: Sequence[str],
        *,
        query_vector: NDArray[np.floating] | None = None,
        candidate_vectors: NDArray[np.floating] | None = None,
    ) -> Sequence[Judged]:
        """One verdict per cached prompt, for the question ``query``; the sentence
        vectors, when given, spare embedding the texts again."""
        ...


class StoredPrompt(Protocol):
    """A cached prompt as the store hands it over (``SemanticCandidate``)."""

    @property
    def prompt(self) -> str:
        """The cached prompt's text."""
        ...

    @property
    def vector(self) -> bytes:
        """Its vector, as :func:`encode` wrote it."""
        ...


def encode(vector: NDArray[np.float32]) -> bytes:
    """A unit vector as the store keeps it."""
    return np.asarray(vector, dtype=_STORED).tobytes()


def decode(blobs: Sequence[bytes], dimension: int) -> NDArray[np.float32]:
    """Stored vectors as one float32 matrix, one row per blob."""
    matrix = np.frombuffer(b"".join(blobs), dtype=_STORED).reshape(len(blobs), dimension)
    return matrix.astype(np.float32)


def shortlist(
    query: NDArray[np.float32], matrix: NDArray[np.float32], *, size: int, floor: float
) -> list[int]:
    """Rows of ``matrix`` nearest to ``query`` by cosine (unit rows), best first, at most
    ``size`` of them and none below ``floor``."""
    if not len(matrix):
        return []
    cosines = matrix @ query
    size = min(size, len(cosines))
    top = np.argpartition(-cosines, size - 1)[:size]
    top = top[np.argsort(-cosines[top], kind="stable")]
    return [int(i) for i in top if cosines[i] >= floor]


class SemanticServing:
    """The cache's semantic lookup (``aicache.local.semantic_store.SemanticLookup``).

    Parameters
    ----------
    embedder
        The sentence embedder.
    decision
        Loads the pair decision (the served semantic-hit model); called once,
        on the first lookup with a shortlist.
    size
        Cached prompts the decision judges per lookup.
    floor
        The cosine below which a cached prompt is not shortlisted.
    """

    def __init__(
        self,
        embedder: SentenceEmbedder,
        decision: Callable[[], PairJudge],
        *,
        size: int = SHORTLIST,
        floor: float = COSINE_FLOOR,
    ) -> None:
        if size < 1:
            raise ValueError(f"invalid shortlist size {size}: use 1 or more")
        self._embedder = embedder
        self._load_decision = decision
        self._decision: PairJudge | None = None
        self._size = size
        self._floor = floor

    def vector(self, prompt: str) -> bytes:
        """The stored form of ``prompt``'s sentence vector."""
        return encode(self._embedder.embed([prompt])[0])

    def choose(
        self, prompt: str, vector: bytes, candidates: Sequence[StoredPrompt]
    ) -> tuple[int, float] | None:
        """The candidate to serve for ``prompt`` and the decision's score, or ``None``.

        Of the shortlisted candidates the decision accepts, the one it scores
        highest is served.
        """
        if not candidates:
            return None
        query = np.frombuffer(vector, dtype=_STORED).astype(np.float32)
        matrix = decode([c.vector for c in candidates], len(query))
        rows = shortlist(query, matrix, size=self._size, floor=self._floor)
        if not rows:
            return None
        if self._decision is None:
            self._decision = self._load_decision()
        verdicts = self._decision.judge(
            prompt,
            [candidates[i].prompt for i in rows],
            query_vector=query,
            candidate_vectors=matrix[rows],
        )
        accepted = [(v.score, i) for v, i in zip(verdicts, rows, strict=True) if v.serve]
        if not accepted:
            return None
        score, index = max(accepted, key=lambda pair: pair[0])
        return index, float(score)


__all__ = [
    "COSINE_FLOOR",
    "SHORTLIST",
    "PairJudge",
    "SemanticServing",
    "SentenceEmbedder",
    "decode",
    "encode",
    "shortlist",
]
