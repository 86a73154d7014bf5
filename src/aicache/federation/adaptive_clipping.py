"""Adaptive quantile clipping for central DP, on Flower's client-side wrapper.

Flower's ``DifferentialPrivacyClientSideAdaptiveClipping`` sends the clipping
norm ``C_t`` to the clients (whose ``adaptiveclipping_mod`` clips to it and
reports whether it had to), adds noise to the mean of the clipped updates and
moves the norm towards the target quantile of the noised clipped count
(Andrew et al. 2021). Given the effective noise multiplier ``z`` and the
count's noise ``σ_b``, it noises the updates with ``z_Δ = (z^-2 -
(2σ_b)^-2)^-1/2`` (see :mod:`aicache.privacy.central` for why that is ``z``
overall).

In flwr 1.42 it updates the norm *before* it noises the aggregate, so the
noise is scaled to ``C_{t+1}`` while the round's updates were clipped to
``C_t``: whenever the norm shrinks, the round is under-noised.
:class:`RoundNormAdaptiveClipping` noises with the norm the round's clients
were given.
"""

from __future__ import annotations

from collections.abc import Iterable

from flwr.app import ArrayRecord, ConfigRecord, Message
from flwr.serverapp import Grid
from flwr.serverapp.strategy import DifferentialPrivacyClientSideAdaptiveClipping

# Tells a client to clip with adaptiveclipping_mod (and report its bit), not fixedclipping_mod.
ADAPTIVE_CLIPPING = "adaptive-clipping"


class RoundNormAdaptiveClipping(DifferentialPrivacyClientSideAdaptiveClipping):
    """Flower's client-side adaptive clipping, noising each round at that round's norm."""

    _round_norm: float = 0.0

    def configure_train(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        """Remember the norm the clients clip to, and ask for adaptive clipping."""
        self._round_norm = self.clipping_norm
        config[ADAPTIVE_CLIPPING] = 1
        return super().configure_train(server_round, arrays, config, grid)

    def _add_noise_to_aggregated_arrays(self, aggregated: ArrayRecord) -> ArrayRecord:
        adapted, self.clipping_norm = self.clipping_norm, self._round_norm
        try:
            return super()._add_noise_to_aggregated_arrays(aggregated)
        finally:
            self.clipping_norm = adapted
