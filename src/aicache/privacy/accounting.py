"""Differential-privacy accounting for federated rounds, as pure functions.

A run's privacy loss is the composition of its rounds: each round samples
clients (Poisson with rate ``q``, or ``m`` of ``N`` without replacement) and
adds Gaussian noise of standard deviation ``z * C`` to the sum of their
clipped updates. Google's ``dp-accounting`` composes those exact events; the
accountant is chosen by name (``rdp`` or ``pld``).

Neighbouring relations: Poisson sampling is analysed for neighbours that add
or remove one client (the sum moves by up to ``C``: multiplier ``z``); a
fixed-size sample for neighbours that replace one (up to ``2C``: ``z / 2``).

Local DP releases each client's own update, clipped to ``C`` and noised with
``N(0, z²C²)``; its neighbours replace that client's data, so the released
update moves by up to ``2C`` and one round is a Gaussian mechanism with
multiplier ``z / 2``. The server chooses and sees who takes part, so
sampling amplifies nothing from the client's point of view: a client's ε is
the composition of the rounds it took part in, at most all of them.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

from aicache.extras import LazyModule

if TYPE_CHECKING:
    import dp_accounting
    from dp_accounting import pld, rdp
else:  # an extra (it brings scipy): imported on first use, so a node's imports stay light
    dp_accounting = LazyModule("server", "dp_accounting")
    pld = LazyModule("server", "dp_accounting.pld")
    rdp = LazyModule("server", "dp_accounting.rdp")

ACCOUNTANTS = ("rdp", "pld")


class SamplingKind(StrEnum):
    """How clients are drawn each round."""

    POISSON = "poisson"
    FIXED = "fixed"


SAMPLINGS = tuple(kind.value for kind in SamplingKind)
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

    kind: str = SamplingKind.POISSON  # a SamplingKind once built (its name is accepted)
    rate: float = 1.0
    population: int = 0
    size: int = 0

    def __post_init__(self) -> None:
        if self.kind not in SAMPLINGS:
            raise ValueError(
                f"unknown sampling {self.kind!r}: choose one of {', '.join(SAMPLINGS)}"
            )
        object.__setattr__(self, "kind", SamplingKind(self.kind))
        if self.kind is SamplingKind.POISSON and not 0.0 < self.rate <= 1.0:
            raise ValueError(f"invalid sample rate {self.rate}: it must be in (0, 1]")
        if self.kind is SamplingKind.FIXED and not 0 < self.size <= self.population:
            raise ValueError(
                f"invalid fixed sample {self.size} of {self.population}: need 0 < m <= N"
            )

    @property
    def expected_rate(self) -> float:
        """The chance that a given client takes part in a round."""
        return self.rate if self.kind is SamplingKind.POISSON else self.size / self.population


def round_event(
    noise_multiplier: float, sampling: Sampling, *, local: bool = False
) -> dp_accounting.DpEvent:
    """The DP event of one round: the sampled Gaussian mechanism (``local``: one client's)."""
    if local:
        # One client's update, its data replaced: sensitivity 2C, no amplification.
        return dp_accounting.GaussianDpEvent(noise_multiplier / 2)
    if sampling.kind is SamplingKind.FIXED:
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


@dataclass(frozen=True, slots=True)
class RunSpend:
    """The privacy events of one run: ``rounds`` (sampled) Gaussian rounds.

    ``local`` marks a local-DP run: each round releases every sampled client's
    own noised update, accounted per client without amplification.
    """

    noise_multiplier: float
    sampling: Sampling
    rounds: int
    local: bool = False

    @property
    def relation(self) -> str:
        """The neighbouring relation this run's ε is stated for."""
        if self.local or self.sampling.kind is SamplingKind.FIXED:
            return "replace-one"
        return "add-or-remove-one"


def _accountant(name: str, runs: list[RunSpend]) -> dp_accounting.PrivacyAccountant:
    if name not in ACCOUNTANTS:
        raise ValueError(f"unknown accountant {name!r}: choose one of {', '.join(ACCOUNTANTS)}")
    relations = {run.relation for run in runs}
    if len(relations) > 1:
        raise ValueError(
            "runs with fixed-size (or local) and Poisson sampling use different neighbouring "
            "relations and cannot be composed by one accountant"
        )
    if any(run.sampling.kind is SamplingKind.FIXED and not run.local for run in runs):
        if name == "pld":
            raise ValueError(
                "the pld accountant cannot account sampling without replacement: use rdp"
            )
        # Local events are plain Gaussians, whose RDP curve is the same under either
        # relation (the relation is already in their sensitivity 2C).
        return rdp.RdpAccountant(neighboring_relation=dp_accounting.NeighboringRelation.REPLACE_ONE)
    # Only Poisson runs, or only local runs: plain Gaussian events whose privacy curve
    # depends on sensitivity / noise alone, so the default relation's accountant is
    # exact for them (dp-accounting's PLD under REPLACE_ONE would double the
    # sensitivity a second time).
    return rdp.RdpAccountant() if name == "rdp" else pld.PLDAccountant()


def epsilon(
    noise_multiplier: float,
    sampling: Sampling,
    rounds: int,
    delta: float,
    accountant: str = "rdp",
    *,
    local: bool = False,
) -> float:
    """ε at ``delta`` after ``rounds`` rounds (``inf`` without noise)."""
    if rounds < 0 or not 0.0 < delta < 1.0:
        raise ValueError(f"need rounds >= 0 and 0 < delta < 1, got {rounds} and {delta}")
    return composed_epsilon(
        [RunSpend(noise_multiplier, sampling, rounds, local)], delta, accountant
    )


def calibrate_noise_multiplier(
    target_epsilon: float,
    sampling: Sampling,
    rounds: int,
    delta: float,
    accountant: str = "rdp",
    *,
    tolerance: float = 1e-3,
    local: bool = False,
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
    while epsilon(high, sampling, rounds, delta, accountant, local=local) > target_epsilon:
        low, high = high, high * 2
        if high > 1000:
            raise ValueError(f"epsilon {target_epsilon} is out of reach for {rounds} rounds")
    while high - low > tolerance:
        middle = (low + high) / 2
        if epsilon(middle, sampling, rounds, delta, accountant, local=local) > target_epsilon:
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


def composed_epsilon(runs: list[RunSpend], delta: float, accountant: str = "rdp") -> float:
    """ε at ``delta`` of several runs on the same population, composed by the accountant."""
    if accountant not in ACCOUNTANTS:
        raise ValueError(
            f"unknown accountant {accountant!r}: choose one of {', '.join(ACCOUNTANTS)}"
        )
    active = [run for run in runs if run.rounds > 0]
    if not active:
        return 0.0
    if any(run.noise_multiplier <= 0 for run in active):
        return float("inf")
    engine = _accountant(accountant, active)
    for run in active:
        engine.compose(round_event(run.noise_multiplier, run.sampling, local=run.local), run.rounds)
    return float(engine.get_epsilon(delta))
