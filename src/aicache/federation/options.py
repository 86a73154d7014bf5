"""A run's plan from plain options: what ``simulate``, ``server run`` and the dashboard call.

The callers only parse and present; every rule about which options go together,
and every default, is here or below. Errors are :class:`AicacheError` naming
the option (``--dp``, ``--sample-rate``, ...), as the command line spells it.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from aicache.errors import AicacheError
from aicache.federation.aggregation import check_aggregation
from aicache.federation.plan import TrainingPlan
from aicache.federation.strategies import (
    ROBUST_STRATEGIES,
    Selection,
    StrategySpec,
    expecting_attackers,
)
from aicache.privacy.accounting import Sampling, SamplingKind
from aicache.privacy.central import DpPlan, default_delta
from aicache.privacy.modes import (
    DP_MECHANISMS,
    SECURE_AGGREGATIONS,
    DpMode,
    SecureAggregation,
    SecureMode,
    dp_mode,
    secure_mode,
)
from aicache.privacy.secure import SecAggSettings
from aicache.tasks.base import task_names
from aicache.tasks.spec import all_specs, get_spec


def robust_spec(
    spec: StrategySpec, expected: int | None, per_round: int, *, simulated: int = 0
) -> StrategySpec:
    """``spec`` told how many attackers to withstand (``--expected-attackers``).

    Unset, a robust rule expects the run's simulated attackers (``--adversarial``)
    and the other rules none: Krum with ``num_malicious_nodes`` 0 under attack
    would score updates as if every client were honest.
    """
    if expected is None:
        expected = simulated if spec.name in ROBUST_STRATEGIES else 0
    try:
        return expecting_attackers(spec, expected, per_round)
    except ValueError as exc:
        raise AicacheError(
            f"--expected-attackers {expected}: {exc}",
            hint="Ask more clients a round (--fraction, --min-clients) or choose another rule.",
        ) from exc


def _selection(
    fraction: float | None,
    min_clients: int | None,
    sample_rate: float | None,
    dp: DpMode,
    *,
    population: int,
    deployed: bool,
) -> Selection:
    """Who trains each round: a fixed share (``--fraction``) or a Poisson sample."""
    share = 1.0 if fraction is None else fraction
    fewest = 2 if min_clients is None else min_clients
    if deployed:
        if sample_rate is not None:
            # A deployed round asks the nodes that are connected, not a Poisson draw of
            # all enrolled ones: the accountant's amplification would not hold.
            raise AicacheError(
                "--sample-rate (Poisson sampling) is not available on a deployed federation: "
                "use --fraction and --min-clients"
            )
        # Under DP the sample must be m of all N enrolled nodes, as the accountant assumes:
        # the run waits for every enrolled node before its first round.
        waits = population if DP_MECHANISMS[dp].enabled else fewest
        return Selection(share, fewest, min_available=waits)
    if sample_rate is None:
        return Selection(share, min(fewest, population), min_available=population)
    if fraction is not None or min_clients is not None:
        raise AicacheError(
            "--sample-rate (Poisson sampling) and --fraction/--min-clients (a fixed number "
            "of clients a round) exclude each other: give one"
        )
    if not DP_MECHANISMS[dp].allows_poisson:
        raise AicacheError(
            "--sample-rate needs --dp central: it is the sampling the central DP accountant "
            "amplifies with (use --fraction otherwise)"
        )
    if not 0.0 < sample_rate <= 1.0:
        raise AicacheError(f"--sample-rate: invalid rate {sample_rate}: it must be in (0, 1]")
    # Only training is Poisson-sampled; evaluation asks about the same share, at least one.
    return Selection(sample_rate, 1, min_available=population)


def _dp_plan(
    mode: DpMode,
    *,
    clip: float,
    noise_multiplier: float | None,
    target_epsilon: float | None,
    delta: float | None,
    accountant: str,
    budget: float | None,
    population: int,
    selection: Selection,
    rounds: int,
    secagg: SecAggSettings,
    aggregation: SecureAggregation,
    sample_rate: float | None,
    adaptive_clip: float | None,
    clip_count_noise: float | None,
) -> DpPlan:
    """The run's DP plan from the options (errors name the option)."""
    if not DP_MECHANISMS[mode].enabled:
        if noise_multiplier is not None or target_epsilon is not None or budget is not None:
            raise AicacheError(
                "--noise-multiplier, --target-epsilon and --budget need --dp central, "
                "distributed or local"
            )
        if adaptive_clip is None and clip_count_noise is None:
            return DpPlan()
    elif (noise_multiplier is None) == (target_epsilon is None):
        raise AicacheError(
            f"--dp {mode} needs exactly one of --noise-multiplier or --target-epsilon"
        )
    if sample_rate is not None:
        sampling = Sampling(SamplingKind.POISSON, rate=sample_rate, population=population)
    else:
        size = min(selection.per_round(population), population)
        sampling = Sampling(SamplingKind.FIXED, population=population, size=size)
    quantile, count_noise = 0.0, 0.0
    if adaptive_clip is not None:
        # Andrew et al.'s default: a twentieth of the clients a round.
        quantile = adaptive_clip
        count_noise = sampling.size / 20 if clip_count_noise is None else clip_count_noise
    elif clip_count_noise is not None:
        raise AicacheError("--clip-count-noise needs --adaptive-clip")
    settings: dict[str, Any] = {
        "mode": mode,
        "clip": clip,
        "delta": default_delta(population) if delta is None else delta,
        "accountant": accountant,
        "sampling": sampling,
        "min_survivors": aggregation.min_survivors(secagg, sampling.size)
        if DP_MECHANISMS[mode].needs_hidden_updates
        else 0,
        "target_quantile": quantile,
        "clipped_count_stddev": count_noise,
    }
    if target_epsilon is not None:
        return DpPlan.calibrated(target_epsilon=target_epsilon, rounds=rounds, **settings)
    return DpPlan(noise_multiplier=noise_multiplier or 0.0, budget=budget, **settings)


