"""The server-side Flower wrappers of the DP mechanisms, registered by the mechanism's name.

Only central DP wraps the strategy on the server (Flower's client-side-clipping
wrappers: the clients clip, the server noises the mean). Local DP's clients clip
and noise themselves (``local_dp_mod``); distributed DP's noise shares travel
with the secure mode's protocol.
"""

from __future__ import annotations

from collections.abc import Callable

from flwr.serverapp.strategy import DifferentialPrivacyClientSideFixedClipping, Strategy

from aicache.federation.adaptive_clipping import RoundNormAdaptiveClipping
from aicache.federation.plan import TrainingPlan
from aicache.federation.poisson_sampling import PoissonSampling
from aicache.privacy.accounting import SamplingKind
from aicache.privacy.modes import DpMode


def central_dp_strategy(plan: TrainingPlan, inner: Strategy) -> Strategy:
    """``inner`` with central DP's sampling and noise around it.

    Fixed-size sampling: Flower's wrapper adds ``z·C/m`` to the mean of ``m``
    clipped updates. Poisson sampling: :class:`PoissonSampling` draws the
    clients and the mean must be over ``qN``, which need not be whole while
    Flower's wrapper takes a whole count; it is given the population ``N``
    and the multiplier ``z/q`` instead, whose noise ``(z/q)·C/N = z·C/(qN)``
    is the same.
    """
    sampling = plan.dp.sampling
    if sampling.kind is SamplingKind.POISSON:
        return DifferentialPrivacyClientSideFixedClipping(
            PoissonSampling(inner, rate=sampling.rate),
            noise_multiplier=plan.dp.noise_multiplier / sampling.rate,
            clipping_norm=plan.dp.clip,
            num_sampled_clients=sampling.population,
        )
    if plan.dp.adaptive:
        return RoundNormAdaptiveClipping(
            inner,
            noise_multiplier=plan.dp.noise_multiplier,  # Flower derives z_Δ from it
            num_sampled_clients=sampling.size,
            initial_clipping_norm=plan.dp.clip,
            target_clipped_quantile=plan.dp.target_quantile,
            clipped_count_stddev=plan.dp.clipped_count_stddev,
        )
    return DifferentialPrivacyClientSideFixedClipping(
        inner,
        noise_multiplier=plan.dp.noise_multiplier,
        clipping_norm=plan.dp.clip,
        num_sampled_clients=sampling.size,
    )


StrategyWrapper = Callable[[TrainingPlan, Strategy], Strategy]

DP_SERVER_WRAPPERS: dict[DpMode, StrategyWrapper] = {DpMode.CENTRAL: central_dp_strategy}


def private_strategy(plan: TrainingPlan, inner: Strategy) -> Strategy:
    """``inner`` with the server-side wrapper of the plan's DP mechanism, if it has one."""
    wrap = DP_SERVER_WRAPPERS.get(plan.dp.mechanism.mode)
    return inner if wrap is None else wrap(plan, inner)
