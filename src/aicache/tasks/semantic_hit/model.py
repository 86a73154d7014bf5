"""A small binary classifier over pair features, in numpy: scores, loss, gradients, Adam.

A pair's logit is ``S · (w·x + b + v·relu(W x + c))``: logistic regression
plus optional hidden units that can learn "close, but a number differs".
Trained with binary cross-entropy. Parameters are ``[w (F,), b (1,), W (F, H),
c (H,), v (H,)]``. The fixed scale ``S`` lets weights of order one make a
confident decision: an optimiser step moves each weight by about the learning
rate, and a federated round takes only a few steps on a client's few pairs.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from aicache.tasks.base import FitConfig, Params
from aicache.tasks.optim import Adam
from aicache.tasks.semantic_hit.pairs import PairSet

Floats = NDArray[np.float64]
LOGIT_SCALE = 8.0


def init_classifier(num_features: int, hidden: int, seed: int) -> Params:
    """Fresh parameters: a zero linear part and a small random hidden layer."""
    rng = np.random.default_rng(seed)
    return [
        np.zeros(num_features),
        np.zeros(1),
        rng.normal(0.0, 1.0 / np.sqrt(num_features), size=(num_features, hidden)),
        np.zeros(hidden),
        rng.normal(0.0, 0.1, size=hidden),
    ]


def logits(params: Sequence[Floats], features: NDArray[np.floating]) -> tuple[Floats, Floats]:
    """Each pair's logit and the hidden pre-activations (for the backward pass)."""
    w, b, hidden_w, hidden_c, v = params
    x = np.asarray(features, dtype=np.float64)
    pre = x @ hidden_w + hidden_c
    out: Floats = LOGIT_SCALE * (x @ w + b[0] + np.maximum(pre, 0.0) @ v)
    return out, pre


def probabilities(params: Sequence[Floats], features: NDArray[np.floating]) -> Floats:
    """The probability that each pair's cached answer is right."""
    z, _ = logits(params, features)
    return np.asarray(0.5 * (1.0 + np.tanh(0.5 * z)))  # a sigmoid that cannot overflow


def loss_and_grad(
    params: Sequence[Floats], batch: PairSet, need_grad: bool = True
) -> tuple[float, Params]:
    """Mean binary cross-entropy over ``batch`` and, unless not needed, its gradients."""
    z, pre = logits(params, batch.features)
    y = batch.labels
    # log(1 + e^z) - y z, computed stably
    loss = float(np.mean(np.logaddexp(0.0, z) - y * z))
    if not need_grad:
        return loss, []
    d_z = LOGIT_SCALE * (0.5 * (1.0 + np.tanh(0.5 * z)) - y) / max(len(batch), 1)
    x = np.asarray(batch.features, dtype=np.float64)
    act = np.maximum(pre, 0.0)
    d_pre = np.outer(d_z, params[4]) * (pre > 0)
    grads = [x.T @ d_z, np.array([d_z.sum()]), x.T @ d_pre, d_pre.sum(axis=0), act.T @ d_z]
    return loss, grads


def train(params: Sequence[Floats], examples: PairSet, config: FitConfig) -> tuple[Params, float]:
    """Adam on binary cross-entropy, optionally with FedProx's proximal term.

    Returns
    -------
    tuple
        The trained parameters and the mean batch loss of the last epoch
        (NaN when nothing was trained).
    """
    adam = Adam(params, config)
    rng = np.random.default_rng(config.seed)
    n = len(examples)
    order = rng.permutation(n)  # pairs arrive grouped by question: shuffle once
    last = float("nan")
    for _ in range(config.local_epochs if n else 0):
        losses = []
        rng.shuffle(order)
        for begin in range(0, n, config.batch_size):
            batch = examples.take(order[begin : begin + config.batch_size])
            loss, grads = loss_and_grad(adam.current, batch)
            losses.append(loss)
            adam.update(grads)
        last = float(np.mean(losses))
    return list(adam.current), last
