"""The one place where combinations of privacy settings are refused.

A DP mechanism, a secure-aggregation mode, an aggregation rule, a sampling
kind and a client selection each make sense alone; some pairings would run
with a weaker guarantee than the one accounted for. Every such pairing is
refused here, with a one-line reason that names the options involved.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aicache.privacy.accounting import SamplingKind
from aicache.privacy.modes import SECURE_AGGREGATIONS, SecureMode

if TYPE_CHECKING:
    from aicache.privacy.central import DpPlan

# Strategies whose aggregate is the (unweighted, under DP) mean of the client models:
# one client moves it by at most 2C/m, which is what the noise is calibrated to.
DP_STRATEGIES = ("fedavg", "fedprox")

# Under masking or encryption the server only adds: the rules that need each update
# in the clear do not apply, and neither does noise accounted per visible update.
_FEDAVG_ONLY = {
    SecureMode.HE: (
        "--secure he runs FedAvg: the server only adds ciphertexts, so median, Krum "
        "and the other rules that need each update in the clear do not apply"
    ),
    SecureMode.SECAGG: (
        "--secure secagg runs FedAvg, with --dp off, central or distributed: its sum is "
        "all the server sees, so median, Krum and per-update (local) noise do not apply"
    ),
}
_NOT_LOCAL = {
    SecureMode.HE: (
        "--secure he works with --dp off, central or distributed, not local: local DP "
        "is accounted for a server that sees each update, so under encryption, where it "
        "sees only the sum, use --dp distributed"
    ),
    SecureMode.SECAGG: _FEDAVG_ONLY[SecureMode.SECAGG],
}


def refuse_sampling(dp: DpPlan) -> None:
    """Refuse a mechanism with a sampling or clipping it cannot be accounted for.

    Raises
    ------
    ValueError
        Naming the option and what to use instead.
    """
    mechanism, sampling = dp.mechanism, dp.sampling
    mechanism.check(dp)
    poisson = sampling.kind is SamplingKind.POISSON
    if mechanism.enabled and poisson and not mechanism.allows_poisson:
        raise ValueError(
            f"Poisson sampling (--sample-rate) is for --dp central; --dp {dp.mode} "
            "samples a fixed share of clients (--fraction)"
        )
    if mechanism.enabled and poisson and sampling.population < 1:
        raise ValueError(
            "Poisson sampling needs the population size: the noise is calibrated to "
            "the expected count q·N"
        )
    if dp.target_quantile:
        _refuse_adaptive(dp)
    mechanism.check_rounds(dp)
    if mechanism.enabled and not poisson and dp.accountant == "pld" and not mechanism.local:
        raise ValueError("the pld accountant cannot account sampling without replacement: use rdp")


def _refuse_adaptive(dp: DpPlan) -> None:
    if not dp.mechanism.allows_adaptive:
        raise ValueError("--adaptive-clip is an option of --dp central")
    if dp.sampling.kind is not SamplingKind.FIXED:
        raise ValueError(
            "adaptive clipping is an option of --dp central with a fixed share of clients "
            "(--fraction): under Poisson sampling its clipped count would be under-noised"
        )
    if not 0 < dp.target_quantile < 1:
        raise ValueError(f"invalid target quantile {dp.target_quantile}: it must be in (0, 1)")
    if not dp.noise_multiplier < 2 * dp.clipped_count_stddev:
        raise ValueError(
            f"adaptive clipping is undefined for noise multiplier {dp.noise_multiplier:g} "
            f"with clipped-count noise {dp.clipped_count_stddev:g}: the update noise "
            "(z^-2 - (2·σ_b)^-2)^-1/2 needs z < 2·σ_b; raise the clipped-count noise "
            "or sample more clients"
        )


def refuse_plan(
    *,
    dp: DpPlan,
    secure: SecureMode,
    strategy: str,
    min_clients: int,
    max_update_norm: float,
) -> None:
    """Refuse a run whose DP mechanism, secure mode, rule and selection do not fit.

    Raises
    ------
    ValueError
        Naming the options that clash and why.
    """
    mechanism, aggregation = dp.mechanism, SECURE_AGGREGATIONS[secure]
    if min_clients < aggregation.min_clients:
        raise ValueError(
            f"--secure {secure} needs at least {aggregation.min_clients} clients a round "
            "(--min-clients)"
        )
    if aggregation.hides_updates and strategy != "fedavg":
        raise ValueError(_FEDAVG_ONLY[secure])
    if aggregation.hides_updates and mechanism.local:
        raise ValueError(_NOT_LOCAL[secure])
    if aggregation.hides_updates and mechanism.server_noise:
        # Under SecAgg+ or CKKS the server sees only the sum: the fixed divisor m that
        # central DP's noise is calibrated to is kept by counting a missing client as a
        # zero update, which needs a fixed-size sample; adaptive clipping would need each
        # client's clipped bit in the clear.
        if dp.sampling.kind is not SamplingKind.FIXED:
            raise ValueError(
                f"--dp central with --secure {secure} samples a fixed share of clients "
                "(--fraction), not Poisson (--sample-rate): the aggregate is the sum over a "
                "fixed count m"
            )
        if dp.adaptive:
            raise ValueError(
                f"--adaptive-clip is not available with --secure {secure}: it needs each "
                "client's clipped bit, which secure aggregation hides"
            )
    if mechanism.needs_hidden_updates and not aggregation.hides_updates:
        raise ValueError(
            f"--dp {dp.mode} needs --secure secagg or he: without masking or encryption "
            "the server would see each client's update with only its small share of the "
            "noise"
        )
    # Local DP noises each update on its client: any aggregation rule is then
    # post-processing, so only the modes that noise a sum need a mean.
    if mechanism.noises_a_sum and strategy not in DP_STRATEGIES:
        raise ValueError(
            f"--dp {dp.mode} works with {' or '.join(DP_STRATEGIES)} only: the noise is "
            f"calibrated to a mean of clipped updates, and {strategy} is not one"
        )
    if mechanism.clips_updates_in_clear and 0 < max_update_norm < dp.clip:
        raise ValueError(
            f"the update norm bound {max_update_norm:g} is below the clipping norm "
            f"{dp.clip:g}: every clipped update could be rejected"
        )


def refuse_experiment(*, secure: SecureMode, adversaries: int, dropouts: int) -> None:
    """Refuse simulated attackers or dropouts that ``secure`` cannot run with.

    Raises
    ------
    ValueError
        Naming the experiment's option.
    """
    aggregation = SECURE_AGGREGATIONS[secure]
    if dropouts and not aggregation.takes_dropouts:
        raise ValueError("--secagg-dropouts needs --secure secagg")
    if adversaries and not aggregation.takes_adversaries:
        raise ValueError(f"--adversarial is not available with --secure {secure}")
