"""What would fit a privacy budget that allows no round: computed with the accountant.

A run that stops before its first round needs a suggestion that works. Fewer
rounds never does (one round is already too many), and neither does more noise
when earlier runs on the same data already spent the budget; the numbers below
come from the same accountant and composition the run uses.
"""

from __future__ import annotations

import math
from dataclasses import replace

from aicache.federation.plan import TrainingPlan
from aicache.privacy.accounting import RunSpend, composed_epsilon

NOISE_LIMIT = 1000.0


def budget_advice(plan: TrainingPlan, prior: list[RunSpend]) -> str:
    """One line on what makes ``plan`` fit its budget, after the ``prior`` runs' spends."""
    dp = plan.dp
    budget = dp.budget
    if budget is None:
        return ""
    spent = composed_epsilon(prior, dp.delta, dp.accountant)
    if math.isinf(spent):
        return (
            "This data was already used without differential privacy, so no setting gives a "
            "finite ε for it: train on other data (another --seed or --data), or without --budget."
        )
    if spent >= budget:
        return (
            f"Earlier runs on this data already spent ε {spent:.3f} of the budget {budget:g}: "
            f"no noise fits. Give a --budget above {spent:.3f}, or train on other data "
            "(another --seed or --data)."
        )

    def epsilon(noise_multiplier: float) -> float:
        spend = replace(dp, noise_multiplier=noise_multiplier).spend(plan.rounds)
        return composed_epsilon([*prior, spend], dp.delta, dp.accountant)

    needed = epsilon(dp.noise_multiplier)
    with_noise = f"--budget {math.ceil(needed * 100) / 100:g} with this noise"
    low, high = dp.noise_multiplier, max(dp.noise_multiplier, 0.5) * 2
    while epsilon(high) > budget:
        low, high = high, high * 2
        if high > NOISE_LIMIT:
            return f"No noise multiplier below {NOISE_LIMIT:g} fits the budget; {with_noise}."
    while high - low > 0.01:
        middle = (low + high) / 2
        low, high = (middle, high) if epsilon(middle) > budget else (low, middle)
    return (
        f"What fits: --noise-multiplier {math.ceil(high * 100) / 100:g} --budget {budget:g} for "
        f"all {plan.rounds} rounds, or {with_noise}."
    )
