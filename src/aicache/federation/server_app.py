"""The ServerApp: Flower's strategy loop, with validation, registration and a final report.

Each round's aggregate becomes a registry version from inside Flower's own
loop (the ``evaluate_fn`` hook of ``Strategy.start``), so a crash after round
*k* leaves versions 1..*k* and a resumed run starts from the newest.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from flwr.app import ArrayRecord, Context, Message, MessageType, MetricRecord, RecordDict
from flwr.serverapp import Grid, ServerApp
from flwr.serverapp.strategy import Strategy

from aicache.federation.aggregation import for_task
from aicache.federation.dp_wrappers import private_strategy
from aicache.federation.homomorphic import HomomorphicStrategy
from aicache.federation.plan import TrainingPlan
from aicache.federation.strategies import build_strategy
from aicache.federation.validation import NUM_EXAMPLES, ValidatedStrategy
from aicache.privacy.accounting import RunSpend, SamplingKind, composed_epsilon
from aicache.privacy.record import PrivacyRecord
from aicache.registry import ModelRegistry, ModelVersion


class BudgetReached(RuntimeError):
    """The next round would take the privacy spent past the budget: the run stops cleanly."""


@dataclass(frozen=True, slots=True)
class RoundReport:
    """What one round did, for progress display and the report."""

    round: int
    seconds: float
    accepted: int
    rejected: tuple[str, ...]
    train_metrics: dict[str, float]
    evaluate_metrics: dict[str, float]
    version: int
    epsilon: float | None = None


def macro_mean(records: list[RecordDict], weight_key: str) -> MetricRecord:
    """Average each client's metrics with equal weight (the report's macro average)."""
    sums: dict[str, float] = {}
    for record in records:
        for metrics in record.metric_records.values():
            for key, value in metrics.items():
                if key in (weight_key, "client") or "." in key:
                    continue
                if isinstance(value, int | float):
                    sums[key] = sums.get(key, 0.0) + float(value)
    return MetricRecord({k: v / len(records) for k, v in sums.items()} if records else {})


@dataclass
class RunObserver:
    """Registers each round's model and collects what the run did.

    Attributes
    ----------
    registry_root
        The model registry's directory (opened in the server's thread).
    run_id
        The run these versions belong to.
    plan
        The run's plan.
    federation
        The population whose privacy the ledger tracks.
    prior
        What earlier runs spent on the same federation and task.
    parent
        The version the run started from, if any.
    on_round
        Called after each round is registered (progress display).
    """

    registry_root: Path
    run_id: str
    plan: TrainingPlan
    federation: str = "default"
    prior: list[RunSpend] = field(default_factory=list)
    parent: int | None = None
    on_round: Callable[[RoundReport], None] | None = None
    rounds: list[RoundReport] = field(default_factory=list)
    final_clients: dict[int, dict[str, float]] = field(default_factory=dict)
    final_arrays: list[np.ndarray] | None = None
    error: BaseException | None = None
    stopped: str | None = None
    _strategy: ValidatedStrategy | None = None
    _started: float = field(default_factory=time.monotonic)

    def bind(self, strategy: ValidatedStrategy) -> None:
        """Read round details from ``strategy`` after each round."""
        self._strategy = strategy
        self._started = time.monotonic()

    def after_round(self, server_round: int, arrays: ArrayRecord) -> MetricRecord | None:
        """``Strategy.start``'s evaluate hook: register the round's aggregate."""
        if server_round == 0 or self._strategy is None:
            return None
        log = self._strategy.log
        global_round = self.plan.start_round + server_round
        metrics = {f"eval.{k}": v for k, v in log.evaluate_metrics.items()}
        if not self.plan.dp.enabled:  # under DP no noise-free training statistic is kept
            metrics.update(log.train_metrics)
        model = arrays.to_numpy_ndarrays()
        record = self.privacy_record(global_round)
        privacy = record.as_dict()
        with ModelRegistry(self.registry_root) as registry:
            # Every run goes in the ledger: one without DP makes the federation's ε infinite.
            # The spend is recorded before the model is: a crash between the two then
            # over-counts a round that a resume redoes, instead of leaving a released
            # model unaccounted for (a resume after the last round trains nothing more).
            registry.record_spend(
                run_id=self.run_id,
                task=self.plan.task,
                federation=self.federation,
                spend=self.plan.dp.as_dict(),
                rounds=global_round,
                epsilon=math.inf if record.epsilon is None else record.epsilon,
                delta=self.plan.dp.delta,
            )
            version: ModelVersion = registry.register(
                self.plan.task,
                model,
                run_id=self.run_id,
                round=global_round,
                parent=self.parent,
                strategy=self.plan.strategy.name,
                strategy_config=self.plan.strategy.resolved(),
                num_clients=log.accepted,
                metrics=metrics,
                privacy=privacy,
            )
        self.parent = version.version
        self.final_arrays = model
        now = time.monotonic()
        report = RoundReport(
            round=global_round,
            seconds=now - self._started,
            accepted=log.accepted,
            rejected=tuple(log.rejected),
            train_metrics=dict(log.train_metrics),
            evaluate_metrics=dict(log.evaluate_metrics),
            version=version.version,
            epsilon=record.federation_epsilon,
        )
        self._started = now
        self.rounds.append(report)
        if self.on_round is not None:
            self.on_round(report)
        self.check_budget(global_round + 1)
        return None

    def spent(self, rounds: int) -> float:
        """ε spent on this federation after ``rounds`` rounds of this run and all earlier runs."""
        dp = self.plan.dp
        return composed_epsilon([*self.prior, dp.spend(rounds)], dp.delta, dp.accountant)

    def privacy_record(self, rounds: int) -> PrivacyRecord:
        """The typed privacy record of a version made after ``rounds`` rounds."""
        record = self.plan.dp.privacy_record(rounds)
        if not self.plan.dp.enabled:
            return record
        return record.with_federation(self.federation, self.spent(rounds))

    def privacy_after(self, rounds: int) -> dict[str, Any]:
        """The privacy fields of a version made after ``rounds`` rounds, as stored."""
        return self.privacy_record(rounds).as_dict()

    def check_budget(self, next_round: int) -> None:
        """Stop before ``next_round`` if it would take the spent ε past the budget."""
        budget = self.plan.dp.budget
        if not self.plan.dp.enabled or budget is None or next_round > self.plan.rounds:
            return
        would = self.spent(next_round)
        if math.isinf(would):
            raise BudgetReached(
                f"stopped before round {next_round}: this federation's data was already used "
                "without differential privacy, so no finite ε can be claimed for it"
            )
        if would > budget:
            raise BudgetReached(
                f"stopped before round {next_round}: it would bring ε to {would:.3f}, "
                f"over the budget of {budget:g} (δ = {self.plan.dp.delta:g})"
            )


def final_evaluation(
    grid: Grid, arrays: ArrayRecord, plan: TrainingPlan
) -> dict[int, dict[str, float]]:
    """Ask every connected client for the report's arms on its own test split."""
    config = plan.evaluate_config(final=True)
    messages = [
        Message(
            RecordDict({"arrays": arrays, "config": config}),
            message_type=MessageType.EVALUATE,
            dst_node_id=node,
        )
        for node in grid.get_node_ids()
    ]
    clients: dict[int, dict[str, float]] = {}
    for reply in grid.send_and_receive(messages, timeout=plan.round_timeout):
        if reply.has_error():
            continue
        values = {
            k: float(v)
            for k, v in reply.content.metric_records["metrics"].items()
            if isinstance(v, int | float) and k != NUM_EXAMPLES
        }
        clients[int(values.get("client", reply.metadata.src_node_id))] = values
    return clients


