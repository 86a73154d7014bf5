"""DP mechanisms and secure-aggregation modes, each an object found by name.

As Opacus keeps its accountants, every mode is a small object registered under
its name: it checks its own settings, says how a run under it is accounted and
what each client adds, and describes the guarantee it gives. Nothing outside
this module (and :mod:`aicache.privacy.combinations`, where refused pairings
live) branches on a mode's name; the federation layer registers its Flower
parts (the server-side DP wrappers, the app pairs) under the same names.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any, TypeVar

from aicache.privacy.accounting import RunSpend

if TYPE_CHECKING:
    from aicache.privacy.central import DpPlan
    from aicache.privacy.secure import SecAggSettings


class DpMode(StrEnum):
    """The names of the differential-privacy mechanisms."""

    OFF = "off"
    CENTRAL = "central"
    DISTRIBUTED = "distributed"
    LOCAL = "local"


class SecureMode(StrEnum):
    """The names of the secure-aggregation modes."""

    OFF = "off"
    SECAGG = "secagg"
    HE = "he"


_Mode = TypeVar("_Mode", bound=StrEnum)


def _named(kind: type[_Mode], value: str, what: str) -> _Mode:
    """``value`` as a member of ``kind``, or a ``ValueError`` listing the names."""
    try:
        return kind(value)
    except ValueError:
        names = ", ".join(member.value for member in kind)
        raise ValueError(f"unknown {what} {value!r}: choose one of {names}") from None


def dp_mode(value: str) -> DpMode:
    """The DP mode named ``value`` (``ValueError`` naming the choices otherwise)."""
    return _named(DpMode, value, "DP mode")


def secure_mode(value: str) -> SecureMode:
    """The secure-aggregation mode named ``value`` (``ValueError`` naming the choices)."""
    return _named(SecureMode, value, "secure mode")


@dataclass(frozen=True, slots=True)
class ClientNoise:
    """What each sampled client does to its own update before it leaves: clip, then noise.

    Attributes
    ----------
    clip
        The L2 bound ``C`` the client clips its update to.
    std
        The standard deviation of the Gaussian noise it adds to each coordinate.
    """

    clip: float
    std: float


class DpMechanism:
    """A DP mechanism: the behaviour that differs between ``off``, ``central``, ...

    Attributes
    ----------
    mode
        Its name.
    enabled
        Whether it adds noise at all.
    local
        Accounted per client, without amplification by sampling.
    noises_a_sum
        Its noise is calibrated to a mean of clipped updates: the strategy must
        compute that mean (local noise makes any rule post-processing).
    server_noise
        The server (not the clients) adds the noise to the aggregate.
    clips_updates_in_clear
        The server sees each clipped update: its update-norm bound must not be
        below the clipping norm.
    allows_poisson, allows_adaptive
        Poisson sampling and adaptive clipping are accounted for it.
    deployable
        A deployed federation runs it (not only a simulation).
    needs_hidden_updates
        Each update carries only a share of the noise: the server must never
        see one alone (secure aggregation is required).
    """

    mode: DpMode = DpMode.OFF
    enabled = True
    local = False
    noises_a_sum = False
    server_noise = False
    clips_updates_in_clear = False
    allows_poisson = False
    allows_adaptive = False
    deployable = False
    needs_hidden_updates = False

    def check(self, dp: DpPlan) -> None:
        """Reject settings this mechanism cannot run with (``ValueError``)."""
        if dp.clip <= 0:
            raise ValueError(f"invalid clipping norm {dp.clip}: it must be > 0")
        if dp.noise_multiplier <= 0:
            raise ValueError(
                f"invalid noise multiplier {dp.noise_multiplier}: it must be > 0 "
                "(or give a target epsilon)"
            )
        if not 0 < dp.delta < 1:
            raise ValueError(f"invalid delta {dp.delta}: it must be in (0, 1)")
        if dp.budget is not None and dp.budget <= 0:
            raise ValueError(f"invalid budget {dp.budget}: it must be > 0")

    def check_rounds(self, dp: DpPlan) -> None:
        """Reject what a round under this mechanism cannot complete with (``ValueError``)."""

    def spread(self, z: float, *, sampled: int, survivors: int) -> float:
        """The multiplier to run with, given the one ``z`` calibrated for the accountant."""
        return z

    def effective_noise_multiplier(self, dp: DpPlan) -> float:
        """The noise over the sensitivity that the accountant may count on."""
        return dp.noise_multiplier

    def spend(self, dp: DpPlan, rounds: int) -> RunSpend:
        """The accounting event of ``rounds`` rounds."""
        return RunSpend(self.effective_noise_multiplier(dp), dp.sampling, rounds, local=self.local)

    def client_noise(self, dp: DpPlan) -> ClientNoise | None:
        """What each client adds to its own update (``None``: nothing)."""
        return None

    def update_norm_bound(self, dp: DpPlan, bound: float, dimension: int) -> float:
        """The update norm the server should accept, given the plan's ``bound``."""
        return bound

    def guarantee(self, dp: DpPlan) -> dict[str, Any]:
        """Who ε protects, against which neighbours, with what sensitivity."""
        spend = self.spend(dp, 0)
        sensitivity = 2 * dp.clip if spend.relation == "replace-one" else dp.clip
        return {
            "protects": "each client's participation and data, in the released models",
            "neighbouring": f"{spend.relation.replace('-', ' ')} client",
            "released": "the noised sum of the sampled clients' clipped updates",
            "sensitivity": sensitivity,
            "noise_std": dp.update_noise_multiplier * dp.clip,
            "amplification": f"{dp.sampling.kind} sampling",
        }


