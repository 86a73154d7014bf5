"""A simulated federated run from start to report: the federated arm through Flower,
the centralized reference beside it.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from aicache.errors import AicacheError, Interrupted
from aicache.federation.aggregation import aggregation_problem
from aicache.federation.budget import budget_advice
from aicache.federation.client_app import report_arms
from aicache.federation.experiment import (
    SecAggSettings,
    key_authority,
    refuse_attacks,
    secagg_capacity,
)
from aicache.federation.plan import TrainingPlan
from aicache.federation.secure_apps import SECURE_APPS, AppOptions
from aicache.federation.server_app import RoundReport
from aicache.federation.session import Ending, Resume, RunEnded, RunSession, registered_rounds
from aicache.simulation.adversary import Adversary, Dropout
from aicache.simulation.engine import SimulationInterrupted, simulate
from aicache.simulation.sources import PartitionProvider
from aicache.tasks.base import FitConfig, get_task
from aicache.tasks.spec import ClientSource, Comparison, get_spec


@dataclass
class SimulationOutcome:
    """What a simulation produced, for the report."""

    plan: TrainingPlan
    run_id: str
    names: list[str]
    data: str
    rounds: list[RoundReport]
    final_clients: dict[int, dict[str, float]]
    centralized: dict[int, dict[str, float]]
    initial: dict[str, float]
    seconds: float
    versions: list[int] = field(default_factory=list)
    privacy: dict[str, Any] = field(default_factory=lambda: {"dp": "off"})
    stopped: str | None = None
    comparison: Comparison | None = None


def _centralized(
    provider: PartitionProvider, plan: TrainingPlan, clients: int, epochs: int
) -> dict[int, dict[str, float]]:
    """The usual upper reference: one model trained on every client's pooled train split."""
    task = get_task(plan.task)
    data = [provider.client_data(task, client) for client in range(clients)]
    pooled = get_spec(plan.task).examples.concatenate([d.train for d in data])
    config = FitConfig(
        learning_rate=plan.learning_rate,
        local_epochs=epochs,
        batch_size=plan.batch_size,
        seed=plan.seed,
    )
    params = task.fit(task.init_params(plan.seed), pooled, config).params
    return {client: task.evaluate(params, d.test) for client, d in enumerate(data)}


def _secagg_capacity(
    plan: TrainingPlan, provider: PartitionProvider, clients: int
) -> SecAggSettings:
    """SecAgg+ settings that fit this population, or an error naming what overflows.

    The weight bound becomes the largest client's example count (so no weight
    is clipped); under DP every client weighs 1.
    """
    largest = 1.0
    if not plan.dp.enabled:  # every client weighs 1 under DP: no precision spent on weights
        task = get_task(plan.task)
        counts = [task.num_examples(provider.client_data(task, c).train) for c in range(clients)]
        largest = float(max(max(counts), 1))
    return secagg_capacity(plan, clients=clients, max_weight=largest)


def _arms_in_process(
    provider: PartitionProvider, plan: TrainingPlan, params: list[np.ndarray], clients: int
) -> dict[int, dict[str, float]]:
    """Each client's report arms computed here (when its ClientApp cannot be asked)."""
    task = get_task(plan.task)
    config = plan.evaluate_config(final=True)
    arms = {}
    for client in range(clients):
        data = provider.client_data(task, client)
        values = {k: v for k, v in task.evaluate(params, data.test).items() if k != "num_examples"}
        values.update(report_arms(task, params, data, config, client))
        arms[client] = values
    return arms


