"""A battery every registered task must pass: learning, determinism, serialisation, FedProx.

Each task needs a synthetic learnable source and an empty prediction context
below; a task registered without them fails :func:`test_every_task_has_fixtures`.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from aicache.features.history_items import HistoryItem
from aicache.tasks.base import FitConfig, Params, get_task, task_names
from aicache.tasks.next_command import NextCommandContext

CYCLE = ("cd", "ls", "vim", "make", "a.out", "git status", "ls", "vim")
NOISE = ("cat", "rm", "mv", "grep", "man", "python")


def synthetic_history(n: int = 400, seed: int = 0) -> list[HistoryItem]:
    """A user who mostly repeats an edit-build-run cycle, with some noise and sessions."""
    rng = random.Random(seed)
    items = []
    for t in range(n):
        command = rng.choice(NOISE) if rng.random() < 0.15 else CYCLE[t % len(CYCLE)]
        items.append(
            HistoryItem(
                command=command,
                session=t // 50,
                dir_hash=f"d{(t // 25) % 3}",
                failed=rng.random() < 0.05,
            )
        )
    return items


SOURCES: dict[str, Callable[[], Any]] = {"next-command": synthetic_history}
EMPTY_CONTEXTS: dict[str, Any] = {"next-command": NextCommandContext(history=(), k=3)}
TASKS = task_names()


def distance(a: Params, b: Params) -> float:
    return float(np.sqrt(sum(np.sum((x - y) ** 2) for x, y in zip(a, b, strict=True))))


def test_every_task_has_fixtures() -> None:
    # Prepare / Execute
    names = set(task_names())
    # Assert
    assert names, "no task is registered"
    assert names <= set(SOURCES) and names <= set(EMPTY_CONTEXTS)


def test_unknown_task_is_a_key_error() -> None:
    # Prepare / Execute / Assert
    with pytest.raises(KeyError, match="unknown task"):
        get_task("no-such-task")


@pytest.mark.parametrize("name", TASKS)
def test_fit_improves_loss_on_learnable_data(name: str) -> None:
    # Prepare
    task = get_task(name)
    examples = task.load_local(SOURCES[name]())
    params = task.init_params(0)
    before = task.evaluate(params, examples)
    # Execute
    result = task.fit(params, examples, FitConfig(learning_rate=0.02, local_epochs=5))
    after = task.evaluate(result.params, examples)
    # Assert
    assert result.num_examples == task.num_examples(examples) > 0
    assert after["loss"] < before["loss"] - 0.1
    assert np.isfinite(result.metrics["loss"])


@pytest.mark.parametrize("name", TASKS)
def test_init_fit_and_evaluate_are_deterministic_for_a_seed(name: str) -> None:
    # Prepare
    task = get_task(name)
    examples = task.load_local(SOURCES[name]())
    config = FitConfig(local_epochs=2, seed=7)
    # Execute
    first = task.fit(task.init_params(3), examples, config)
    second = task.fit(task.init_params(3), examples, config)
    metrics_a = task.evaluate(first.params, examples)
    metrics_b = task.evaluate(first.params, examples)
    # Assert
    for x, y in zip(first.params, second.params, strict=True):
        np.testing.assert_array_equal(x, y)
    assert metrics_a == metrics_b


@pytest.mark.parametrize("name", TASKS)
def test_fit_does_not_modify_the_given_params(name: str) -> None:
    # Prepare
    task = get_task(name)
    examples = task.load_local(SOURCES[name]())
    params = task.init_params(0)
    copy = [p.copy() for p in params]
    # Execute
    task.fit(params, examples, FitConfig(local_epochs=1))
    # Assert
    for x, y in zip(params, copy, strict=True):
        np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize("name", TASKS)
def test_params_round_trip_through_npz_without_pickle(name: str, tmp_path: Path) -> None:
    # Prepare
    task = get_task(name)
    params = task.fit(
        task.init_params(1), task.load_local(SOURCES[name]()), FitConfig(local_epochs=1)
    ).params
    path = tmp_path / "params.npz"
    # Execute
    np.savez(path, *params)
    with np.load(path, allow_pickle=False) as loaded:
        restored = [loaded[f"arr_{i}"] for i in range(len(loaded.files))]
    # Assert
    assert len(restored) == len(params)
    for original, back in zip(params, restored, strict=True):
        assert np.issubdtype(back.dtype, np.floating)
        assert back.dtype == original.dtype
        np.testing.assert_array_equal(back, original)


@pytest.mark.parametrize("name", TASKS)
def test_predict_works_on_an_empty_history(name: str) -> None:
    # Prepare
    task = get_task(name)
    # Execute
    predictions = task.predict(task.init_params(0), EMPTY_CONTEXTS[name])
    # Assert
    assert len(predictions) == 3
    assert all(isinstance(p, str) and p for p in predictions)
    assert len(set(predictions)) == 3


@pytest.mark.parametrize("name", TASKS)
def test_fedprox_stays_closer_to_the_global_params(name: str) -> None:
    # Prepare
    task = get_task(name)
    examples = task.load_local(SOURCES[name]())
    global_params = task.init_params(0)
    plain = FitConfig(learning_rate=0.05, local_epochs=3, proximal_mu=0.0)
    prox = FitConfig(learning_rate=0.05, local_epochs=3, proximal_mu=5.0)
    # Execute
    free = task.fit(global_params, examples, plain).params
    held = task.fit(global_params, examples, prox).params
    # Assert
    assert distance(held, global_params) < distance(free, global_params)


@pytest.mark.parametrize("name", TASKS)
def test_fit_rejects_params_of_the_wrong_shape(name: str) -> None:
    # Prepare
    task = get_task(name)
    examples = task.load_local(SOURCES[name]())
    params = task.init_params(0)
    params[0] = np.zeros(params[0].size + 1)
    # Execute / Assert
    with pytest.raises(ValueError, match="shape"):
        task.fit(params, examples, FitConfig())
