"""Settings of client-level differential privacy for a run, and what it has spent.

Central DP-FedAvg: each sampled client clips its update to L2 norm ``C``
(Flower's ``fixedclipping_mod``) and the server adds Gaussian noise of
standard deviation ``z * C`` to the sum of the clipped updates (Flower's
``DifferentialPrivacyClientSideFixedClipping`` adds ``z * C / m`` to their
mean of ``m``). Clients weigh equally, as the sensitivity analysis assumes.

Distributed DP, for a server that is not trusted with an un-noised sum: each
of the ``m`` sampled clients clips its update and adds its share of the
noise, ``N(0, z²C²/m)``, before SecAgg+ masks it, so the server only ever
sees a sum that already holds ``N(0, z²C²)``. A client that drops out takes
its share with it: with ``k`` survivors the noise is ``z·sqrt(k/m)·C``. The
accountant therefore uses the fewest survivors a round can complete with
(the SecAgg+ reconstruction threshold ``t``): ``z_eff = z·sqrt(t/m)``.

Local DP, for completeness: each sampled client clips its update to ``C`` and
adds ``N(0, z²C²)`` to it alone before sending, so the server never sees an
update with less than the whole noise. The guarantee is per client against
the server and everyone after it: neighbours replace that client's data, the
released update moves by up to ``2C`` (sensitivity ``2C``, multiplier
``z / 2`` per round), and since the server chooses and sees who takes part,
sampling does not amplify it. A version's ε composes all its rounds, the
worst case of a client sampled in every one.

Adaptive quantile clipping (Andrew et al. 2021), an option of central DP with
a fixed-size sample: the clipping norm ``C_t`` follows a target quantile of
the update norms, learnt from the count of clipped updates, which is itself
released with Gaussian noise ``σ_b``. Under replace-one neighbours the sum of
updates moves by ``2C_t`` and the count by 1, so the pair, noised with
``z_Δ·C_t`` and ``σ_b``, is one Gaussian mechanism whose multiplier (in this
module's convention, noise over ``C``) is ``(z_Δ^-2 + (2σ_b)^-2)^-1/2``. The
plan's ``z`` is that effective multiplier, the one the accountant uses; the
updates get ``z_Δ = (z^-2 - (2σ_b)^-2)^-1/2``, which exists only when
``z < 2σ_b``. Poisson sampling is refused with it: Flower counts clipped
updates uncentred, and for add-or-remove neighbours that count's sensitivity
is 1, not 1/2, so the same formula would under-noise.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from aicache.privacy.accounting import (
    ACCOUNTANTS,
    RunSpend,
    Sampling,
    calibrate_noise_multiplier,
    epsilon,
)
from aicache.privacy.combinations import refuse_sampling
from aicache.privacy.modes import DP_MECHANISMS, DpMechanism, DpMode, dp_mode
from aicache.privacy.record import PrivacyRecord


def default_delta(population: int) -> float:
    """δ well below one over the population: ``min(1e-5, 0.1 / N)``."""
    return min(1e-5, 0.1 / max(population, 1))


@dataclass(frozen=True, slots=True, kw_only=True)
class DpPlan:
    """Differential privacy of one run.

    Attributes
    ----------
    mode
        The mechanism's name: ``off``, ``central``, ``distributed`` or ``local``.
    clip
        The L2 bound ``C`` on each client's update.
    noise_multiplier
        ``z``: the noise's standard deviation over ``C``.
    delta
        The δ at which ε is reported.
    accountant
        ``rdp`` or ``pld``.
    sampling
        How clients are sampled each round (accounted with the matching event).
    budget
        The largest ε the run may reach (``None``: no limit but the plan's rounds).
    min_survivors
        Distributed DP only: the fewest clients a round can complete with.
    target_quantile, clipped_count_stddev
        Adaptive clipping (central DP): the quantile ``C`` follows and the noise
        ``σ_b`` on the count of clipped updates (0: fixed clipping).
    """

    mode: str = DpMode.OFF  # a DpMode once built (its name is accepted)
    clip: float = 1.0
    noise_multiplier: float = 0.0
    delta: float = 1e-5
    accountant: str = "rdp"
    sampling: Sampling = field(default_factory=Sampling)
    budget: float | None = None
    min_survivors: int = 0
    target_quantile: float = 0.0
    clipped_count_stddev: float = 0.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "mode", dp_mode(self.mode))
        if self.accountant not in ACCOUNTANTS:
            raise ValueError(
                f"unknown accountant {self.accountant!r}: choose one of {', '.join(ACCOUNTANTS)}"
            )
        refuse_sampling(self)

    @property
    def mechanism(self) -> DpMechanism:
        """The registered mechanism this plan runs."""
        return DP_MECHANISMS[dp_mode(self.mode)]

    @property
    def adaptive(self) -> bool:
        """Whether the clipping norm adapts to a quantile of the update norms."""
        return self.target_quantile > 0

    @property
    def update_noise_multiplier(self) -> float:
        """The noise on the sum of updates over ``C``: ``z``, or ``z_Δ`` when adaptive."""
        if not self.adaptive:
            return self.noise_multiplier
        return float((self.noise_multiplier**-2 - (2 * self.clipped_count_stddev) ** -2) ** -0.5)

    @classmethod
    def calibrated(
        cls,
        *,
        target_epsilon: float,
        rounds: int,
        clip: float,
        delta: float,
        accountant: str,
        sampling: Sampling,
        mode: str = DpMode.CENTRAL,
        min_survivors: int = 0,
        target_quantile: float = 0.0,
        clipped_count_stddev: float = 0.0,
    ) -> DpPlan:
        """The plan whose noise just meets ``target_epsilon`` after ``rounds`` rounds.

        With adaptive clipping the calibrated ``z`` is the effective multiplier.
        """
        settings: dict[str, Any] = {
            "mode": dp_mode(mode),
            "clip": clip,
            "delta": delta,
            "accountant": accountant,
            "sampling": sampling,
            "budget": target_epsilon,
            "min_survivors": min_survivors,
            "target_quantile": target_quantile,
            "clipped_count_stddev": clipped_count_stddev,
        }
        mechanism = DP_MECHANISMS[settings["mode"]]
        z = calibrate_noise_multiplier(
            target_epsilon, sampling, rounds, delta, accountant, local=mechanism.local
        )
        # The accountant's multiplier, spread as the mechanism runs it (e.g. over survivors).
        noise = mechanism.spread(z, sampled=sampling.size, survivors=min_survivors)
        return cls(**settings, noise_multiplier=noise)

    @property
    def enabled(self) -> bool:
        """Whether the run adds noise."""
        return self.mechanism.enabled

    @property
    def effective_noise_multiplier(self) -> float:
        """The noise over the sensitivity that the accountant may count on."""
        if not self.enabled:
            return self.noise_multiplier
        return self.mechanism.effective_noise_multiplier(self)

    def spend(self, rounds: int) -> RunSpend:
        """The accountant's view of ``rounds`` rounds of this plan."""
        return self.mechanism.spend(self, rounds)

    def epsilon_after(self, rounds: int) -> float:
        """ε at :attr:`delta` after ``rounds`` rounds (``inf`` when DP is off)."""
        if not self.enabled:
            return float("inf") if rounds else 0.0
        spend = self.spend(rounds)
        return epsilon(
            spend.noise_multiplier,
            self.sampling,
            rounds,
            self.delta,
            self.accountant,
            local=spend.local,
        )

    def clipping(self) -> dict[str, Any]:
        """How updates are clipped (``clip`` is the initial norm when it adapts)."""
        if not self.adaptive:
            return {"clipping": "fixed"}
        return {
            "clipping": "adaptive",
            "target_quantile": self.target_quantile,
            "clipped_count_stddev": self.clipped_count_stddev,
            "update_noise_multiplier": self.update_noise_multiplier,
        }

    def guarantee(self) -> dict[str, Any]:
        """Who ε protects, against which neighbours, with what sensitivity."""
        return self.mechanism.guarantee(self)

    def privacy_record(self, rounds: int) -> PrivacyRecord:
        """The typed privacy record of a model version made after ``rounds`` rounds."""
        if not self.enabled:
            return PrivacyRecord(dp=DpMode.OFF)
        return PrivacyRecord(
            dp=dp_mode(self.mode),
            mechanism="gaussian",
            noise_multiplier=self.noise_multiplier,
            effective_noise_multiplier=self.effective_noise_multiplier,
            clip=self.clip,
            sampling={**asdict(self.sampling), "rate": self.sampling.expected_rate},
            rounds=rounds,
            epsilon=self.epsilon_after(rounds),
            delta=self.delta,
            accountant=self.accountant,
            budget=self.budget,
            guarantee=self.guarantee(),
            clipping=self.clipping(),
        )

    def record(self, rounds: int) -> dict[str, Any]:
        """The privacy fields stored with a model version made after ``rounds`` rounds."""
        return self.privacy_record(rounds).as_dict()

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready form (kept with the run, for resuming)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DpPlan:
        """Rebuild a plan from :meth:`as_dict`."""
        return cls(**{**data, "sampling": Sampling(**data["sampling"])})