class NoDp(DpMechanism):
    """No differential privacy: no noise, and an infinite ε."""

    mode = DpMode.OFF
    enabled = False
    deployable = True

    def check(self, dp: DpPlan) -> None:
        """Nothing to check: the settings are not used."""

    def effective_noise_multiplier(self, dp: DpPlan) -> float:
        """No noise."""
        return 0.0


class CentralDp(DpMechanism):
    """Central DP-FedAvg: clients clip, the server noises the sum."""

    mode = DpMode.CENTRAL
    noises_a_sum = True
    server_noise = True
    clips_updates_in_clear = True
    allows_poisson = True
    allows_adaptive = True
    deployable = True


class DistributedDp(DpMechanism):
    """Each client adds its share of the noise before its update is masked or encrypted.

    The accountant counts on the fewest survivors a round completes with:
    ``z_eff = z·sqrt(t/m)``.
    """

    mode = DpMode.DISTRIBUTED
    noises_a_sum = True
    needs_hidden_updates = True
    deployable = True

    def check_rounds(self, dp: DpPlan) -> None:
        """The fewest survivors of a round must be known."""
        if not 2 <= dp.min_survivors <= dp.sampling.size:
            raise ValueError(
                f"distributed DP needs the fewest survivors of a round (2 to "
                f"{dp.sampling.size}), got {dp.min_survivors}"
            )

    def spread(self, z: float, *, sampled: int, survivors: int) -> float:
        """Calibrated for the fewest survivors, then spread over the ``m`` sampled."""
        return float(z * (sampled / survivors) ** 0.5)

    def effective_noise_multiplier(self, dp: DpPlan) -> float:
        """What the fewest survivors' shares add up to."""
        return float(dp.noise_multiplier * (dp.min_survivors / dp.sampling.size) ** 0.5)

    def client_noise(self, dp: DpPlan) -> ClientNoise:
        """``N(0, z²C²/m)`` on each of the ``m`` clients."""
        return ClientNoise(dp.clip, dp.noise_multiplier * dp.clip / dp.sampling.size**0.5)


class LocalDp(DpMechanism):
    """Each client clips and adds the whole noise to its own update."""

    mode = DpMode.LOCAL
    local = True
    clips_updates_in_clear = True

    def client_noise(self, dp: DpPlan) -> ClientNoise:
        """``N(0, z²C²)`` on each client's own update."""
        return ClientNoise(dp.clip, dp.noise_multiplier * dp.clip)

    def update_norm_bound(self, dp: DpPlan, bound: float, dimension: int) -> float:
        """An honest update carries its noise: widen by what it exceeds only negligibly."""
        from aicache.privacy.noise import noisy_update_bound

        if bound == 0:
            return bound
        std = dp.noise_multiplier * dp.clip
        return max(bound, noisy_update_bound(dp.clip, std, dimension))

    def guarantee(self, dp: DpPlan) -> dict[str, Any]:
        """Per client, against the server and everyone after it, no amplification."""
        return {
            "protects": "each client's data, from the server and everyone after it",
            "neighbouring": "replace one client's data",
            "released": "each sampled client's own clipped, noised update",
            "sensitivity": 2 * dp.clip,
            "noise_std": dp.noise_multiplier * dp.clip,
            "amplification": "none: the server chooses and sees who takes part",
        }


