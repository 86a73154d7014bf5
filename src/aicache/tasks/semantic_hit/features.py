"""Features of a (question, cached prompt) pair: what the decision learns from.

Signals that carry from one population of questions to another: how close the
two sentence embeddings are (the cosine GPTCache thresholds), how well each
word of one finds a match in the other (BERTScore-style precision, recall and
F from contextual word-piece vectors), the worst-matched content word of each
side (a different object: "local" against "remote" branch), word overlap, and
mismatches a cosine hardly sees: other numbers, other command-line flags, a
negation on one side only, opposite words on the two sides ("first" against
"last": their word vectors are close, their answers are not). Texts go in, a
row of numbers comes out: the only thing of a pair a client keeps for training.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

FEATURE_NAMES: tuple[str, ...] = (
    "cosine",
    "bert_precision",
    "bert_recall",
    "bert_f",
    "worst_query_word",
    "worst_cached_word",
    "word_jaccard",
    "content_jaccard",
    "number_mismatch",
    "flag_mismatch",
    "negation_mismatch",
    "opposite_words",
    "length_gap",
)
NUM_FEATURES = len(FEATURE_NAMES)
COSINE = FEATURE_NAMES.index("cosine")

_WORD = re.compile(r"(?<![\w-])-{1,2}[a-z][\w-]*|[a-z0-9]+(?:['.][a-z0-9]+)*")
_NUMBER = re.compile(r"\d+(?:\.\d+)?")
_FLAG = re.compile(r"(?<![\w-])-{1,2}[a-zA-Z][\w-]*")
NEGATIONS = frozenset(
    "not no never without don't dont doesn't isn't aren't can't cannot won't "
    "except excluding exclude nor none non".split()
)
STOPWORDS = frozenset(
    "a an the of to in on for and or is are be how do does i my me we our you your it "
    "its this that these those what which with from by as at can could should would "
    "please want need get using use into all any some way there here".split()
)
OPPOSITES: tuple[tuple[frozenset[str], frozenset[str]], ...] = tuple(
    (frozenset(a.split()), frozenset(b.split()))
    for a, b in (
        ("first initial earliest oldest", "last latest final newest recent"),
        ("old older", "new newer"),
        ("local locally", "remote remotely origin upstream"),
        ("install", "uninstall"),
        ("enable", "disable"),
        ("add", "remove delete"),
        ("start launch", "stop halt"),
        ("push", "pull fetch"),
        ("upload", "download"),
        ("encrypt", "decrypt"),
        ("compress pack", "decompress unpack extract"),
        ("before", "after"),
        ("staged", "unstaged"),
        ("stage", "unstage"),
        ("tracked", "untracked"),
        ("increase", "decrease reduce"),
        ("show", "hide"),
        ("visible", "hidden"),
        ("open", "close"),
        ("lock", "unlock"),
        ("mount", "unmount umount"),
        ("import", "export"),
        ("min minimum", "max maximum"),
        ("largest biggest", "smallest"),
        ("larger bigger greater", "smaller fewer"),
        ("ascending", "descending"),
        ("input", "output"),
        ("public", "private"),
        ("inside", "outside"),
        ("inbound incoming", "outbound outgoing"),
        ("set", "unset"),
        ("allow", "deny block"),
        ("true", "false"),
        ("global globally system-wide", "user"),
        ("read", "write"),
        ("sync synchronous", "async asynchronous"),
        ("serialize", "deserialize"),
        ("encode", "decode"),
        ("connect", "disconnect"),
        ("login", "logout"),
        ("include including", "exclude excluding"),
        ("merged", "unmerged"),
        ("uppercase upper", "lowercase lower"),
        ("horizontal horizontally", "vertical vertically"),
        ("left", "right"),
        ("next", "previous"),
        ("above", "below"),
        ("forward forwards", "backward backwards"),
        ("success", "failure"),
        ("client", "server"),
        ("source", "destination"),
    )
)
"""Pairs of word groups with opposite meanings in developer questions. A pair
whose one side has a word of a group and whose other side has a word of the
opposite group, neither having both, asks something else. Curated by hand from
common opposites of developer questions, not from any data set's errors;
words are matched after lower-casing and stripping a plural or past "s"/"ed"
only where the stripped form is in a group."""
_OPPOSITE_WORDS = frozenset().union(*(a | b for a, b in OPPOSITES))


def _normal(word: str) -> str:
    """``word`` as the opposites list spells it: "commits" -> "commit", "pushed" -> "push"."""
    if word in _OPPOSITE_WORDS:
        return word
    for ending in ("es", "s", "ed", "d", "ing"):
        stem = word.removesuffix(ending)
        if stem != word and stem in _OPPOSITE_WORDS:
            return stem
    return word


def opposite_words(a: set[str], b: set[str]) -> bool:
    """Whether one side says a word whose opposite (:data:`OPPOSITES`) only the other says."""
    na, nb = {_normal(w) for w in a}, {_normal(w) for w in b}
    only_a, only_b = na - nb, nb - na
    for left, right in OPPOSITES:
        one = bool(only_a & left) and bool(only_b & right) and not na & right and not nb & left
        other = bool(only_a & right) and bool(only_b & left) and not na & left and not nb & right
        if one or other:
            return True
    return False


# Word pieces the tokenizer splits punctuation into: they match anything a little.
_PIECE = re.compile(r"^(##)?[a-z0-9]+$")


class PairEmbedder(Protocol):
    """What the features need of an embedder (:mod:`aicache.features.embedding`'s)."""

    def embed(self, texts: Sequence[str]) -> NDArray[np.float32]:
        """Unit sentence vectors, one row per text."""
        ...

    def token_vectors(self, texts: Sequence[str]) -> list[tuple[list[str], NDArray[np.float32]]]:
        """Each text's word pieces and their unit contextual vectors."""
        ...


def words(text: str) -> list[str]:
    """Lower-cased words, numbers and flags of ``text``."""
    return _WORD.findall(text.lower())


def _jaccard(a: set[str], b: set[str]) -> float:
    union = a | b
    return len(a & b) / len(union) if union else 1.0


def text_signals(query: str, cached: str) -> list[float]:
    """The features read from the texts alone (overlap and mismatches), in order."""
    wa, wb = words(query), words(cached)
    sa, sb = set(wa), set(wb)
    content_a, content_b = sa - STOPWORDS, sb - STOPWORDS
    numbers = set(_NUMBER.findall(query)) != set(_NUMBER.findall(cached))
    flags = set(_FLAG.findall(query)) != set(_FLAG.findall(cached))
    negation = bool(sa & NEGATIONS or any(w.endswith("n't") for w in sa)) != bool(
        sb & NEGATIONS or any(w.endswith("n't") for w in sb)
    )
    gap = min(abs(math.log((len(wa) + 1) / (len(wb) + 1))), 3.0)
    return [
        _jaccard(sa, sb),
        _jaccard(content_a, content_b),
        float(numbers),
        float(flags),
        float(negation),
        float(opposite_words(sa, sb)),
        gap,
    ]


def _content_rows(tokens: Sequence[str]) -> NDArray[np.int64]:
    rows = [
        i
        for i, token in enumerate(tokens)
        if _PIECE.match(token) and token.removeprefix("##") not in STOPWORDS
    ]
    return np.asarray(rows, dtype=np.int64)


def token_signals(
    query: tuple[list[str], NDArray[np.float32]], cached: tuple[list[str], NDArray[np.float32]]
) -> list[float]:
    """BERTScore-style precision, recall, F and each side's worst-matched content word."""
    (tokens_a, va), (tokens_b, vb) = query, cached
    if not len(tokens_a) or not len(tokens_b):
        return [0.0, 0.0, 0.0, 0.0, 0.0]
    sim = np.asarray(va, dtype=np.float64) @ np.asarray(vb, dtype=np.float64).T
    best_a, best_b = sim.max(axis=1), sim.max(axis=0)
    recall, precision = float(best_a.mean()), float(best_b.mean())
    f = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    content_a, content_b = _content_rows(tokens_a), _content_rows(tokens_b)
    worst_a = float(best_a[content_a].min()) if content_a.size else 1.0
    worst_b = float(best_b[content_b].min()) if content_b.size else 1.0
    return [precision, recall, f, worst_a, worst_b]


Encoded = tuple[NDArray[np.float64], tuple[list[str], NDArray[np.float32]]]
_CACHE: dict[tuple[int, str], Encoded] = {}
CACHE_TEXTS = 4096  # about 30 kB a text: a bound of some 120 MB


def _encode(embedder: PairEmbedder, texts: Sequence[str]) -> dict[str, Encoded]:
    """Each text's sentence vector and word-piece vectors, computed once per process.

    The same questions come back (a client's data is loaded for each of its
    splits, the cache compares a new question with the same entries), and
    embedding is the whole cost of a pair.
    """
    owner = id(embedder)
    found = {t: _CACHE[(owner, t)] for t in texts if (owner, t) in _CACHE}
    missing = [t for t in texts if t not in found]
    if missing:
        vectors = np.asarray(embedder.embed(missing), dtype=np.float64)
        pieces = embedder.token_vectors(missing)
        if len(_CACHE) + len(missing) > CACHE_TEXTS:
            _CACHE.clear()
        for text, vector, piece in zip(missing, vectors, pieces, strict=True):
            found[text] = _CACHE[(owner, text)] = (vector, piece)
    return found


def pair_features(
    embedder: PairEmbedder,
    queries: Sequence[str],
    cached: Sequence[str],
    *,
    query_vectors: NDArray[np.floating] | None = None,
    cached_vectors: NDArray[np.floating] | None = None,
) -> NDArray[np.float64]:
    """One row of :data:`FEATURE_NAMES` per pair ``(queries[i], cached[i])``.

    Each distinct text is embedded once. Sentence vectors already at hand (the
    cache keeps one per entry) may be given instead of being computed again.
    """
    if len(queries) != len(cached):
        raise ValueError(f"{len(queries)} queries but {len(cached)} cached prompts")
    n = len(queries)
    if n == 0:
        return np.zeros((0, NUM_FEATURES))
    texts = list(dict.fromkeys([*queries, *cached]))
    encoded = _encode(embedder, texts)
    if query_vectors is None or cached_vectors is None:
        va = np.stack([encoded[q][0] for q in queries])
        vb = np.stack([encoded[c][0] for c in cached])
    else:
        # One question against many entries: its vector may be given once.
        vb = np.atleast_2d(np.asarray(cached_vectors, dtype=np.float64))
        va = np.broadcast_to(np.atleast_2d(np.asarray(query_vectors, dtype=np.float64)), vb.shape)
    cosine = np.einsum("ij,ij->i", va, vb)
    out = np.empty((n, NUM_FEATURES))
    for i, (q, c) in enumerate(zip(queries, cached, strict=True)):
        out[i, 0] = cosine[i]
        out[i, 1:6] = token_signals(encoded[q][1], encoded[c][1])
        out[i, 6:] = text_signals(q, c)
    return out