def run(
    plan: TrainingPlan,
    source: ClientSource,
    *,
    registry_root: Path,
    resume: bool = False,
    warm_start: bool = False,
    centralized_epochs: int = 10,
    cpus: int = 2,
    adversary: Adversary | None = None,
    dropout: Dropout | None = None,
    on_round: Callable[[RoundReport], None] | None = None,
    on_stage: Callable[[str], None] | None = None,
    verbose: bool = False,
) -> SimulationOutcome:
    """Run ``plan`` over ``source`` in Flower's simulation engine and compute the report's arms.

    Raises
    ------
    AicacheError
        If there is nothing to resume, or a round produced no valid aggregate.
    """
    started = time.monotonic()
    stage = on_stage or (lambda _: None)
    names = source.names()
    task = get_task(plan.task)
    problem = aggregation_problem(plan)
    if problem is not None:
        raise AicacheError(problem)
    refuse_attacks(
        plan,
        adversaries=adversary.count if adversary else 0,
        dropouts=dropout.count if dropout else 0,
    )
    federation = f"simulation: {source.describe()}"
    resuming = (
        RunSession.resumable(
            registry_root=registry_root,
            task=plan.task,
            federation=federation,
            rule=Resume.INTERRUPTED,
        )
        if resume
        else None
    )
    session = RunSession.begin(
        registry_root=registry_root,
        plan=plan,
        federation=federation,
        resuming=resuming,
        warm_start=warm_start,
        # Who trained it: `evaluate` warns when it is asked to score them again.
        members=source.members(),
        noun="the simulation",
    )
    plan, initial, run_id = session.plan, session.initial, session.run_id
    provider = PartitionProvider(source)
    observer = session.observe(on_round=on_round)
    try:
        session.check_budget()
    except RunEnded as stop:
        raise _simulation_error(stop, session) from stop
    aggregation = plan.secure_aggregation
    apps = SECURE_APPS[aggregation.mode]
    if aggregation.bounds_weights:
        stage("checking SecAgg+ capacity")
        plan = replace(plan, secagg=_secagg_capacity(plan, provider, len(names)))
        observer.plan = plan
    stage("federated rounds")
    keys: tuple[Path, Path] | None = None
    if aggregation.needs_keys:
        stage("key authority")
        keys = key_authority()
    server_app, client_app = apps.build(
        plan,
        initial,
        observer,
        provider,
        AppOptions(
            secret_context=None if keys is None else keys[0],
            public_context=None if keys is None else keys[1],
            tamper=adversary if adversary and adversary.count else None,
            outer_mods=[dropout] if dropout and dropout.count else None,
        ),
    )
    try:
        simulate(server_app, client_app, clients=len(names), cpus=cpus, verbose=verbose)
    except SimulationInterrupted:
        # The run stays "running" in the registry: that is what --resume continues.
        done = plan.start_round + len(observer.rounds)
        raise Interrupted(f"interrupted after round {done} of {plan.rounds}") from None
    finally:
        if keys is not None:
            shutil.rmtree(keys[0].parent, ignore_errors=True)
    if (
        not apps.client_reports_arms
        and plan.final_evaluation
        and observer.error is None
        and observer.final_arrays is not None
    ):
        stage("report arms")
        observer.final_clients = _arms_in_process(provider, plan, observer.final_arrays, len(names))
    try:
        registered = session.finish()
    except RunEnded as ended:
        raise _simulation_error(ended, session) from ended.__cause__
    versions = [v.version for v in registered]
    # A resumed run's earlier rounds were done by another process: the registry has them.
    rounds = [*registered_rounds(registered, before=plan.start_round + 1), *observer.rounds]
    centralized: dict[int, dict[str, float]] = {}
    initial_metrics: dict[str, float] = {}
    if plan.final_evaluation:  # the report's reference arms
        stage("centralized reference")
        centralized = _centralized(provider, plan, len(names), centralized_epochs)
        untrained = task.init_params(plan.seed)
        initial_metrics = _macro(
            [
                task.evaluate(untrained, provider.client_data(task, c).test)
                for c in range(len(names))
            ]
        )
    comparison = None
    compare = get_spec(plan.task).compare
    if compare is not None and plan.final_evaluation and observer.final_arrays is not None:
        stage("baseline comparison")
        tests = [provider.client_data(task, c).test for c in range(len(names))]
        comparison = compare(observer.final_arrays, tests)
    return SimulationOutcome(
        plan=plan,
        run_id=run_id,
        names=names,
        data=source.describe(),
        rounds=rounds,
        final_clients=observer.final_clients,
        centralized=centralized,
        initial=initial_metrics,
        seconds=time.monotonic() - started,
        versions=versions,
        privacy=observer.privacy_after(plan.start_round + len(observer.rounds)),
        stopped=observer.stopped,
        comparison=comparison,
    )


def _simulation_error(ended: RunEnded, session: RunSession) -> AicacheError:
    """The command line's message for a run that ended without finishing."""
    if ended.ending is Ending.NO_ROUND:
        return AicacheError(
            f"the privacy budget allows no round: {ended.reason}",
            hint=budget_advice(session.plan, session.prior),
        )
    if ended.ending is Ending.FAILED:
        return AicacheError(
            f"the federated run failed: {ended.reason}",
            hint="Nothing was registered for the failed round; earlier rounds' versions stay.",
            exit_code=1,
        )
    return AicacheError(
        f"the simulation ended after {ended.rounds} of {ended.planned} rounds",
        hint="Run again with --verbose to see Flower's log.",
        exit_code=1,
    )


def _macro(metrics: list[dict[str, float]]) -> dict[str, float]:
    keys = set.intersection(*(set(m) for m in metrics)) if metrics else set()
    return {k: float(np.mean([m[k] for m in metrics])) for k in sorted(keys)}


def arms(outcome: SimulationOutcome) -> dict[str, Any]:
    """The four arms of the report, macro-averaged over clients, with per-client values.

    Each arm holds the task's headline metrics (see its spec).
    """
    headline = [m.name for m in get_spec(outcome.plan.task).headline]
    result: dict[str, Any] = {}
    prefixes = {"federated": "", "personalized": "personalized.", "local_only": "local_only."}
    for arm, prefix in prefixes.items():
        per_client = [
            {
                "client": outcome.names[c],
                **{k: values.get(f"{prefix}{k}", float("nan")) for k in headline},
            }
            for c, values in sorted(outcome.final_clients.items())
        ]
        result[arm] = _arm(per_client, headline)
    result["centralized"] = _arm(
        [
            {"client": outcome.names[c], **{k: v[k] for k in headline}}
            for c, v in sorted(outcome.centralized.items())
        ],
        headline,
    )
    return result


def _arm(per_client: list[dict[str, Any]], headline: list[str]) -> dict[str, Any]:
    return {
        **{
            k: float(np.mean([p[k] for p in per_client])) if per_client else float("nan")
            for k in headline
        },
        "per_client": per_client,
    }