def wait_for_clients(grid: Grid, count: int, timeout: float) -> None:
    """Wait until ``count`` clients are connected, so a fraction is taken of all of them.

    Raises
    ------
    TimeoutError
        If they are not all there within ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    while (connected := len(list(grid.get_node_ids()))) < count:
        if time.monotonic() > deadline:
            raise TimeoutError(f"only {connected} of {count} clients connected in {timeout:g} s")
        time.sleep(0.1)


def update_norm_bound(plan: TrainingPlan, initial: list[np.ndarray]) -> float:
    """The largest update norm the server accepts (0: no bound).

    Under local DP an honest update carries its noise: the bound widens by what
    that noise exceeds only with negligible probability.
    """
    dimension = sum(int(a.size) for a in initial)
    return plan.dp.mechanism.update_norm_bound(plan.dp, plan.max_update_norm, dimension)


def validated_strategy(
    plan: TrainingPlan, inner: Strategy, initial: list[np.ndarray]
) -> ValidatedStrategy:
    """``inner`` behind update validation, with the fixed divisor central DP needs."""
    central, sampling = plan.dp.mechanism.server_noise, plan.dp.sampling
    poisson = sampling.kind is SamplingKind.POISSON
    return ValidatedStrategy(
        inner,
        task=plan.task,
        max_update_norm=update_norm_bound(plan, initial),
        fixed_count=sampling.size if central and not poisson else 0,
        clipped_bits=central and plan.dp.adaptive,
        expected_count=sampling.rate * sampling.population if central and poisson else 0.0,
        evaluate_every=plan.evaluate_every,
        round_offset=plan.start_round,
        last_round=plan.rounds - plan.start_round,
        # Each round waits (boundedly) for the nodes the run needs, not only the first.
        availability=(plan.selection.min_available, plan.round_timeout)
        if plan.selection.min_available
        else None,
    )


def training_strategy(plan: TrainingPlan) -> Strategy:
    """The plan's rule with its DP wrapper, aggregating as the task declares.

    The task's aggregation wraps the DP wrapper, not the other way round: a
    summed task's sum is then read off the noised mean with its noise scaled
    to the sum's sensitivity (see :mod:`aicache.federation.aggregation`).
    """
    base = build_strategy(plan.strategy, plan.selection, evaluate_metrics_aggr_fn=macro_mean)
    return for_task(plan, private_strategy(plan, base))


def make_server_app(
    plan: TrainingPlan,
    initial: list[np.ndarray],
    observer: RunObserver,
    *,
    public_context: bytes | None = None,
) -> ServerApp:
    """A ServerApp that runs ``plan`` from ``initial``, reporting to ``observer``.

    With ``--secure he`` it aggregates with ``public_context`` (the federation's
    CKKS context without its secret key) and never sees an update in the clear.

    Errors (a round without a valid aggregate, a timeout) are kept in
    ``observer.error`` for the caller to raise: the simulation engine would
    otherwise only log them.
    """
    app = ServerApp()

    @app.main()
    def main(grid: Grid, context: Context) -> None:
        # Flower samples clients with `random`. Without DP a seed makes runs
        # reproducible; with DP the sample must be unpredictable, or the
        # amplification by sampling the accountant counts on would not hold.
        random.seed(None if plan.dp.enabled else plan.seed + plan.start_round)
        inner = training_strategy(plan)
        strategy: ValidatedStrategy
        if plan.secure_aggregation.encrypts_updates:
            if public_context is None:
                raise ValueError("--secure he needs the federation's public CKKS context")
            # Under central DP Flower's wrapper in `inner` only asks clients to clip:
            # the noise goes on the encrypted sum, before anyone decrypts it. Under
            # distributed DP the clients' shares are already in it.
            dp = plan.dp
            strategy = HomomorphicStrategy(
                inner,
                task=plan.task,
                max_update_norm=plan.max_update_norm,
                public_context=public_context,
                fixed_count=dp.sampling.size if dp.enabled else 0,
                noise_std=dp.noise_multiplier * dp.clip if dp.enabled else 0.0,
                server_noise=dp.mechanism.server_noise,
                clip=dp.clip,
                # Only distributed DP bounds a round's survivors (0 otherwise).
                min_replies=max(dp.min_survivors, 1),
            )
        else:
            strategy = validated_strategy(plan, inner, initial)
        observer.bind(strategy)
        arrays = ArrayRecord(initial)
        try:
            observer.check_budget(plan.start_round + 1)
            wait_for_clients(grid, plan.selection.min_available, plan.round_timeout)
            result = strategy.start(
                grid=grid,
                initial_arrays=ArrayRecord(initial),
                num_rounds=plan.rounds - plan.start_round,
                timeout=plan.round_timeout,
                train_config=plan.train_config(),
                evaluate_config=plan.evaluate_config(),
                evaluate_fn=observer.after_round,
            )
            arrays = result.arrays
        except BudgetReached as stop:
            observer.stopped = str(stop)
            if observer.final_arrays is not None:
                arrays = ArrayRecord(observer.final_arrays)
        except Exception as exc:  # handed to the caller, who raises it
            observer.error = exc
            return
        if plan.final_evaluation and observer.rounds:
            try:
                observer.final_clients = final_evaluation(grid, arrays, plan)
            except Exception as exc:  # handed to the caller, who raises it
                observer.error = exc

    return app
