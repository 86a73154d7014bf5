"""Library co-use as item embeddings in numpy: scores, softmax loss, gradients, Adam, recall.

Every vocabulary package ``j`` has an embedding ``e_j`` and a bias ``b_j``. A
project's visible dependencies ``S`` score every package as
``b_j + e_j · mean(e_i for i in S)``; packages already in ``S`` are masked
out (they are never recommended). Training hides each dependency of a
project in turn and maximises its softmax probability given the others: the
leave-one-out task it is judged on. The embeddings are tied (one matrix for
the context and the candidates): half the weights of a two-matrix model, and
under differential privacy every weight takes its share of the noise.
Parameters are ``[E (V, D), b (V,)]``.

A client trains on a *sampled* softmax: over its own packages plus
``NEGATIVES`` packages drawn once per fit from the public popularity, with the
log-Q correction so that it estimates the full softmax. The full softmax gives
every one of the model's weights a gradient, and Adam then moves each by about
the learning rate: one client's update spans the whole model, and clipping it
to the DP bound leaves each weight a sliver of the signal. With sampled
negatives a client's update touches only a few dozen rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from aicache.tasks.base import FitConfig, Params
from aicache.tasks.library_recs.projects import HiddenOne
from aicache.tasks.optim import Adam

Floats = NDArray[np.float64]
Ints = NDArray[np.int64]
DIMENSIONS = 16
INIT_SCALE = 0.1
NEGATIVES = 16  # packages outside the client's own drawn as negatives, once per fit


def init_embeddings(vocabulary: int, dimensions: int, seed: int) -> Params:
    """Fresh parameters: small random embeddings and zero biases."""
    rng = np.random.default_rng(seed)
    return [rng.normal(0.0, INIT_SCALE, size=(vocabulary, dimensions)), np.zeros(vocabulary)]


def _context_matrix(contexts: Sequence[NDArray[np.int64]], vocabulary: int) -> Floats:
    """Row ``r`` averages context ``r``'s items (an empty context is a zero row)."""
    matrix = np.zeros((len(contexts), vocabulary))
    for row, ids in enumerate(contexts):
        if ids.size:
            matrix[row, ids] = 1.0 / ids.size
    return matrix


def scores(params: Sequence[Floats], contexts: Sequence[NDArray[np.int64]]) -> Floats:
    """Every package's score for each context, the context's own packages at ``-inf``."""
    embeddings, bias = params
    weights = _context_matrix(contexts, bias.size)
    out: Floats = (weights @ embeddings) @ embeddings.T + bias
    out[weights > 0] = -np.inf
    return out


def loss_and_grad(
    params: Sequence[Floats], batch: HiddenOne, need_grad: bool = True
) -> tuple[float, Params]:
    """Mean softmax cross-entropy of the hidden packages and, unless not needed, its gradients."""
    embeddings, bias = params
    weights = _context_matrix(batch.contexts, bias.size)
    hidden = weights @ embeddings
    logits = hidden @ embeddings.T + bias
    logits[weights > 0] = -np.inf
    top = logits.max(axis=1, keepdims=True)
    shifted = np.exp(logits - top)
    total = shifted.sum(axis=1, keepdims=True)
    rows = np.arange(len(batch))
    loss = float(np.mean(np.log(total[:, 0]) + top[:, 0] - logits[rows, batch.targets]))
    if not need_grad:
        return loss, []
    d_logits = shifted / total
    d_logits[rows, batch.targets] -= 1.0
    d_logits /= len(batch)
    d_embeddings = d_logits.T @ hidden + weights.T @ (d_logits @ embeddings)
    return loss, [d_embeddings, d_logits.sum(axis=0)]


def popularity(vocabulary: int) -> Floats:
    """The public prior of each package: Zipf over the download ranking (row 0 most used)."""
    weights = 1.0 / np.arange(1, vocabulary + 1, dtype=np.float64)
    out: Floats = weights / weights.sum()
    return out


