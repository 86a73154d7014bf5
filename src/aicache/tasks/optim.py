"""The local optimiser of the gradient tasks: Adam, with FedProx's proximal term.

Every gradient task trains a client's copy of the global model the same way,
so that ``--proximal-mu`` and weight decay mean one thing across tasks.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from aicache.tasks.base import FitConfig

_BETA1, _BETA2, _EPS = 0.9, 0.999, 1e-8


class Adam:
    """Adam from ``params`` (kept as the proximal anchor), stepping :attr:`current`."""

    def __init__(self, params: Sequence[NDArray[np.floating]], config: FitConfig) -> None:
        self._start = [np.array(p, dtype=np.float64) for p in params]
        self.current: list[NDArray[np.float64]] = [p.copy() for p in self._start]
        self._m = [np.zeros_like(p) for p in self.current]
        self._s = [np.zeros_like(p) for p in self.current]
        self._config = config
        self._step = 0

    def update(self, grads: Sequence[NDArray[np.floating]]) -> None:
        """One step on ``grads`` (the loss's gradients at :attr:`current`)."""
        config, current = self._config, self.current
        self._step += 1
        for i, grad in enumerate(grads):
            if config.proximal_mu:
                grad = grad + config.proximal_mu * (current[i] - self._start[i])
            if config.weight_decay:
                grad = grad + config.weight_decay * current[i]
            self._m[i] = _BETA1 * self._m[i] + (1 - _BETA1) * grad
            self._s[i] = _BETA2 * self._s[i] + (1 - _BETA2) * grad * grad
            m_hat = self._m[i] / (1 - _BETA1**self._step)
            s_hat = self._s[i] / (1 - _BETA2**self._step)
            current[i] = current[i] - config.learning_rate * m_hat / (np.sqrt(s_hat) + _EPS)
