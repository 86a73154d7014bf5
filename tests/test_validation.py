"""Update validation: the pure check, and the strategy wrapper around Flower's FedAvg."""

from __future__ import annotations

import re

import numpy as np
import pytest
from flwr.app import ArrayRecord, ConfigRecord, Message, MetricRecord, RecordDict
from flwr.serverapp.strategy import FedAvg, Krum

from aicache.federation.strategies import (
    STRATEGIES,
    Selection,
    StrategySpec,
    build_strategy,
    expecting_attackers,
)
from aicache.federation.validation import NoValidAggregateError, ValidatedStrategy, update_problem
from aicache.tasks.next_command import NextCommandTask

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


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.longdouble])
def test_an_update_in_another_float_dtype_than_the_tasks_is_rejected(dtype: type) -> None:
    problem = _check([np.ones((2, 2), dtype=dtype), np.ones(3)])
    assert problem == f"array 0 has dtype {np.dtype(dtype)}, the task's is float64"


def test_a_claimed_weight_above_the_tasks_per_client_maximum_is_rejected() -> None:
    arrays = [np.ones((2, 2)), np.ones(3)]
    assert _check(arrays, num_examples=100_000, max_examples=100_000) is None
    problem = _check(arrays, num_examples=1e15, max_examples=100_000)
    assert problem == "example count 1e+15 exceeds the task's per-client maximum 100000"


@pytest.mark.usefixtures("flower_task")
def test_the_wrapper_bounds_weights_by_the_tasks_maximum() -> None:
    # Prepare: an honest client and one claiming 1e15 examples with a far-off model.
    strategy = _wrapper()
    replies = [
        _reply([np.ones((2, 2)), np.ones(3)], 10),
        _reply([np.full((2, 2), 3.0), np.full(3, 3.0)], int(1e15)),
    ]
    # Execute
    arrays, _ = strategy.aggregate_train(1, replies)
    # Assert: only the honest update counts.
    assert strategy.max_examples == NextCommandTask.max_examples
    assert arrays is not None and np.allclose(arrays.to_numpy_ndarrays()[0], 1.0)
    assert strategy.log.rejected == [
        "example count 1e+15 exceeds the task's per-client maximum 100000"
    ]


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


def test_krum_is_told_the_expected_attackers() -> None:
    spec = expecting_attackers(StrategySpec("krum"), 2, per_round=7)
    strategy = build_strategy(spec, Selection(1.0, 7))
    assert isinstance(strategy, Krum) and strategy.num_malicious_nodes == 2


@pytest.mark.parametrize(("attackers", "per_round"), [(1, 10), (3, 10), (4, 9), (2, 5)])
def test_the_trimmed_mean_cuts_at_least_the_expected_attackers(
    attackers: int, per_round: int
) -> None:
    spec = expecting_attackers(StrategySpec("trimmed-mean"), attackers, per_round)
    beta = spec.resolved()["beta"]
    assert beta < 0.5 and int(beta * per_round) >= attackers
    assert beta == 0.2 or int(beta * per_round) == attackers  # no more than needed


@pytest.mark.parametrize(
    ("name", "attackers", "per_round", "message"),
    [
        ("krum", 2, 6, "more than 6 clients a round; this run asks 6"),
        ("median", 3, 6, "3 of 6 is too many"),
        ("trimmed-mean", 5, 10, "5 of 10 is too many"),
        ("fedavg", 1, 10, "fedavg has no setting for expected attackers"),
        ("krum", -1, 10, "invalid number of expected attackers -1"),
    ],
)
def test_attackers_a_rule_cannot_withstand_are_refused(
    name: str, attackers: int, per_round: int, message: str
) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        expecting_attackers(StrategySpec(name), attackers, per_round)