DP_MECHANISMS: dict[DpMode, DpMechanism] = {
    mechanism.mode: mechanism for mechanism in (NoDp(), CentralDp(), DistributedDp(), LocalDp())
}


class SecureAggregation:
    """A secure-aggregation mode: what the server can see and what a round needs.

    Attributes
    ----------
    mode
        Its name.
    hides_updates
        The server sees only the sum of the updates, never one of them.
    min_clients
        The fewest clients a round may ask.
    takes_adversaries, takes_dropouts
        Whether simulated attackers and mid-protocol dropouts run under it.
    client_noise_in_config
        A client's own noise (local or distributed DP) is asked for in the
        round's train config (otherwise the mode's protocol carries it).
    deployable
        A deployed federation runs it (not only a simulation).
    encrypts_updates, needs_keys
        Clients encrypt their updates, with keys made for the run.
    bounds_weights
        The masked sum has a fixed range: weights and the clients a round
        must fit in it.
    sent_as
        How an update leaves a client under it, as a node's privacy report says.
    """

    mode: SecureMode = SecureMode.OFF
    hides_updates = False
    min_clients = 1
    takes_adversaries = True
    takes_dropouts = False
    client_noise_in_config = True
    deployable = False
    encrypts_updates = False
    needs_keys = False
    bounds_weights = False
    sent_as = "in the clear to the server (over TLS)"

    def min_survivors(self, settings: SecAggSettings, sampled: int) -> int:
        """The fewest of ``sampled`` clients a round can complete with (0: not bounded)."""
        return 0


class NoSecureAggregation(SecureAggregation):
    """Updates reach the server in the clear (over TLS)."""

    mode = SecureMode.OFF
    deployable = True
    sent_as = "in the clear to the server (over TLS): it saw each update"

    def min_survivors(self, settings: SecAggSettings, sampled: int) -> int:
        """Nothing to reconstruct: a round hears from whoever answers, at most all."""
        return sampled


class SecAggPlus(SecureAggregation):
    """SecAgg+ masking: a round completes while its reconstruction threshold survives."""

    mode = SecureMode.SECAGG
    hides_updates = True
    min_clients = 2
    takes_adversaries = False
    takes_dropouts = True
    client_noise_in_config = False
    bounds_weights = True
    deployable = True
    sent_as = "masked with SecAgg+: the server saw only the sum of the round's updates"

    def min_survivors(self, settings: SecAggSettings, sampled: int) -> int:
        """The reconstruction threshold, rounded up from Flower's own arithmetic.

        The accountant then never assumes more noise than the smallest
        completing round holds.
        """
        shares = settings.num_shares
        count = sampled if shares == 1.0 else int(shares) if shares > 1 else round(shares * sampled)
        threshold = settings.reconstruction_threshold
        needed = int(threshold) if threshold > 1 else math.ceil(threshold * count)
        return min(sampled, max(2, needed))


class Homomorphic(SecureAggregation):
    """CKKS encryption: the server adds ciphertexts; a round needs every sampled client."""

    mode = SecureMode.HE
    hides_updates = True
    encrypts_updates = True
    needs_keys = True
    deployable = True
    sent_as = "encrypted with CKKS: the server added ciphertexts it cannot read"

    def min_survivors(self, settings: SecAggSettings, sampled: int) -> int:
        """CKKS has no reconstruction threshold: every sampled client."""
        return sampled


SECURE_AGGREGATIONS: dict[SecureMode, SecureAggregation] = {
    mode.mode: mode for mode in (NoSecureAggregation(), SecAggPlus(), Homomorphic())
}


def mechanism(mode: str) -> DpMechanism:
    """The DP mechanism registered as ``mode``."""
    return DP_MECHANISMS[dp_mode(mode)]


def secure_aggregation(mode: str) -> SecureAggregation:
    """The secure-aggregation mode registered as ``mode``."""
    return SECURE_AGGREGATIONS[secure_mode(mode)]


def sent_as(mode: str) -> str:
    """How an update sent under the secure mode called ``mode`` left its client."""
    try:
        return secure_aggregation(mode).sent_as
    except ValueError:
        return f"sent under an unknown secure mode {mode!r}"
