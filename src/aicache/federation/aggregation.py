"""How the federation combines clients' models, as each task's spec declares.

Most tasks are averaged (FedAvg and the strategies of
:mod:`aicache.federation.strategies`). A histogram or sketch task declares
:attr:`~aicache.tasks.spec.Aggregation.SUM`: the global model plus the sum of
every client's update. :func:`for_task` wraps the strategy built for a plan
accordingly, so that no aggregation code is written per task.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from flwr.app import ArrayRecord, ConfigRecord, Message, MetricRecord
from flwr.serverapp import Grid
from flwr.serverapp.strategy import Strategy

from aicache.federation.plan import TrainingPlan
from aicache.tasks.spec import Aggregation, get_spec

# The rules a summed task runs with: their client side is plain local training,
# and the server's part is replaced by the sum. Robust rules pick or trim
# updates, and FedAdam steps along a mean: neither means anything for a sum.
SUM_STRATEGIES = ("fedavg", "fedprox")


def aggregation_problem(plan: TrainingPlan) -> str | None:
    """Why ``plan`` cannot run its task's aggregation, or ``None`` when it can."""
    spec = get_spec(plan.task)
    if spec.aggregation is not Aggregation.SUM:
        return None
    what = f"task {plan.task} is aggregated as a sum"
    if plan.strategy.name not in SUM_STRATEGIES:
        return f"{what}: strategy {plan.strategy.name} is not available for it (use fedavg)"
    if plan.dp.enabled and not plan.dp.mechanism.local:
        # Central and distributed noise are calibrated to a mean of clipped updates.
        return f"{what}: --dp {plan.dp.mode} calibrates its noise to a mean (use --dp local)"
    if plan.secure_aggregation.hides_updates:
        return f"{what}: --secure {plan.secure} aggregates a weighted mean"
    return None


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
    """

    def __init__(self, inner: Strategy) -> None:
        self.inner = inner
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
        if averaged is None or not replies:
            return averaged, metrics
        total = [np.array(r, dtype=np.float64) for r in self._reference]
        for reply in replies:
            model = reply.content.array_records["arrays"].to_numpy_ndarrays()
            for acc, got, ref in zip(total, model, self._reference, strict=True):
                acc += np.asarray(got, dtype=np.float64) - ref
        typed = [t.astype(r.dtype, copy=False) for t, r in zip(total, self._reference, strict=True)]
        return ArrayRecord(typed), metrics

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

    Raises
    ------
    ValueError
        If the plan cannot run that aggregation (see :func:`check_aggregation`).
    """
    check_aggregation(plan)
    if get_spec(plan.task).aggregation is Aggregation.SUM:
        return SummedStrategy(strategy)
    return strategy
