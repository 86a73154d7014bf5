"""Adversarial clients for robustness experiments (simulation only)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

ATTACKS = ("nan", "scale", "sign-flip")


@dataclass(frozen=True, slots=True)
class Adversary:
    """Clients ``0 .. count-1`` send a corrupted model instead of their real one.

    Attributes
    ----------
    count
        How many clients are adversarial.
    attack
        ``nan`` (non-finite values), ``scale`` (the model times 1000) or
        ``sign-flip`` (the model negated).
    """

    count: int
    attack: str = "nan"

    def __post_init__(self) -> None:
        if self.count < 0:
            raise ValueError(f"invalid number of adversarial clients {self.count}")
        if self.attack not in ATTACKS:
            raise ValueError(f"unknown attack {self.attack!r}: choose one of {', '.join(ATTACKS)}")

    def __call__(self, client: int, params: list[Any]) -> list[Any]:
        """The parameters ``client`` sends."""
        if client >= self.count:
            return params
        if self.attack == "nan":
            return [np.full_like(p, np.nan) for p in params]
        if self.attack == "scale":
            return [p * 1000.0 for p in params]
        return [-p for p in params]
