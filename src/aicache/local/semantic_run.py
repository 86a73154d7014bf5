"""Semantic hits on the miss path of ``aicache run``.

When the exact key misses and the command carries a prompt (where the
adapter table says it is, or after a prefix of the ``semantic-commands``
setting), the prompt is compared with the cached prompts of the same frame
(see :mod:`aicache.local.semantic_store`) and a learned decision says whether
one of their answers fits. A served semantic hit is replayed like an exact
hit, plus one line on stderr naming the cached prompt and the score. Without
the embedding model the cache answers exact repeats only and says so once.

Imported on a miss only, never on an exact hit.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TypeVar

from aicache.errors import AicacheError
from aicache.local import semantic_store as semantic
from aicache.local.adapters import Invocation, Kind
from aicache.local.cache import CacheKey, lookup, make_key
from aicache.local.process import write_all
from aicache.local.secrets import redact_argv
from aicache.local.semantic_index import FrameLookup
from aicache.local.settings import Settings
from aicache.local.store import Store

# Stands for the prompt in a command's frame.
_PROMPT = "\0prompt"
# How much of a cached prompt the stderr line quotes.
_QUOTED = 80
_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class SemanticQuery:
    """A prompt asked on a miss, and the frame its matches must share.

    Attributes
    ----------
    tool
        The program's basename.
    frame
        The key of the command with the prompt left out.
    scope
        The scope of the key (``project``, ``dir``, ``global``).
    prompt
        The prompt as the store keeps it: secret values hashed.
    """

    tool: str
    frame: str
    scope: str
    prompt: str


def prompt_places(
    argv: tuple[str, ...], invocation: Invocation, settings: Settings
) -> tuple[int, ...]:
    """The argv indexes that hold the prompt: the adapter table's, else a ``semantic-commands``
    prefix's (the words after it up to the first option, so that ``-m MODEL`` after the
    prompt stays in the frame), else none (the call stays exact-only)."""
    if invocation.kind is Kind.PROMPT and invocation.adapter is not None:
        return invocation.prompt_at
    if invocation.adapter is not None:
        return ()
    words = [argv[0].rstrip("/").rsplit("/", 1)[-1], *argv[1:]]
    for mark in settings.semantic_commands:
        wanted = mark.split()
        if words[: len(wanted)] == wanted and len(words) > len(wanted):
            places = []
            for index in range(len(wanted), len(words)):
                if words[index].startswith("-"):
                    break
                places.append(index)
            return tuple(places)
    return ()


def semantic_query(
    key: CacheKey, places: tuple[int, ...], stdin: bytes | None, scope: str, *, secret: bytes
) -> SemanticQuery | None:
    """The query of a miss on ``key`` whose prompt is at ``places``, or ``None`` without one."""
    argv = key.argv
    if not places or any(i <= 0 or i >= len(argv) for i in places):
        return None
    stored = redact_argv(argv, secret)
    prompt = " ".join(stored[i] for i in places).strip()
    if not prompt:
        return None
    # The prompt's words leave the argv and one mark stands for them all, so that
    # prompts of any length, given in one word or several, share the frame.
    at = set(places)
    frame_argv = [word for i, word in enumerate(argv) if i not in at] + [_PROMPT]
    frame = make_key(frame_argv, stdin, key.context, secret=secret).digest
    return SemanticQuery(key.tool, frame, scope, prompt)


@dataclass(frozen=True, slots=True)
class SemanticHit:
    """A cached answer chosen for a reworded prompt."""

    candidate: semantic.SemanticCandidate
    score: float


@dataclass(slots=True)
class SemanticCall:
    """The semantic side of one ``aicache run`` call: the query, and the model once loaded.

    The model loads at most once per call and only when needed; a vector
    computed for the lookup is reused to index the answer the miss stores.
    """

    query: SemanticQuery
    provider: semantic.SemanticProvider
    model: semantic.SemanticLookup | None = None
    vector: bytes | None = None
    unavailable: bool = False
    broken: bool = False

    def _lookup(self, store: Store) -> semantic.SemanticLookup | None:
        if self.model is None and not self.unavailable:
            self.model = self._guarded(store, self.provider)
            if self.model is not None:
                _forget_notice(store)
        return self.model

    def _vector(self, store: Store) -> bytes | None:
        model = self._lookup(store)
        # Not after a failure: one warning per call (a missing decision still gives vectors).
        if model is not None and self.vector is None and not self.broken:
            self.vector = model.vector(self.query.prompt)
        return self.vector

    def find(self, store: Store, now: float) -> SemanticHit | None:
        """The cached answer to serve for the query, or ``None``.

        A question asked again soon after a semantic hit marks that hit wrong
        and is not served semantically again: the tool runs.
        """
        query = self.query
        if semantic.mark_asked_again(
            store,
            frame=query.frame,
            query_prompt=query.prompt,
            reason="re-ask",
            within_s=semantic.REASK_S,
            now=now,
        ):
            return None
        whole = self._lookup(store)
        if isinstance(whole, FrameLookup):  # a warm service: it holds the frame's vectors
            near = self._guarded(store, lambda: whole.nearest(query.frame, query.prompt, now))
            if near is None:
                return None
            self.vector = near.vector
            return None if near.match is None else SemanticHit(near.match, near.score)
        found = semantic.candidates(store, query.frame, query.prompt, now)
        vector = self._guarded(store, lambda: self._vector(store))
        if not found or vector is None or self.model is None:
            return None
        model = self.model
        chosen = self._guarded(store, lambda: model.choose(query.prompt, vector, found))
        if chosen is None:
            return None
        index, score = chosen
        return SemanticHit(found[index], score)

    def index(self, store: Store, key: str) -> None:
        """Keep the query's vector for the answer just stored under ``key``."""
        if semantic.is_indexed(store, key):
            return  # a refresh of an indexed prompt: same prompt, same vector
        vector = self._guarded(store, lambda: self._vector(store))
        if vector is not None:
            semantic.index_entry(
                store,
                key=key,
                frame=self.query.frame,
                tool=self.query.tool,
                scope=self.query.scope,
                prompt=self.query.prompt,
                vector=vector,
            )

    def served(self, store: Store, hit: SemanticHit) -> None:
        """Keep the feedback row of ``hit``, just served for the query."""
        semantic.record_hit(
            store,
            tool=self.query.tool,
            frame=self.query.frame,
            query_prompt=self.query.prompt,
            cached=hit.candidate,
            score=hit.score,
        )

    def refreshed(self, store: Store, now: float) -> None:
        """A ``--refresh`` of the query: its recent semantic hit, if any, was wrong."""
        semantic.mark_asked_again(
            store,
            frame=self.query.frame,
            query_prompt=self.query.prompt,
            reason="refresh",
            within_s=semantic.REFRESH_S,
            now=now,
        )

    def _guarded(self, store: Store, step: Callable[[], _T]) -> _T | None:
        try:
            return step()
        except AicacheError as exc:
            self.unavailable = True
            _say_unavailable_once(store, exc)
        except Exception as exc:  # a broken model must never cost the user the answer
            self.unavailable = self.broken = True
            sys.stderr.write(
                f"aicache: warning: semantic lookup failed ({type(exc).__name__}: {exc}); "
                "answering exact repeats only for this call\n"
            )
        return None


