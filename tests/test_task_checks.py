"""Every check of the shipped battery can fail: each one is fed a task broken in its way.

The sound tasks are next-command (a gradient task) and the test-defined
``first-word`` histogram (a sum task, see ``test_task_seam_proof``).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from aicache.tasks.base import FitConfig, FitResult, Params
from aicache.tasks.checks import CheckFailed, all_checks, check_task, task_checks
from aicache.tasks.next_command import SPEC as NEXT_COMMAND
from aicache.tasks.next_command import NextCommandTask
from aicache.tasks.spec import TaskSpec
from tests.test_task_seam_proof import SPEC as FIRST_WORD
from tests.test_task_seam_proof import FirstWordTask, WordIds, counts


class RandomInit(FirstWordTask):
    def init_params(self, seed: int) -> Params:
        return [np.random.default_rng().random(super().init_params(seed)[0].size)]


class InPlaceFit(FirstWordTask):
    def fit(self, params: Params, examples: WordIds, config: FitConfig) -> FitResult:
        params[0] += counts(examples)
        return FitResult(params=params, num_examples=len(examples))


class GrowingFit(FirstWordTask):
    def fit(self, params: Params, examples: WordIds, config: FitConfig) -> FitResult:
        grown = np.append(params[0] + counts(examples), 0.0)
        return FitResult(params=[grown], num_examples=len(examples))


class NoisyFit(FirstWordTask):
    def fit(self, params: Params, examples: WordIds, config: FitConfig) -> FitResult:
        result = super().fit(params, examples, config)
        noise = np.random.default_rng().normal(size=result.params[0].size)
        return FitResult(params=[result.params[0] + noise], num_examples=result.num_examples)


class LenientFit(FirstWordTask):
    def fit(self, params: Params, examples: WordIds, config: FitConfig) -> FitResult:
        fitted = params[0][: counts(examples).size] + counts(examples)
        return FitResult(params=[fitted], num_examples=len(examples))


class RandomEvaluate(FirstWordTask):
    def evaluate(self, params: Params, examples: WordIds) -> dict[str, float]:
        return {**super().evaluate(params, examples), "l1": float(np.random.default_rng().random())}


class NamesOnly(FirstWordTask):
    def predict(self, params: Params, context: int) -> list[tuple[str, float]]:
        return [name for name, _ in super().predict(params, context)]  # type: ignore[misc]


class ForgetfulIds(WordIds):
    @classmethod
    def load(cls, path: Path) -> ForgetfulIds:
        return cls(WordIds.load(path).ids[:-1])


class SlicePastStop(WordIds):
    def slice(self, start: int, stop: int | None) -> SlicePastStop:
        return SlicePastStop(self.ids[start:])


class SlicingTask(FirstWordTask):
    def load_local(self, source: object) -> WordIds:
        return SlicePastStop(super().load_local(source).ids)  # type: ignore[arg-type]


class ObjectParams(FirstWordTask):
    def fit(self, params: Params, examples: WordIds, config: FitConfig) -> FitResult:
        result = super().fit(params, examples, config)
        return FitResult(params=[result.params[0].astype(object)], num_examples=len(examples))


class NormalisedFit(FirstWordTask):
    def fit(self, params: Params, examples: WordIds, config: FitConfig) -> FitResult:
        share = counts(examples) / max(counts(examples).sum(), 1e-12)
        return FitResult(params=[params[0] + share], num_examples=len(examples))


class StandingStill(NextCommandTask):
    def fit(self, params: Params, examples: object, config: FitConfig) -> FitResult:
        result = super().fit(params, examples, replace(config, local_epochs=0))  # type: ignore[arg-type]
        return FitResult(params=[p.copy() for p in params], num_examples=result.num_examples)


class IgnoresProximal(NextCommandTask):
    def fit(self, params: Params, examples: object, config: FitConfig) -> FitResult:
        return super().fit(params, examples, replace(config, proximal_mu=0.0))  # type: ignore[arg-type]


def _broken(spec: TaskSpec, **changes: object) -> TaskSpec:
    return replace(spec, **changes)  # type: ignore[arg-type]


# check name -> (the sound spec it passes, the same spec broken in that check's way)
BROKEN: dict[str, tuple[TaskSpec, TaskSpec]] = {
    "init_reproducible": (FIRST_WORD, _broken(FIRST_WORD, factory=RandomInit)),
    "fit_does_not_mutate_params": (FIRST_WORD, _broken(FIRST_WORD, factory=InPlaceFit)),
    "fit_keeps_shapes_and_is_finite": (FIRST_WORD, _broken(FIRST_WORD, factory=GrowingFit)),
    "fit_deterministic": (FIRST_WORD, _broken(FIRST_WORD, factory=NoisyFit)),
    "fit_rejects_wrong_shapes": (FIRST_WORD, _broken(FIRST_WORD, factory=LenientFit)),
    "evaluate_deterministic": (FIRST_WORD, _broken(FIRST_WORD, factory=RandomEvaluate)),
    "predict_kind": (FIRST_WORD, _broken(FIRST_WORD, factory=NamesOnly)),
    "examples_round_trip": (FIRST_WORD, _broken(FIRST_WORD, examples=ForgetfulIds)),
    "slicing_and_concatenation": (
        FIRST_WORD,
        _broken(FIRST_WORD, factory=SlicingTask, examples=SlicePastStop),
    ),
    "params_round_trip_npz": (FIRST_WORD, _broken(FIRST_WORD, factory=ObjectParams)),
    "sum_of_parts": (FIRST_WORD, _broken(FIRST_WORD, factory=NormalisedFit)),
    "fit_lowers_loss": (NEXT_COMMAND, _broken(NEXT_COMMAND, factory=StandingStill)),
    "fedprox_stays_closer": (NEXT_COMMAND, _broken(NEXT_COMMAND, factory=IgnoresProximal)),
}
CHECKS = {check.name: check for check in all_checks()}


def test_every_check_has_a_task_broken_for_it() -> None:
    # Prepare / Execute / Assert: a new check needs a broken task here
    assert set(BROKEN) == set(CHECKS)


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_the_check_passes_the_sound_task_and_catches_the_broken_one(name: str) -> None:
    # Prepare
    sound, broken = BROKEN[name]
    check = CHECKS[name]
    # Execute / Assert
    check(sound)
    with pytest.raises(CheckFailed):
        check(broken)


def test_the_tags_choose_the_checks() -> None:
    # Prepare / Execute
    gradient = {c.name for c in task_checks(NEXT_COMMAND)}
    summed = {c.name for c in task_checks(FIRST_WORD)}
    # Assert
    assert {"fit_lowers_loss", "fedprox_stays_closer"} <= gradient - summed
    assert "sum_of_parts" in summed - gradient


def test_check_task_names_the_task_and_the_check_that_failed() -> None:
    # Prepare
    _, broken = BROKEN["predict_kind"]
    # Execute / Assert
    with pytest.raises(CheckFailed, match="first-word: predict_kind: "):
        check_task(broken)
