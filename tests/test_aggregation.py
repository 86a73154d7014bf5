"""A task's declared aggregation: a sum task is summed, other plans are refused."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import pytest
from flwr.app import ArrayRecord, ConfigRecord, Message, MessageType, MetricRecord, RecordDict
from flwr.serverapp.strategy import FedAvg

from aicache.federation.aggregation import SummedStrategy, check_aggregation, for_task
from aicache.federation.plan import TrainingPlan
from aicache.federation.server_app import training_strategy, validated_strategy
from aicache.federation.strategies import StrategySpec
from aicache.privacy.accounting import Sampling
from aicache.privacy.central import DpPlan
from aicache.tasks.error_patterns import contribution
from aicache.tasks.error_patterns.population import SyntheticErrors
from aicache.tasks.error_patterns.task import ErrorPatternsTask, histogram
from tests.test_task_seam_proof import SPEC as FIRST_WORD

ERROR_PATTERNS = ErrorPatternsTask.name


def _reply(model: list[np.ndarray], weight: int) -> Message:
    content = RecordDict(
        {"arrays": ArrayRecord(model), "metrics": MetricRecord({"num-examples": weight})}
    )
    return Message(content, dst_node_id=0, message_type=MessageType.TRAIN)


@pytest.mark.usefixtures("flower_task")
def test_a_sum_task_is_aggregated_as_the_global_model_plus_every_update() -> None:
    # Prepare
    reference = [np.array([1.0, 2.0, 3.0])]
    strategy = SummedStrategy(FedAvg())
    strategy._reference = reference  # what configure_train remembers from the round's model
    replies = [_reply([np.array([2.0, 2.0, 4.0])], 10), _reply([np.array([1.0, 5.0, 3.0])], 1)]
    # Execute
    arrays, _ = strategy.aggregate_train(1, replies)
    # Assert: (1,2,3) + (1,0,1) + (0,3,0); a weighted mean would be near the first
    assert arrays is not None
    np.testing.assert_allclose(arrays.to_numpy_ndarrays()[0], [2.0, 5.0, 4.0])


def test_the_strategy_follows_the_spec_not_the_task_name() -> None:
    # Prepare
    summed = TrainingPlan(task=FIRST_WORD.name, rounds=1)
    averaged = TrainingPlan(task="next-command", rounds=1)
    inner = FedAvg()
    # Execute / Assert
    assert isinstance(for_task(summed, inner), SummedStrategy)
    assert for_task(averaged, inner) is inner


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"strategy": StrategySpec("median")}, "strategy median"),
        ({"strategy": StrategySpec("fedadam")}, "strategy fedadam"),
        ({"secure": "he"}, "--secure he"),
    ],
)
def test_a_sum_task_refuses_what_cannot_sum(change: dict[str, object], named: str) -> None:
    # Prepare
    plan = replace(TrainingPlan(task=FIRST_WORD.name, rounds=1), **change)  # type: ignore[arg-type]
    # Execute / Assert
    with pytest.raises(ValueError, match=f"first-word is aggregated as a sum: {named}"):
        check_aggregation(plan)
    check_aggregation(replace(plan, task="next-command"))  # a mean task takes them all


def _central(task: str, sampling: Sampling, z: float = 1.0) -> TrainingPlan:
    dp = DpPlan(mode="central", clip=1.0, noise_multiplier=z, sampling=sampling)
    return TrainingPlan(task=task, rounds=1, dp=dp)


def test_a_sum_task_takes_central_noise_and_refuses_noise_shares_of_a_mean() -> None:
    # Prepare
    central = _central(FIRST_WORD.name, Sampling("fixed", population=10, size=5))
    shares = replace(central.dp, mode="distributed", min_survivors=3)
    distributed = replace(central, dp=shares, secure="secagg")
    # Execute / Assert: central noise goes on the sum; distributed shares sum to a mean's noise
    check_aggregation(central)
    assert isinstance(for_task(central, FedAvg()), SummedStrategy)
    with pytest.raises(ValueError, match="--dp distributed calibrates its noise to a mean"):
        check_aggregation(distributed)
    with pytest.raises(
        ValueError, match=r"--secure secagg aggregates a weighted mean \(use --secure off"
    ):
        check_aggregation(replace(central, secure="secagg"))
    # A clip below a contribution's bound, or one that moves, changes what a count means
    with pytest.raises(ValueError, match=r"--clip 0.25 would shrink its counts"):
        check_aggregation(replace(central, dp=replace(central.dp, clip=0.25)))
    adaptive = replace(central.dp, target_quantile=0.5, clipped_count_stddev=1.0)
    with pytest.raises(ValueError, match="--adaptive-clip would move the unit"):
        check_aggregation(replace(central, dp=adaptive))
    check_aggregation(
        replace(central, dp=replace(central.dp, clip=2.0))
    )  # whole counts, more noise


class _Grid:
    def __init__(self, nodes: int) -> None:
        self.nodes = list(range(1, nodes + 1))

    def get_node_ids(self) -> list[int]:
        return self.nodes


def _contributions(clients: int) -> list[list[np.ndarray]]:
    """Real bounded contributions of the error-patterns task (each of norm <= 1 = C)."""
    source = SyntheticErrors(seed=3, clients=clients)
    return [histogram(contribution(source.records(c))) for c in range(clients)]


def _sent_back(model: list[np.ndarray]) -> Message:
    content = RecordDict(
        {
            "arrays": ArrayRecord(model),
            "metrics": MetricRecord({"num-examples": 8}),
            "meta": ConfigRecord({"task": ERROR_PATTERNS}),
        }
    )
    return Message(content, dst_node_id=0, message_type=MessageType.TRAIN)


@pytest.mark.usefixtures("flower_task")
@pytest.mark.parametrize(
    ("sampling", "nodes", "neighbours"),
    [
        # 3 of 5 reply (2 count as zero); m of N without replacement: replace one, 2C
        (Sampling("fixed", population=5, size=5), 5, ("replace one client", 2.0)),
        # qN = 5, whoever is drawn; Poisson: add or remove one, C
        (Sampling("poisson", 0.5, population=10), 10, ("add or remove one client", 1.0)),
    ],
)
def test_central_dp_releases_the_sum_of_clipped_updates_plus_noise_of_the_sum(
    sampling: Sampling, nodes: int, neighbours: tuple[str, float]
) -> None:
    # Prepare: the server's strategy as the engine builds it, z = 2, C = 1
    plan = _central(ERROR_PATTERNS, sampling, z=2.0)
    reference = ErrorPatternsTask().init_params(0)
    reference = [r + 1.0 for r in reference]  # a global model that is not zero
    strategy = validated_strategy(plan, training_strategy(plan), reference)
    added = _contributions(3)
    residuals = []
    for server_round in range(1, 5):  # four independent noise draws
        grid: Any = _Grid(nodes)  # the nodes Flower's sampler draws from
        sent = strategy.configure_train(server_round, ArrayRecord(reference), ConfigRecord(), grid)
        assert all(m.content.config_records["config"]["clipping_norm"] == 1.0 for m in sent)
        # Execute
        replies = [_sent_back([r + a for r, a in zip(reference, h, strict=True)]) for h in added]
        merged, _ = strategy.aggregate_train(server_round, replies)
        # Assert: the global model plus the sum of the three contributions, plus N(0, (zC)²)
        assert merged is not None
        released = np.concatenate(merged.to_numpy_ndarrays())
        summed = np.concatenate([r + sum(h[i] for h in added) for i, r in enumerate(reference)])
        residuals.append(released - summed)
    noise = np.concatenate(residuals)
    assert float(np.mean(noise)) == pytest.approx(0.0, abs=0.03)
    # zC = 2: not zC/5 (the noise of the mean the sum is read from), nor zero (noise dropped)
    assert float(np.std(noise)) == pytest.approx(2.0, rel=0.03)
    # Every contribution summed is within the clipping bound C the noise is calibrated to
    assert all(np.sqrt(sum(float(np.sum(a**2)) for a in h)) <= 1.0 + 1e-12 for h in added)
    # The accountant's terms are the mean's, and hold for the sum: noise zC over sensitivity
    record = plan.dp.record(1)
    assert (record["neighbouring"], record["sensitivity"]) == neighbours
    assert record["noise_std"] == pytest.approx(2.0)