@dataclass(frozen=True, slots=True)
class Candidates:
    """The packages a client's sampled softmax ranges over, and each one's log-Q correction.

    Attributes
    ----------
    ids
        Sorted vocabulary ids: the client's own packages and the sampled negatives.
    correction
        ``log`` of each id's expected count in the sample (0 for the client's
        own packages, which are always in): subtracted from its logit, so the
        sampled softmax estimates the full one.
    """

    ids: Ints
    correction: Floats


def candidates(points: HiddenOne, vocabulary: int, negatives: int, seed: int) -> Candidates:
    """The client's own packages plus ``negatives`` others drawn from :func:`popularity`."""
    own = np.unique(np.concatenate([points.targets, *points.contexts]).astype(np.int64))
    prior = popularity(vocabulary)
    prior[own] = 0.0
    count = min(negatives, vocabulary - own.size)
    rng = np.random.default_rng(seed)
    drawn = np.asarray(
        rng.choice(vocabulary, size=count, replace=False, p=prior / prior.sum()), dtype=np.int64
    )
    ids = np.union1d(own, drawn).astype(np.int64)
    expected = np.minimum(1.0, count * prior[ids] / prior.sum())
    correction = np.where(np.isin(ids, own), 0.0, np.log(np.maximum(expected, 1e-300)))
    return Candidates(ids, correction)


def sampled_loss_and_grad(
    params: Sequence[Floats], batch: HiddenOne, among: Candidates
) -> tuple[float, Params]:
    """The softmax cross-entropy over ``among`` only, and its gradients (zero off its rows).

    Every target must be in ``among.ids``. The gradient is non-zero only on the
    rows of the candidates and of the batch's contexts.
    """
    embeddings, bias = params
    weights = _context_matrix(batch.contexts, bias.size)
    hidden = weights @ embeddings
    rows_of = among.ids
    chosen = embeddings[rows_of]
    logits = hidden @ chosen.T + bias[rows_of] - among.correction
    logits[weights[:, rows_of] > 0] = -np.inf
    positions = np.searchsorted(rows_of, batch.targets)
    top = logits.max(axis=1, keepdims=True)
    shifted = np.exp(logits - top)
    total = shifted.sum(axis=1, keepdims=True)
    rows = np.arange(len(batch))
    loss = float(np.mean(np.log(total[:, 0]) + top[:, 0] - logits[rows, positions]))
    d_logits = shifted / total
    d_logits[rows, positions] -= 1.0
    d_logits /= len(batch)
    d_embeddings = weights.T @ (d_logits @ chosen)
    d_embeddings[rows_of] += d_logits.T @ hidden
    d_bias = np.zeros_like(bias)
    d_bias[rows_of] = d_logits.sum(axis=0)
    return loss, [d_embeddings, d_bias]


def train(params: Sequence[Floats], points: HiddenOne, config: FitConfig) -> tuple[Params, float]:
    """Adam on the leave-one-out sampled softmax, optionally with FedProx's proximal term.

    The negatives are drawn once (seeded by ``config.seed``), so the update
    moves only the client's own rows and theirs (weight decay, when set, moves
    every row).

    Returns
    -------
    tuple
        The trained parameters and the mean batch loss (sampled) of the last
        epoch (NaN when nothing was trained).
    """
    adam = Adam(params, config)
    rng = np.random.default_rng(config.seed)
    n = len(points)
    last = float("nan")
    if not n:
        return list(adam.current), last
    among = candidates(points, params[1].size, NEGATIVES, config.seed)
    for _ in range(config.local_epochs):
        order = rng.permutation(n)
        losses = []
        for begin in range(0, n, config.batch_size):
            loss, grads = sampled_loss_and_grad(
                adam.current, points.take(order[begin : begin + config.batch_size]), among
            )
            losses.append(loss)
            adam.update(grads)
        last = float(np.mean(losses))
    return list(adam.current), last


def hit_ranks(score: Floats, targets: NDArray[np.int64]) -> NDArray[np.int64]:
    """Each target's rank (0 best) among its row's scores; ties count against it."""
    target_scores = score[np.arange(targets.size), targets]
    return np.asarray((score >= target_scores[:, None]).sum(axis=1) - 1, dtype=np.int64)