def plan_from_options(
    *,
    population: int,
    task: str,
    rounds: int,
    strategy: str = "fedavg",
    mu: float | None = None,
    fraction: float | None = None,
    min_clients: int | None = None,
    sample_rate: float | None = None,
    local_epochs: int | None = None,
    learning_rate: float | None = None,
    max_update_norm: float = 100.0,
    seed: int = 0,
    expected_attackers: int | None = None,
    simulated_attackers: int = 0,
    dp: str = DpMode.OFF,
    clip: float = 1.0,
    adaptive_clip: float | None = None,
    clip_count_noise: float | None = None,
    noise_multiplier: float | None = None,
    target_epsilon: float | None = None,
    delta: float | None = None,
    accountant: str = "rdp",
    budget: float | None = None,
    secure: str = SecureMode.OFF,
    secagg_shares: float = 1.0,
    secagg_threshold: float = 0.6,
    round_timeout: float | None = None,
    evaluate_every: int = 1,
    deployed: bool = False,
) -> TrainingPlan:
    """A validated plan for a run over ``population`` clients, from the options' values.

    ``None`` means the option was not given: the plan's own default applies.
    ``deployed`` plans a run on a deployed federation (its nodes report no
    arms; only the modes it can run are accepted).

    Raises
    ------
    AicacheError
        Naming the bad option or combination and what to do.
    """
    if task not in task_names():
        raise AicacheError(
            f"--task: unknown task {task!r}: choose one of {', '.join(task_names())}"
        )
    if deployed and get_spec(task).read_store is None:
        trainable = ", ".join(spec.name for spec in all_specs() if spec.read_store is not None)
        raise AicacheError(
            f"--task: {task} learns in simulation only: a node has no data of its own for it "
            f"(a deployed run can train {trainable})"
        )
    try:
        mode = dp_mode(dp)
    except ValueError:
        choices = ", ".join(m.value for m in DpMode)
        raise AicacheError(f"--dp: unknown mode {dp!r}: choose one of {choices}") from None
    try:
        aggregation = SECURE_AGGREGATIONS[secure_mode(secure)]
    except ValueError as exc:
        raise AicacheError(f"--secure: {exc}") from None
    if deployed and not DP_MECHANISMS[mode].deployable:
        deployable = " or ".join(m.mode.value for m in DP_MECHANISMS.values() if m.deployable)
        raise AicacheError(
            f"--dp {dp} is not available on a deployed federation: use {deployable}",
            hint="Local DP is accounted per update a simulation shows; deployed runs noise "
            "a sum (central, or distributed with --secure secagg or he).",
        )
    if deployed and not aggregation.deployable:
        raise AicacheError(
            f"--secure {secure} is not available on a deployed federation yet",
            hint="Use it in `aicache simulate`; deployed runs use TLS and --dp for now.",
        )
    try:
        selection = _selection(
            fraction, min_clients, sample_rate, mode, population=population, deployed=deployed
        )
        spec = robust_spec(
            StrategySpec(strategy, {} if mu is None else {"proximal_mu": mu}),
            expected_attackers,
            selection.per_round(population),
            simulated=simulated_attackers,
        )
        secagg = SecAggSettings(num_shares=secagg_shares, reconstruction_threshold=secagg_threshold)
        dp_plan = _dp_plan(
            mode,
            clip=clip,
            noise_multiplier=noise_multiplier,
            target_epsilon=target_epsilon,
            delta=delta,
            accountant=accountant,
            budget=budget,
            population=population,
            selection=selection,
            rounds=rounds,
            secagg=secagg,
            aggregation=aggregation,
            sample_rate=sample_rate,
            adaptive_clip=adaptive_clip,
            clip_count_noise=clip_count_noise,
        )
        plan = TrainingPlan(
            task=task,
            rounds=rounds,
            strategy=spec,
            selection=selection,
            seed=seed,
            max_update_norm=max_update_norm,
            dp=dp_plan,
            secure=aggregation.mode,
            secagg=secagg,
            evaluate_every=evaluate_every,
            final_evaluation=not deployed,
        )
        # Unset options keep the plan's defaults, so the two never drift apart.
        if round_timeout is not None:
            plan = replace(plan, round_timeout=round_timeout)
        if learning_rate is not None:
            plan = replace(plan, learning_rate=learning_rate)
        if local_epochs is not None:
            plan = replace(plan, local_epochs=local_epochs)
        check_aggregation(plan)
    except ValueError as exc:
        raise AicacheError(str(exc)) from exc
    return plan