def serve(
    store: Store, call: SemanticCall, key: CacheKey, started: float
) -> tuple[SemanticHit, bytes, bytes, int, float] | None:
    """Find and write a semantic hit for ``key``'s miss; its parts, or ``None`` on a miss.

    Returns the hit, the answer's stdout and stderr, its exit code and the
    seconds it saved.
    """
    now = time.time()
    hit = call.find(store, now)
    if hit is None:
        return None
    answer = lookup(store, replace(key, digest=hit.candidate.key), now)
    if answer is None:  # deleted or expired since the candidates were read
        return None
    write_all(1, answer.stdout)
    write_all(2, answer.stderr)
    write_all(2, hit_note(hit))
    saved = max(0.0, answer.duration_s - (time.monotonic() - started))
    return hit, answer.stdout, answer.stderr, answer.exit_code, saved


def hit_note(hit: SemanticHit) -> bytes:
    """The one stderr line of a semantic hit: which cached prompt it matched, and the score."""
    cached = " ".join(hit.candidate.prompt.split())
    if len(cached) > _QUOTED:
        cached = cached[: _QUOTED - 3] + "..."
    return (
        f'aicache: semantic hit (score {hit.score:.2f}): the cached answer to "{cached}" '
        "(`aicache wrong` if it does not fit; --exact to run it)\n"
    ).encode("utf-8", "replace")


def _say_unavailable_once(store: Store, exc: AicacheError) -> None:
    if store.get_setting(semantic.NOTICE_KEY) is not None:
        return
    hint = f" {exc.hint}" if exc.hint else ""
    sys.stderr.write(
        f"aicache: semantic hits are off, the cache answers exact repeats only: "
        f"{exc.message.rstrip('.')}.{hint} "
        "(said once; `aicache config set semantic off` turns them off for good)\n"
    )
    store.set_setting(semantic.NOTICE_KEY, exc.message)


def _forget_notice(store: Store) -> None:
    # Available again: should it go missing later, that is said once more.
    if store.get_setting(semantic.NOTICE_KEY) is not None:
        with store.write() as conn:
            conn.execute("DELETE FROM settings WHERE key = ?", (semantic.NOTICE_KEY,))


__all__ = [
    "SemanticCall",
    "SemanticHit",
    "SemanticQuery",
    "hit_note",
    "prompt_places",
    "semantic_query",
    "serve",
]
