"""A candidate ranker in plain numpy: scores, softmax loss, gradients, Adam and top-k.

The model scores each candidate row ``x`` as ``w·x + v·relu(W x + b)`` (a
linear part plus a small hidden layer; a hidden size of 0 leaves a linear
model) and is trained with softmax cross-entropy over each group of
candidates. Parameters are ``[w, W, b, v]`` with shapes ``(F,)``, ``(F, H)``,
``(H,)`` and ``(H,)``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from aicache.features.candidates import CandidateSet
from aicache.tasks.base import FitConfig, Params
from aicache.tasks.optim import Adam

Floats = NDArray[np.float64]


def init_ranker(num_features: int, hidden: int, seed: int) -> Params:
    """Fresh ranker parameters: a zero linear part and a small random hidden layer."""
    rng = np.random.default_rng(seed)
    return [
        np.zeros(num_features),
        rng.normal(0.0, 1.0 / np.sqrt(num_features), size=(num_features, hidden)),
        np.zeros(hidden),
        rng.normal(0.0, 0.1, size=hidden),
    ]


def _group_index(sizes: NDArray[np.int64]) -> NDArray[np.int64]:
    return np.repeat(np.arange(sizes.size, dtype=np.int64), sizes)


def scores(params: Sequence[Floats], features: NDArray[np.floating]) -> tuple[Floats, Floats]:
    """Candidate scores and the hidden pre-activations (kept for the backward pass)."""
    w, hidden_w, hidden_b, v = params
    x = np.asarray(features, dtype=np.float64)
    pre = x @ hidden_w + hidden_b
    out: Floats = x @ w + np.maximum(pre, 0.0) @ v
    return out, pre


def _group_softmax(
    score: Floats, offsets: NDArray[np.int64], sizes: NDArray[np.int64]
) -> tuple[Floats, Floats]:
    """Per-row softmax within groups and each group's log-sum-exp (groups non-empty)."""
    starts = offsets[:-1]
    top = np.maximum.reduceat(score, starts)
    shifted = np.exp(score - np.repeat(top, sizes))
    total = np.add.reduceat(shifted, starts)
    return shifted / np.repeat(total, sizes), top + np.log(total)


def loss_and_grad(
    params: Sequence[Floats], batch: CandidateSet, need_grad: bool = True
) -> tuple[float, Params]:
    """Mean softmax cross-entropy over groups of ``batch`` (targets >= 0, non-empty).

    Returns
    -------
    tuple
        The mean loss and its gradient with respect to each parameter array
        (empty when ``need_grad`` is false).
    """
    sizes = batch.sizes
    count = len(batch)
    score, pre = scores(params, batch.features)
    prob, lse = _group_softmax(score, batch.offsets, sizes)
    target_rows = batch.offsets[:-1] + batch.targets
    loss = float(np.mean(lse - score[target_rows]))
    if not need_grad:
        return loss, []
    d_score = prob
    d_score[target_rows] -= 1.0
    d_score /= count
    x = np.asarray(batch.features, dtype=np.float64)
    act = np.maximum(pre, 0.0)
    d_pre = np.outer(d_score, params[3]) * (pre > 0)
    grads = [x.T @ d_score, x.T @ d_pre, d_pre.sum(axis=0), act.T @ d_score]
    return loss, grads


def trainable(examples: CandidateSet) -> CandidateSet:
    """The groups whose right answer is among the candidates."""
    return examples.take(np.flatnonzero(examples.targets >= 0))


def train(
    params: Sequence[Floats], examples: CandidateSet, config: FitConfig
) -> tuple[Params, float]:
    """Adam on softmax cross-entropy, optionally with FedProx's proximal term.

    Parameters
    ----------
    params
        The starting (global) parameters; not modified.
    examples
        Groups with valid targets (see :func:`trainable`).
    config
        Learning rate, epochs, batch size, μ, weight decay and seed.

    Returns
    -------
    tuple
        The trained parameters and the mean batch loss of the last epoch
        (NaN when nothing was trained).
    """
    adam = Adam(params, config)
    rng = np.random.default_rng(config.seed)
    n = len(examples)
    last = float("nan")
    batch_starts = np.arange(0, n, config.batch_size)
    for _ in range(config.local_epochs if n else 0):
        losses = []
        for begin in rng.permutation(batch_starts):
            batch = examples.slice(int(begin), int(begin) + config.batch_size)
            loss, grads = loss_and_grad(adam.current, batch)
            losses.append(loss)
            adam.update(grads)
        last = float(np.mean(losses))
    return list(adam.current), last


def target_ranks(params: Sequence[Floats], examples: CandidateSet) -> NDArray[np.int64]:
    """The rank (0 best) of each group's right candidate; -1 where it is absent.

    Ties are broken by candidate order, as :func:`rank_candidates` does.
    """
    ranks = np.full(len(examples), -1, dtype=np.int64)
    valid = np.flatnonzero(examples.targets >= 0)
    if valid.size == 0:
        return ranks
    sub = examples.take(valid)
    score, _ = scores(params, sub.features)
    sizes = sub.sizes
    group = _group_index(sizes)
    target_rows = sub.offsets[:-1] + sub.targets
    target_score = score[target_rows][group]
    position = np.arange(score.size) - np.repeat(sub.offsets[:-1], sizes)
    ahead = (score > target_score) | ((score == target_score) & (position < sub.targets[group]))
    ranks[valid] = np.add.reduceat(ahead.astype(np.int64), sub.offsets[:-1])
    return ranks


def rank_candidates(params: Sequence[Floats], features: NDArray[np.floating]) -> NDArray[np.int64]:
    """Row indices of one group's candidates, best first (stable on ties)."""
    score, _ = scores(params, features)
    return np.argsort(-score, kind="stable").astype(np.int64)
