"""How the federation combines clients' models, as each task's spec declares.

Most tasks are averaged (FedAvg and the strategies of
:mod:`aicache.federation.strategies`). A histogram or sketch task declares
:attr:`~aicache.tasks.spec.Aggregation.SUM`: the global model plus the sum of
every client's update. :func:`for_task` wraps the strategy built for a plan
accordingly, so that no aggregation code is written per task.

Under central DP the sum is read off the noised mean rather than recomputed
from the replies (which would drop the noise): the validated round hands the
DP wrapper ``d`` equally weighted slots whose mean is ``ref + (1/d) Σ clip(u_i)``
(``d`` the fixed divisor: the ``m`` sampled clients, a missing or invalid one
counting as a zero update, or ``qN`` under Poisson sampling), and the wrapper
adds ``N(0, (zC/d)²)``. Then ``ref + d·(mean − ref)`` is the sum of the clipped
updates plus ``N(0, (zC)²)``: the Gaussian mechanism for a sum of L2
sensitivity ``C`` under adding or removing one client, so the accounting of
the mean (``z``, the sampling, the rounds) holds for the sum unchanged.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from flwr.app import ArrayRecord, ConfigRecord, Message, MetricRecord
from flwr.serverapp import Grid
from flwr.serverapp.strategy import Strategy

from aicache.federation.plan import TrainingPlan
from aicache.privacy.accounting import SamplingKind
from aicache.tasks.spec import Aggregation, get_spec

# The rules a summed task runs with: their client side is plain local training,
# and the server's part is replaced by the sum. Robust rules pick or trim
# updates, and FedAdam steps along a mean: neither means anything for a sum.
SUM_STRATEGIES = ("fedavg", "fedprox")
# A summed task's contribution has L2 norm at most 1 (see Aggregation.SUM): a
# smaller clip would scale contributions down and its counts with them.
SUM_UNIT = 1.0


def aggregation_problem(plan: TrainingPlan) -> str | None:
    """Why ``plan`` cannot run its task's aggregation, or ``None`` when it can."""
    spec = get_spec(plan.task)
    if spec.aggregation is not Aggregation.SUM:
        return None
    what = f"task {plan.task} is aggregated as a sum"
    if plan.strategy.name not in SUM_STRATEGIES:
        return f"{what}: strategy {plan.strategy.name} is not available for it (use fedavg)"
    if plan.dp.enabled and not plan.dp.mechanism.local and not plan.dp.mechanism.server_noise:
        # Distributed noise shares are calibrated to the secure mean of the survivors.
        return (
            f"{what}: --dp {plan.dp.mode} calibrates its noise to a mean "
            "(use --dp central or --dp local)"
        )
    if plan.dp.enabled and plan.dp.adaptive:
        # A summed count is read in the units of the clip it was made with.
        return f"{what}: --adaptive-clip would move the unit its counts are read in (use --clip)"
    if plan.dp.enabled and plan.dp.clip < SUM_UNIT:
        return (
            f"{what}: --clip {plan.dp.clip:g} would shrink its counts "
            f"(a contribution's norm is at most {SUM_UNIT:g}: use --clip {SUM_UNIT:g} or more)"
        )
    if plan.secure_aggregation.hides_updates:
        # The secure modes deliver a weighted mean, whose slots the server never sees.
        return (
            f"{what}: --secure {plan.secure} aggregates a weighted mean "
            "(use --secure off with --dp central or --dp local)"
        )
    return None


def summed_divisor(plan: TrainingPlan) -> float:
    """The ``d`` over which the server's noised mean is taken (0: no server noise).

    Central DP's divisor is fixed so that its noise is calibrated (see
    :class:`~aicache.federation.validation.ValidatedStrategy`): the ``m``
    clients sampled (Flower's wrapper divides its noise by
    ``num_sampled_clients``, given ``m``; the replies short of ``m`` are zero
    updates), or ``qN`` under Poisson sampling (the wrapper's ``(z/q)·C/N``).
    """
    dp = plan.dp
    if not (dp.enabled and dp.mechanism.server_noise):
        return 0.0
    if dp.sampling.kind is SamplingKind.POISSON:
        return dp.sampling.rate * dp.sampling.population
    return float(dp.sampling.size)


