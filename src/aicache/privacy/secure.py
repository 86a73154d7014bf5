"""Settings of the secure aggregation modes (the protocols run in the federation layer)."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

# Levels each parameter is quantised to before masking (Flower's SecAggPlusWorkflow default).
QUANTIZATION_RANGE = 2**22
# The masked sum lives modulo this (Flower's SecAggPlusWorkflow default).
MODULUS_RANGE = 2**32


@dataclass(frozen=True, slots=True)
class SecAggSettings:
    """SecAgg+ parameters (see Flower's ``SecAggPlusWorkflow``).

    Attributes
    ----------
    num_shares
        Shares each client's key is split into: an odd integer > 2, or a share
        of the sampled clients (Flower rounds an even result up to odd).
    reconstruction_threshold
        Shares needed to rebuild a dropped client's mask: an integer below
        ``num_shares``, or a share of them. The round survives dropouts while
        every client keeps at least this many live neighbours.
    clipping_range
        Parameters are clipped to ``[-r, r]`` before quantisation.
    max_weight
        The largest example count one client may weigh with.
    timeout
        Seconds each stage waits for replies.
    """

    num_shares: float = 1.0
    reconstruction_threshold: float = 0.6
    clipping_range: float = 32.0
    max_weight: float = 10_000.0
    timeout: float = 300.0

    def __post_init__(self) -> None:
        shares, threshold = self.num_shares, self.reconstruction_threshold
        if shares > 1 and (shares != int(shares) or int(shares) % 2 == 0 or shares < 3):
            raise ValueError(
                f"invalid num_shares {shares:g}: give an odd whole number of at least 3 or a "
                "share in (0, 1]; with an even count every client fails in the key-sharing "
                "stage and no round ever aggregates"
            )
        if shares <= 0:
            raise ValueError(f"invalid num_shares {shares:g}: it must be > 0")
        if threshold > 1 and (threshold != int(threshold) or (shares > 1 and threshold >= shares)):
            raise ValueError(
                f"invalid reconstruction threshold {threshold:g}: a whole number below "
                "num_shares, or a share in (0, 1]"
            )
        if threshold <= 0:
            raise ValueError(f"invalid reconstruction threshold {threshold:g}: it must be > 0")
        if threshold <= 0.5 or (shares > 1 and threshold <= shares / 2):
            raise ValueError(
                f"invalid reconstruction threshold {threshold:g}: it must be more than half of "
                "the shares, or a server that lies to different neighbours can rebuild both a "
                "client's mask and its key"
            )
        # Flower type-checks the clipping range as a float on every client.
        object.__setattr__(self, "clipping_range", float(self.clipping_range))
        if self.clipping_range <= 0 or self.max_weight <= 0:
            raise ValueError("the clipping range and the maximum weight must be > 0")


def quantised_clip(clip: float, clipping_range: float, dimension: int) -> float:
    """An L2 bound on a clipped update once SecAgg+ has quantised it.

    SecAgg+ maps each value to ``QUANTIZATION_RANGE`` levels over
    ``[-clipping_range, clipping_range]`` with stochastic rounding: each of the
    ``dimension`` coordinates moves by less than one step ``2r / Q``, so an
    update clipped to ``clip`` leaves with L2 norm below ``clip + step·sqrt(d)``.
    (Clipping values to ``[-r, r]`` is a projection on a box: it never moves
    two clients' models further apart.) Central DP calibrates its noise to this
    bound, so quantisation cannot lift the sensitivity above what is accounted.
    """
    step = 2 * clipping_range / QUANTIZATION_RANGE
    return clip + step * math.sqrt(dimension)


def fitted(settings: SecAggSettings, *, sampled: int, max_weight: float) -> SecAggSettings:
    """``settings`` for rounds of ``sampled`` clients weighing at most ``max_weight`` each.

    The masked sum of the clients' quantised values must stay below the
    modulus; with the largest weight as the bound no weight is clipped, and
    the summed weights (each at most the bound) overflow no sooner than the
    values do.

    Raises
    ------
    ValueError
        If that many clients a round would overflow the masked sum.
    """
    if sampled * QUANTIZATION_RANGE >= MODULUS_RANGE:
        raise ValueError(
            f"--secure secagg: {sampled} clients a round would overflow the masked sum "
            f"(at most {MODULUS_RANGE // QUANTIZATION_RANGE - 1})"
        )
    return replace(settings, max_weight=max_weight)
