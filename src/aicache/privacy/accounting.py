"""Differential-privacy accounting for federated rounds, as pure functions.

A run's privacy loss is the composition of its rounds: each round samples
clients (Poisson with rate ``q``, or ``m`` of ``N`` without replacement) and
adds Gaussian noise of standard deviation ``z * C`` to the sum of their
clipped updates. Google's ``dp-accounting`` composes those exact events; the
accountant is chosen by name (``rdp`` or ``pld``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import dp_accounting
from dp_accounting import pld, rdp

ACCOUNTANTS = ("rdp", "pld")
SAMPLINGS = ("poisson", "fixed")
# dp-accounting logs a warning for every RDP order it cannot evaluate under
# sampling without replacement; those orders are skipped and the bound stays valid.
logging.getLogger("absl").setLevel(logging.ERROR)


@dataclass(frozen=True, slots=True)
class Sampling:
    """How clients are chosen each round.

    Attributes
    ----------
    kind
        ``poisson``: each client joins independently with probability
        ``rate``; ``fixed``: ``size`` of ``population`` clients without replacement.
    rate
        Poisson rate ``q`` (for ``poisson``).
    population, size
        ``N`` and ``m`` (for ``fixed``).
    """

    kind: str = "poisson"
    rate: float = 1.0
    population: int = 0
    size: int = 0

    def __post_init__(self) -> None:
        if self.kind not in SAMPLINGS:
            raise ValueError(
                f"unknown sampling {self.kind!r}: choose one of {', '.join(SAMPLINGS)}"
            )
        if self.kind == "poisson" and not 0.0 < self.rate <= 1.0:
            raise ValueError(f"invalid sample rate {self.rate}: it must be in (0, 1]")
        if self.kind == "fixed" and not 0 < self.size <= self.population:
            raise ValueError(
                f"invalid fixed sample {self.size} of {self.population}: need 0 < m <= N"
            )

    @property
    def expected_rate(self) -> float:
        """The chance that a given client takes part in a round."""
        return self.rate if self.kind == "poisson" else self.size / self.population


def round_event(noise_multiplier: float, sampling: Sampling) -> dp_accounting.DpEvent:
    """The DP event of one round: the sampled Gaussian mechanism."""
    if sampling.kind == "fixed":
        # A fixed-size sample is analysed for neighbours that replace one client,
        # under which the sum of updates clipped to C moves by up to 2C: the
        # event's noise multiplier (noise / sensitivity) is then z / 2.
        return dp_accounting.SampledWithoutReplacementDpEvent(
            sampling.population, sampling.size, dp_accounting.GaussianDpEvent(noise_multiplier / 2)
        )
    gaussian = dp_accounting.GaussianDpEvent(noise_multiplier)
    if sampling.rate == 1.0:
        return gaussian
    return dp_accounting.PoissonSampledDpEvent(sampling.rate, gaussian)


def _accountant(name: str, fixed: bool) -> dp_accounting.PrivacyAccountant:
    if name not in ACCOUNTANTS:
        raise ValueError(f"unknown accountant {name!r}: choose one of {', '.join(ACCOUNTANTS)}")
    if fixed:
        if name == "pld":
            raise ValueError(
                "the pld accountant cannot account sampling without replacement: use rdp"
            )
        return rdp.RdpAccountant(neighboring_relation=dp_accounting.NeighboringRelation.REPLACE_ONE)
    return rdp.RdpAccountant() if name == "rdp" else pld.PLDAccountant()


def epsilon(
    noise_multiplier: float,
    sampling: Sampling,
    rounds: int,
    delta: float,
    accountant: str = "rdp",
) -> float:
    """ε at ``delta`` after ``rounds`` rounds (``inf`` without noise)."""
    if rounds < 0 or not 0.0 < delta < 1.0:
        raise ValueError(f"need rounds >= 0 and 0 < delta < 1, got {rounds} and {delta}")
    if rounds == 0:
        return 0.0
    if noise_multiplier <= 0:
        return float("inf")
    engine = _accountant(accountant, sampling.kind == "fixed")
    engine.compose(round_event(noise_multiplier, sampling), rounds)
    return float(engine.get_epsilon(delta))


def calibrate_noise_multiplier(
    target_epsilon: float,
    sampling: Sampling,
    rounds: int,
    delta: float,
    accountant: str = "rdp",
    *,
    tolerance: float = 1e-3,
) -> float:
    """The smallest noise multiplier (within ``tolerance``) whose ε stays within the target.

    Raises
    ------
    ValueError
        If the target is not positive or cannot be met with a noise multiplier below 1000.
    """
    if target_epsilon <= 0:
        raise ValueError(f"invalid target epsilon {target_epsilon}: it must be > 0")
    low, high = 0.0, 1.0
    while epsilon(high, sampling, rounds, delta, accountant) > target_epsilon:
        low, high = high, high * 2
        if high > 1000:
            raise ValueError(f"epsilon {target_epsilon} is out of reach for {rounds} rounds")
    while high - low > tolerance:
        middle = (low + high) / 2
        if epsilon(middle, sampling, rounds, delta, accountant) > target_epsilon:
            low = middle
        else:
            high = middle
    return high


def rounds_within_budget(
    noise_multiplier: float,
    sampling: Sampling,
    delta: float,
    budget: float,
    accountant: str = "rdp",
    *,
    limit: int = 100_000,
) -> int:
    """How many rounds fit in an ε budget (``limit`` if more than that)."""
    if epsilon(noise_multiplier, sampling, 1, delta, accountant) > budget:
        return 0
    low, high = 1, 2
    while high < limit and epsilon(noise_multiplier, sampling, high, delta, accountant) <= budget:
        low, high = high, min(high * 2, limit)
    if high == limit and epsilon(noise_multiplier, sampling, high, delta, accountant) <= budget:
        return limit
    while high - low > 1:
        middle = (low + high) // 2
        if epsilon(noise_multiplier, sampling, middle, delta, accountant) <= budget:
            low = middle
        else:
            high = middle
    return low


@dataclass(frozen=True, slots=True)
class RunSpend:
    """The privacy events of one run: ``rounds`` sampled Gaussian rounds."""

    noise_multiplier: float
    sampling: Sampling
    rounds: int


def composed_epsilon(runs: list[RunSpend], delta: float, accountant: str = "rdp") -> float:
    """ε at ``delta`` of several runs on the same population, composed by the accountant."""
    active = [run for run in runs if run.rounds > 0]
    if not active:
        return 0.0
    if any(run.noise_multiplier <= 0 for run in active):
        return float("inf")
    kinds = {run.sampling.kind for run in active}
    if len(kinds) > 1:
        raise ValueError(
            "runs with fixed-size and Poisson sampling use different neighbouring relations "
            "and cannot be composed by one accountant"
        )
    engine = _accountant(accountant, "fixed" in kinds)
    for run in active:
        engine.compose(round_event(run.noise_multiplier, run.sampling), run.rounds)
    return float(engine.get_epsilon(delta))
