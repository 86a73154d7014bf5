"""Measured leakage: a canary planted in one history is no more exposed than one never seen."""

from __future__ import annotations

import numpy as np

from aicache.features.history_items import HistoryItem
from aicache.simulation.canary import exposure, plant, random_sequence
from aicache.simulation.population import developer
from aicache.tasks.base import FitConfig, get_task

TASK = "next-command"


def test_a_model_trained_hard_on_a_canary_does_not_expose_it_to_an_outsider() -> None:
    # Prepare: the worst case, no DP and the victim alone, many epochs over 20 copies
    task = get_task(TASK)
    canary = random_sequence(np.random.default_rng(1))
    victim = plant(developer(0, 0, 400).history, canary, task=TASK, times=20, seed=1)
    params = task.fit(
        task.init_params(0), task.load_local(victim), FitConfig(local_epochs=10)
    ).params
    outsider = developer(0, 99, 150).history  # an attacker's own history
    never = random_sequence(np.random.default_rng(7))
    # Execute
    planted_exposure = exposure(params, canary, outsider, task=TASK, candidates=100)
    never_exposure = exposure(params, never, outsider, task=TASK, candidates=100)
    # Assert: indistinguishable from a canary that was never inserted (about 1 bit)
    assert abs(planted_exposure - never_exposure) < 0.1
    assert planted_exposure < 1.5


def test_the_measure_sees_a_canary_that_is_there_to_be_seen() -> None:
    # On the victim's own machine the model reads the history that holds the
    # canary: there the measure must report a high exposure, or it measures nothing.
    task = get_task(TASK)
    canary = random_sequence(np.random.default_rng(1))
    victim = plant(developer(0, 0, 400).history, canary, task=TASK, times=20, seed=1)
    params = task.fit(
        task.init_params(0), task.load_local(victim), FitConfig(local_epochs=5)
    ).params
    local = [*victim[:-5], HistoryItem("ls")]
    assert exposure(params, canary, local, task=TASK, candidates=100) > 4.0
