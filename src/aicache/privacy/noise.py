"""Clipping and Gaussian noise applied to one client's update, as pure functions.

Both client-side noise modes use them: distributed DP (each client adds its
share of the noise before SecAgg+ masks the update) and local DP (each client
adds all of it). The noise comes from the operating system's entropy: it is
never derived from a seed that the server or a log could know.
"""

from __future__ import annotations

import math

import numpy as np

# ||N(0, σ² I_d)|| exceeds σ(√d + t) with probability at most exp(-t²/2)
# (Gaussian concentration of a 1-Lipschitz function): t = 8 gives about 1e-14.
NOISE_NORM_MARGIN = 8.0

# The round settings that ask a SecAgg+ client for distributed DP: its clip and noise share.
DP_CLIP = "dp-clip"
DP_NOISE_STD = "dp-noise-std"


def clip_scale(update: list[np.ndarray], clip: float) -> float:
    """The factor that brings ``update`` to L2 norm at most ``clip``."""
    norm = float(np.sqrt(sum(float(np.sum(np.square(u, dtype=np.float64))) for u in update)))
    return min(1.0, clip / norm) if norm > 0 else 1.0


def noised_update(
    model: list[np.ndarray], reference: list[np.ndarray], *, clip: float, std: float
) -> list[np.ndarray]:
    """``reference`` plus the update clipped to L2 norm ``clip`` plus ``N(0, std²)`` noise.

    Parameters
    ----------
    model
        The locally trained model.
    reference
        The global model the client started from.
    clip
        The L2 bound on ``model - reference``.
    std
        The standard deviation of the noise added to every coordinate.
    """
    update = [m.astype(np.float64) - r for m, r in zip(model, reference, strict=True)]
    scale = clip_scale(update, clip)
    rng = np.random.default_rng()  # fresh entropy from the OS on every call
    return [
        r + u * scale + rng.normal(0.0, std, u.shape)
        for r, u in zip(reference, update, strict=True)
    ]


def noisy_update_bound(clip: float, std: float, dimension: int) -> float:
    """An L2 bound that an honestly clipped and noised update exceeds with probability < 1e-13.

    The clipped part has norm at most ``clip``; the noise has norm above
    ``std·(√d + t)`` with probability at most ``exp(-t²/2)``.
    """
    return clip + std * (math.sqrt(dimension) + NOISE_NORM_MARGIN)