def check_aggregation(plan: TrainingPlan) -> None:
    """Refuse a plan whose strategy or privacy cannot aggregate its task as declared.

    Raises
    ------
    ValueError
        Naming the task's aggregation and the setting that conflicts with it.
    """
    problem = aggregation_problem(plan)
    if problem is not None:
        raise ValueError(problem)


class SummedStrategy(Strategy):
    """``inner`` with its aggregate replaced by the global model plus the sum of updates.

    Client sampling, evaluation and metrics stay ``inner``'s; only the model
    of a training round changes. Weights (example counts) play no part.

    With ``divisor`` ``d`` > 0, ``inner``'s aggregate is an equally weighted
    mean over ``d`` (noised by a DP wrapper inside ``inner``): the sum is
    ``ref + d·(mean − ref)``, the noise scaled with it (see the module).
    Without, no noise is added on the server and the sum is taken of the
    replies themselves.
    """

    def __init__(self, inner: Strategy, divisor: float = 0.0) -> None:
        if divisor < 0:
            raise ValueError(f"invalid divisor {divisor}: it must be >= 0")
        self.inner = inner
        self.divisor = divisor
        self._reference: list[np.ndarray] = []

    def summary(self) -> None:
        """Log the wrapped strategy's summary."""
        self.inner.summary()

    def configure_train(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        """Remember the global model the updates are relative to, then let ``inner`` sample."""
        self._reference = arrays.to_numpy_ndarrays()
        return self.inner.configure_train(server_round, arrays, config, grid)

    def aggregate_train(
        self, server_round: int, replies: Iterable[Message]
    ) -> tuple[ArrayRecord | None, MetricRecord | None]:
        """``reference + Σ (model_i − reference)`` over the replies, with ``inner``'s metrics."""
        replies = list(replies)
        averaged, metrics = self.inner.aggregate_train(server_round, replies)
        if averaged is None:
            return averaged, metrics
        if self.divisor:
            mean = averaged.to_numpy_ndarrays()
            total = [
                r + self.divisor * (np.asarray(m, dtype=np.float64) - r)
                for m, r in zip(mean, self._reference, strict=True)
            ]
            return self._typed(total), metrics
        if not replies:
            return averaged, metrics
        total = [np.array(r, dtype=np.float64) for r in self._reference]
        for reply in replies:
            model = reply.content.array_records["arrays"].to_numpy_ndarrays()
            for acc, got, ref in zip(total, model, self._reference, strict=True):
                acc += np.asarray(got, dtype=np.float64) - ref
        return self._typed(total), metrics

    def _typed(self, total: list[np.ndarray]) -> ArrayRecord:
        """``total`` in the global model's dtypes."""
        typed = [t.astype(r.dtype, copy=False) for t, r in zip(total, self._reference, strict=True)]
        return ArrayRecord(typed)

    def configure_evaluate(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        """``inner``'s evaluation."""
        return self.inner.configure_evaluate(server_round, arrays, config, grid)

    def aggregate_evaluate(
        self, server_round: int, replies: Iterable[Message]
    ) -> MetricRecord | None:
        """``inner``'s evaluation metrics."""
        return self.inner.aggregate_evaluate(server_round, replies)


def for_task(plan: TrainingPlan, strategy: Strategy) -> Strategy:
    """``strategy`` aggregating ``plan``'s task as its spec declares.

    ``strategy`` is the whole server-side rule, DP wrapper included, so that
    a sum under central DP is taken of its noised mean (see the module).

    Raises
    ------
    ValueError
        If the plan cannot run that aggregation (see :func:`check_aggregation`).
    """
    check_aggregation(plan)
    if get_spec(plan.task).aggregation is Aggregation.SUM:
        return SummedStrategy(strategy, summed_divisor(plan))
    return strategy
