"""Update validation: the pure check, and the strategy wrapper around Flower's FedAvg."""

from __future__ import annotations

import numpy as np
import pytest
from flwr.app import ArrayRecord, ConfigRecord, Message, MetricRecord, RecordDict
from flwr.serverapp.strategy import FedAvg

from aicache.federation.strategies import STRATEGIES, Selection, StrategySpec, build_strategy
from aicache.federation.validation import NoValidAggregateError, ValidatedStrategy, update_problem

REFERENCE = [np.zeros((2, 2)), np.zeros(3)]


def _check(arrays: list[np.ndarray], **overrides: object) -> str | None:
    arguments: dict[str, object] = {
        "num_examples": 10,
        "task": "next-command",
        "expected_task": "next-command",
        "max_update_norm": 5.0,
    }
    arguments.update(overrides)
    return update_problem(arrays, REFERENCE, **arguments)  # type: ignore[arg-type]


def test_a_good_update_passes() -> None:
    assert _check([np.ones((2, 2)), np.ones(3)]) is None


@pytest.mark.parametrize(
    ("arrays", "overrides", "reason"),
    [
        ([np.ones((2, 2))], {}, "1 arrays, the model has 2"),
        ([np.ones((3, 2)), np.ones(3)], {}, "shape (3, 2)"),
        ([np.ones((2, 2), dtype=np.int64), np.ones(3)], {}, "dtype int64"),
        ([np.full((2, 2), np.nan), np.ones(3)], {}, "NaN or infinite"),
        ([np.full((2, 2), 10.0), np.ones(3)], {}, "exceeds the bound 5"),
        ([np.ones((2, 2)), np.ones(3)], {"num_examples": 0}, "invalid example count"),
        ([np.ones((2, 2)), np.ones(3)], {"task": "other"}, "trained task 'other'"),
    ],
)
def test_bad_updates_are_rejected_with_their_reason(
    arrays: list[np.ndarray], overrides: dict[str, object], reason: str
) -> None:
    problem = _check(arrays, **overrides)
    assert problem is not None and reason in problem


def test_the_norm_bound_can_be_turned_off() -> None:
    assert _check([np.full((2, 2), 1e6), np.ones(3)], max_update_norm=0.0) is None


def _reply(arrays: list[np.ndarray], examples: int, task: str = "next-command") -> Message:
    content = RecordDict(
        {
            "arrays": ArrayRecord(arrays),
            "metrics": MetricRecord({"num-examples": examples}),
            "meta": ConfigRecord({"task": task}),
        }
    )
    return Message(content, dst_node_id=0, message_type="train")


def _wrapper() -> ValidatedStrategy:
    strategy = ValidatedStrategy(FedAvg(), task="next-command", max_update_norm=10.0)
    strategy._reference = [a.copy() for a in REFERENCE]
    return strategy


@pytest.mark.usefixtures("flower_task")
def test_invalid_replies_are_dropped_and_counted_while_the_round_goes_on() -> None:
    # Prepare
    strategy = _wrapper()
    replies = [
        _reply([np.ones((2, 2)), np.ones(3)], 10),
        _reply([np.full((2, 2), 3.0), np.full(3, 3.0)], 30),
        _reply([np.full((2, 2), np.inf), np.ones(3)], 1000),
    ]
    # Execute
    arrays, metrics = strategy.aggregate_train(1, replies)
    # Assert: the weighted mean of the two valid updates only
    assert arrays is not None and metrics is not None
    assert np.allclose(arrays.to_numpy_ndarrays()[0], (1 * 10 + 3 * 30) / 40)
    assert metrics["rejected-updates"] == 1 and metrics["accepted-updates"] == 2
    assert "NaN or infinite" in strategy.log.rejected[0]


@pytest.mark.usefixtures("flower_task")
def test_a_round_without_a_valid_update_fails_loudly() -> None:
    strategy = _wrapper()
    replies = [_reply([np.ones((2, 2))], 10), _reply([np.ones((2, 2)), np.ones(3)], 5, task="x")]
    with pytest.raises(NoValidAggregateError, match="none of 2 replies"):
        strategy.aggregate_train(1, replies)


def test_every_named_strategy_builds() -> None:
    for name in STRATEGIES:
        strategy = build_strategy(StrategySpec(name), Selection(0.5, 3))
        assert strategy.__class__.__module__.startswith("flwr.serverapp.strategy")


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: StrategySpec("fedsgd"), "unknown strategy 'fedsgd'"),
        (lambda: StrategySpec("fedavg", {"beta": 0.1}), "has no setting beta"),
        (lambda: Selection(1.5, 2), "invalid fraction 1.5"),
        (lambda: Selection(0.5, 0), "invalid minimum of clients 0"),
    ],
)
def test_bad_strategy_settings_are_named(build: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build()  # type: ignore[operator]
