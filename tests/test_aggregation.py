"""A task's declared aggregation: a sum task is summed, other plans are refused."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from flwr.app import ArrayRecord, Message, MessageType, MetricRecord, RecordDict
from flwr.serverapp.strategy import FedAvg

from aicache.federation.aggregation import SummedStrategy, check_aggregation, for_task
from aicache.federation.plan import TrainingPlan
from aicache.federation.strategies import StrategySpec
from aicache.privacy.accounting import Sampling
from aicache.privacy.central import DpPlan
from tests.test_task_seam_proof import SPEC as FIRST_WORD


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


def test_a_sum_task_refuses_noise_calibrated_to_a_mean() -> None:
    # Prepare
    plan = TrainingPlan(
        task=FIRST_WORD.name,
        rounds=1,
        dp=DpPlan(
            mode="central",
            clip=1.0,
            noise_multiplier=1.0,
            sampling=Sampling("fixed", population=10, size=5),
        ),
    )
    # Execute / Assert
    with pytest.raises(ValueError, match="--dp central calibrates its noise to a mean"):
        check_aggregation(plan)
