"""Streaming statistics of one user's history and the candidate features they give.

:class:`HistoryState` is updated one command at a time and, at any point,
proposes candidate programs and describes each with the numbers laid out in
:data:`~aicache.features.command_layout.FEATURE_NAMES`. Everything it holds
stays on the user's machine.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

from aicache.features.command_layout import (
    BIGRAM_DECAYS,
    COLUMN,
    FREQ_DECAYS,
    NUM_FEATURES,
    RECENCY_RANKS,
    CandidateConfig,
)
from aicache.features.history_items import HistoryItem
from aicache.features.vocabulary import PUBLIC_VOCABULARY, vocabulary_bucket, vocabulary_rank

_EPS = 1e-3
_LOG_SCALE = -math.log(_EPS)


def _topk(values: NDArray[np.float64], k: int) -> NDArray[np.int64]:
    """Indices of up to ``k`` largest strictly positive entries (any order)."""
    positive = np.flatnonzero(values > 0)
    if positive.size <= k:
        return positive.astype(np.int64)
    part = np.argpartition(values[positive], -k)[-k:]
    return positive[part].astype(np.int64)


class HistoryState:
    """Streaming statistics of one user's history, updated one command at a time.

    Only commands passed to :meth:`update` are known, so the candidates and
    features at a point depend on the history before it and on what the shell
    knows at that moment (the session and the current directory), never on
    the command about to be typed.

    Parameters
    ----------
    config
        Candidate-set sizes.
    """

    def __init__(self, config: CandidateConfig | None = None) -> None:
        self.config = config or CandidateConfig()
        self.names: list[str] = []
        self._ids: dict[str, int] = {}
        self._cap = 256
        self.n = 0
        self.counts = np.zeros(self._cap)
        self.decayed = np.zeros((len(FREQ_DECAYS), self._cap))
        self.last_seen = np.full(self._cap, -1.0)
        self.session_counts = np.zeros(self._cap)
        self.start_counts = np.zeros(self._cap)
        self._vocab_cols = np.zeros((self._cap, 5))
        self._alphas = np.asarray(FREQ_DECAYS)[:, None]
        self._bigram_alphas = np.asarray(BIGRAM_DECAYS)[:, None]
        self._mtf: list[int] = []
        self._bigram: dict[int, NDArray[np.float64]] = {}
        self._skip: dict[int, NDArray[np.float64]] = {}
        self._trigram: dict[tuple[int, int], dict[int, float]] = {}
        self._successor: dict[tuple[int, ...], int] = {}
        self._dirs: dict[str, NDArray[np.float64]] = {}
        self._dir_mtf: dict[str, list[int]] = {}
        self._dir_bigram: dict[tuple[str, int], dict[int, float]] = {}
        self._recent: list[int] = []
        self._session: int | None = None
        self._dir: str | None = None
        self._failed = False
        self._session_len = 0
        for name in PUBLIC_VOCABULARY[: self.config.vocabulary]:
            self._intern(name)

    def index(self, name: str) -> int | None:
        """The local id of program ``name`` (an index of :attr:`names`), or ``None``."""
        return self._ids.get(name)

    def _intern(self, name: str) -> int:
        index = self._ids.get(name)
        if index is not None:
            return index
        index = len(self.names)
        if index == self._cap:
            self._grow()
        self._ids[name] = index
        self.names.append(name)
        bucket, rank = vocabulary_bucket(name), vocabulary_rank(name)
        if bucket is not None and rank is not None:
            self._vocab_cols[index, 1 + bucket] = 1.0
            self._vocab_cols[index, 4] = math.exp(-rank / 10)
        self._vocab_cols[index, 0] = 1.0  # unseen until update() counts it
        return index

    def _grow(self) -> None:
        old, self._cap = self._cap, self._cap * 2

        def pad(array: NDArray[np.float64], fill: float = 0.0) -> NDArray[np.float64]:
            shape = (*array.shape[:-1], self._cap)
            grown = np.full(shape, fill)
            grown[..., :old] = array
            return grown

        self.counts = pad(self.counts)
        self.decayed = pad(self.decayed)
        self.last_seen = pad(self.last_seen, -1.0)
        self.session_counts = pad(self.session_counts)
        self.start_counts = pad(self.start_counts)
        vocab = np.zeros((self._cap, 5))
        vocab[:old] = self._vocab_cols
        self._vocab_cols = vocab
        self._bigram = {key: pad(row) for key, row in self._bigram.items()}
        self._skip = {key: pad(row) for key, row in self._skip.items()}
        self._dirs = {key: pad(row) for key, row in self._dirs.items()}

    def _new_session(self, session: int | None) -> bool:
        return self.n == 0 or (session is not None and session != self._session)

    def update(self, item: HistoryItem) -> None:
        """Add ``item`` (the command just typed) to the statistics."""
        c = self._intern(item.program)
        if self._new_session(item.session):
            self.session_counts[:] = 0.0
            self._session_len = 0
            self.start_counts[c] += 1.0
        self.counts[c] += 1.0
        self._vocab_cols[c, 0] = 0.0
        self.decayed *= self._alphas
        self.decayed[:, c] += 1.0
        self.last_seen[c] = self.n
        if c in self._mtf:
            self._mtf.remove(c)
        self._mtf.insert(0, c)
        recent = self._recent
        if recent:
            p1 = recent[-1]
            row = self._bigram.get(p1)
            if row is None:
                row = self._bigram[p1] = np.zeros((1 + len(BIGRAM_DECAYS), self._cap))
            row[1:] *= self._bigram_alphas
            row[1:, c] += 1.0 - self._bigram_alphas[:, 0]
            row[0, c] += 1.0
            for length in (1, 2, 3, 4):
                if len(recent) >= length:
                    self._successor[tuple(recent[-length:])] = c
        if len(recent) >= 2:
            skip = self._skip.get(recent[-2])
            if skip is None:
                skip = self._skip[recent[-2]] = np.zeros(self._cap)
            skip[c] += 1.0
            tri = self._trigram.setdefault((recent[-2], recent[-1]), {})
            tri[c] = tri.get(c, 0.0) + 1.0
        if item.dir_hash is not None:
            drow = self._dirs.get(item.dir_hash)
            if drow is None:
                drow = self._dirs[item.dir_hash] = np.zeros(self._cap)
            drow[c] += 1.0
            mtf = self._dir_mtf.setdefault(item.dir_hash, [])
            if c in mtf:
                mtf.remove(c)
            mtf.insert(0, c)
            if recent:
                dbig = self._dir_bigram.setdefault((item.dir_hash, recent[-1]), {})
                dbig[c] = dbig.get(c, 0.0) + 1.0
        self.session_counts[c] += 1.0
        self._session_len += 1
        self._recent = [*recent[-3:], c]
        self._session = item.session
        self._dir = item.dir_hash
        self._failed = bool(item.failed)
        self.n += 1

    def candidates(self, session: int | None = None, dir_hash: str | None = None) -> list[str]:
        """The candidate programs at this point, in the order :meth:`features` rows use."""
        ids, _ = self.features(session, dir_hash)
        return [self.names[i] for i in ids]

    def _candidate_ids(self, dir_row: NDArray[np.float64] | None, start: bool) -> NDArray[np.int64]:
        cfg = self.config
        parts: list[NDArray[np.int64]] = [
            np.arange(min(cfg.vocabulary, len(self.names)), dtype=np.int64),
            np.asarray(self._mtf[: cfg.recent], dtype=np.int64),
            _topk(self.counts, cfg.frequent),
            _topk(self.decayed[2], cfg.frequent),
        ]
        if self._recent:
            row = self._bigram.get(self._recent[-1])
            if row is not None:
                parts.append(_topk(row[0], cfg.successors))
            if len(self._recent) >= 2:
                tri = self._trigram.get((self._recent[-2], self._recent[-1]), {})
                parts.append(np.asarray(list(tri), dtype=np.int64))
        if dir_row is not None:
            parts.append(_topk(dir_row, cfg.directory))
        if start:
            parts.append(_topk(self.start_counts, cfg.successors))
        return np.unique(np.concatenate(parts))

    def features(
        self, session: int | None = None, dir_hash: str | None = None
    ) -> tuple[NDArray[np.int64], NDArray[np.float32]]:
        """Candidates and their feature rows at this point.

        Parameters
        ----------
        session
            The session the next command is typed in, when known; a value
            different from the last command's marks a session start.
        dir_hash
            The hash of the current directory, when known (else the last
            command's directory is assumed).

        Returns
        -------
        tuple of ndarray
            Local candidate ids (index :attr:`names`) and a float32 array of
            shape ``(len(ids), NUM_FEATURES)`` laid out as :data:`FEATURE_NAMES`.
        """
        start = self._new_session(session)
        current_dir = dir_hash if dir_hash is not None else self._dir
        dir_row = None if current_dir is None else self._dirs.get(current_dir)
        ids = self._candidate_ids(dir_row, start)
        x = np.zeros((ids.size, NUM_FEATURES))
        n = max(self.n, 1)
        counts = self.counts[ids]
        x[:, COLUMN["log_count"]] = np.log1p(counts) / 5.0
        x[:, COLUMN["share"]] = counts / n
        decayed = self.decayed[:, ids] / np.maximum(self.decayed.sum(axis=1, keepdims=True), 1e-9)
        first = COLUMN[f"decay_{FREQ_DECAYS[0]}"]
        x[:, first : first + len(FREQ_DECAYS)] = decayed.T
        x[:, COLUMN["log_decay_0.97"]] = _log(decayed[2])
        rank_of = {c: r for r, c in enumerate(self._mtf[: 2 * RECENCY_RANKS])}
        for row, c in enumerate(ids.tolist()):
            rank = rank_of.get(c)
            if rank is not None:
                x[row, COLUMN["rank_1"] + min(rank, RECENCY_RANKS)] = 1.0
        seen = self.last_seen[ids]
        gap = np.where(seen >= 0, self.n - seen, self.n + 1)
        x[:, COLUMN["log_gap"]] = np.log1p(gap) / 10.0
        self._transition_features(x, ids)
        if current_dir is not None and dir_row is not None:
            self._directory_features(x, ids, current_dir, dir_row)
        else:
            x[:, COLUMN["log_dir_share"]] = -1.0
        if start:
            starts = self.start_counts
            x[:, COLUMN["session_start_share"]] = starts[ids] / max(starts.sum(), 1.0)
        else:
            x[:, COLUMN["session_share"]] = self.session_counts[ids] / max(self._session_len, 1)
        col = COLUMN["unseen"]
        x[:, col : col + 5] = self._vocab_cols[ids]
        x[:, COLUMN["ctx_log_n"]] = math.log1p(self.n) / 10.0
        x[:, COLUMN["ctx_session_start"]] = float(start)
        x[:, COLUMN["ctx_dir_changed"]] = float(current_dir != self._dir)
        x[:, COLUMN["ctx_dir_new"]] = float(current_dir is not None and dir_row is None)
        x[:, COLUMN["ctx_prev_failed"]] = float(self._failed)
        x[:, COLUMN["ctx_session_len"]] = 0.0 if start else math.log1p(self._session_len) / 5.0
        return ids, x.astype(np.float32)

    def _directory_features(
        self,
        x: NDArray[np.float64],
        ids: NDArray[np.int64],
        current_dir: str,
        dir_row: NDArray[np.float64],
    ) -> None:
        total = dir_row.sum()
        share = dir_row[ids] / max(total, 1.0)
        x[:, COLUMN["dir_share"]] = share
        x[:, COLUMN["log_dir_share"]] = _log(share)
        x[:, COLUMN["dir_conf"]] = share * math.log1p(total) / 5.0
        dir_rank = {c: r for r, c in enumerate(self._dir_mtf.get(current_dir, [])[:8])}
        for row, c in enumerate(ids.tolist()):
            rank = dir_rank.get(c)
            if rank is not None:
                x[row, COLUMN["dir_rank_1"] + min(rank, 2)] = 1.0
        if self._recent:
            counts = self._dir_bigram.get((current_dir, self._recent[-1]))
            if counts:
                norm = sum(counts.values())
                x[:, COLUMN["dir_bigram"]] = [counts.get(c, 0.0) / norm for c in ids.tolist()]

    def _transition_features(self, x: NDArray[np.float64], ids: NDArray[np.int64]) -> None:
        recent = self._recent
        if not recent:
            x[:, [COLUMN["log_bigram"], COLUMN["log_trigram"]]] = -1.0
            return
        p1 = recent[-1]
        row = self._bigram.get(p1)
        if row is None:
            x[:, COLUMN["log_bigram"]] = -1.0
        else:
            total = row[0].sum()
            probs = row[:, ids] / np.maximum(row.sum(axis=1, keepdims=True), 1e-9)
            x[:, COLUMN["bigram"]] = probs[0]
            x[:, COLUMN["log_bigram"]] = _log(probs[0])
            x[:, COLUMN["bigram_conf"]] = probs[0] * math.log1p(total) / 5.0
            first = COLUMN[f"bigram_decay_{BIGRAM_DECAYS[0]}"]
            x[:, first : first + len(BIGRAM_DECAYS)] = probs[1:].T
            if self._failed:
                x[:, COLUMN["fail_bigram"]] = probs[0]
        if self._failed:
            x[:, COLUMN["retry_after_fail"]] = (ids == p1).astype(np.float64)
        tri = self._trigram.get((recent[-2], p1)) if len(recent) >= 2 else None
        if tri:
            total = sum(tri.values())
            probs3 = np.asarray([tri.get(c, 0.0) for c in ids.tolist()]) / total
            x[:, COLUMN["trigram"]] = probs3
            x[:, COLUMN["log_trigram"]] = _log(probs3)
            x[:, COLUMN["trigram_conf"]] = probs3 * math.log1p(total) / 5.0
        else:
            x[:, COLUMN["log_trigram"]] = -1.0
        if len(recent) >= 2 and (skip := self._skip.get(recent[-2])) is not None:
            x[:, COLUMN["skipgram"]] = skip[ids] / max(skip.sum(), 1.0)
        for length in (1, 2, 3, 4):
            if len(recent) >= length:
                successor = self._successor.get(tuple(recent[-length:]))
                if successor is not None:
                    x[:, COLUMN[f"successor_{length}"]] = (ids == successor).astype(np.float64)


def _log(p: NDArray[np.float64]) -> NDArray[np.float64]:
    """A log-probability scaled to [-1, 0] (probability 0 maps to -1)."""
    result: NDArray[np.float64] = np.log(p + _EPS) / _LOG_SCALE
    return result
