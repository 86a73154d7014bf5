"""The robustness and leakage experiments attack a task through its spec, not by knowing it."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from aicache.features.candidates import CandidateSet
from aicache.simulation.adversary import BoundedAttack
from aicache.simulation.canary import exposure, plant, random_sequence
from aicache.tasks import spec as spec_registry
from aicache.tasks.spec import TaskAttacks, get_spec

EXAMPLES = CandidateSet(
    features=np.zeros((6, 2), dtype=np.float32),
    offsets=np.array([0, 3, 4, 6], dtype=np.int64),
    targets=np.array([2, 0, 1], dtype=np.int64),
)


@pytest.fixture
def unattackable(monkeypatch: pytest.MonkeyPatch) -> str:
    """A task (registered for this test only) whose spec declares no attacks."""
    name = "no-answers"
    spec = replace(get_spec("next-command"), name=name, attacks=TaskAttacks())
    monkeypatch.setitem(spec_registry._SPECS, name, spec)
    return name


def test_label_flip_poisons_the_examples_the_way_the_task_declares() -> None:
    poisoned = BoundedAttack("label-flip").training_data(EXAMPLES, task="next-command")
    assert poisoned.targets.tolist() == [0, 0, 0]
    assert BoundedAttack("scale").training_data(EXAMPLES, task="next-command") is EXAMPLES


def test_label_flip_is_refused_by_name_for_a_task_without_answers(unattackable: str) -> None:
    with pytest.raises(ValueError, match="task no-answers has no answers to flip"):
        BoundedAttack("label-flip").training_data(EXAMPLES, task=unattackable)
    # The attacks that only reshape the update need nothing from the task.
    assert BoundedAttack("sign-flip").training_data(EXAMPLES, task=unattackable) is EXAMPLES


def test_a_canary_is_refused_by_name_for_a_task_that_predicts_no_sequences(
    unattackable: str,
) -> None:
    canary = random_sequence(np.random.default_rng(1))
    with pytest.raises(ValueError, match="task no-answers predicts no sequences"):
        plant([], canary, task=unattackable, times=1, seed=0)
    with pytest.raises(ValueError, match="task no-answers predicts no sequences"):
        exposure([], canary, [], task=unattackable, candidates=2)
