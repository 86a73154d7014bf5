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
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from aicache.tasks.base import FitConfig, Params
from aicache.tasks.library_recs.projects import HiddenOne
from aicache.tasks.optim import Adam

Floats = NDArray[np.float64]
DIMENSIONS = 16
INIT_SCALE = 0.1


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


def train(params: Sequence[Floats], points: HiddenOne, config: FitConfig) -> tuple[Params, float]:
    """Adam on the leave-one-out softmax loss, optionally with FedProx's proximal term.

    Returns
    -------
    tuple
        The trained parameters and the mean batch loss of the last epoch
        (NaN when nothing was trained).
    """
    adam = Adam(params, config)
    rng = np.random.default_rng(config.seed)
    n = len(points)
    last = float("nan")
    for _ in range(config.local_epochs if n else 0):
        order = rng.permutation(n)
        losses = []
        for begin in range(0, n, config.batch_size):
            loss, grads = loss_and_grad(
                adam.current, points.take(order[begin : begin + config.batch_size])
            )
            losses.append(loss)
            adam.update(grads)
        last = float(np.mean(losses))
    return list(adam.current), last


def hit_ranks(score: Floats, targets: NDArray[np.int64]) -> NDArray[np.int64]:
    """Each target's rank (0 best) among its row's scores; ties count against it."""
    target_scores = score[np.arange(targets.size), targets]
    return np.asarray((score >= target_scores[:, None]).sum(axis=1) - 1, dtype=np.int64)
