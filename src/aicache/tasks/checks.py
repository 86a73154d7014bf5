"""The shared battery every task passes, chosen by its spec's tags.

In the spirit of scikit-learn's ``estimator_checks``: :func:`task_checks`
yields named checks for a spec, :func:`check_task` runs them all, and
:func:`parametrize_with_checks` makes one pytest test per task and check::

    from aicache.tasks.checks import parametrize_with_checks
    from aicache.tasks.spec import all_specs

    @parametrize_with_checks(all_specs())
    def test_task(spec, check):
        check(spec)

Each check raises :class:`CheckFailed` naming what the task got wrong. The
data every check runs on is the first client of the task's synthetic
population, so a task brings its own learnable data.
"""

from __future__ import annotations

import io
import math
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar, cast

import numpy as np

from aicache.tasks.base import AnyTask, FitConfig, Params
from aicache.tasks.spec import Aggregation, PredictionKind, TaskSpec

_Test = TypeVar("_Test", bound=Callable[..., Any])


class CheckFailed(AssertionError):
    """A task broke one rule of the battery."""


@dataclass(frozen=True, slots=True)
class Check:
    """One named check of the battery: ``check(spec)`` raises :class:`CheckFailed`."""

    name: str
    run: Callable[[TaskSpec], None]

    def __call__(self, spec: TaskSpec) -> None:
        """Run the check on ``spec``."""
        self.run(spec)


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise CheckFailed(message)


def _data(spec: TaskSpec) -> tuple[AnyTask, Any]:
    """The task and the examples of the first client of its synthetic population."""
    task = spec.factory()
    return task, task.load_local(spec.synthetic(0, 1).records(0))


def _equal(a: Params, b: Params) -> bool:
    return len(a) == len(b) and all(
        x.shape == y.shape and np.array_equal(x, y) for x, y in zip(a, b, strict=True)
    )


def _distance(a: Params, b: Params) -> float:
    return float(np.sqrt(sum(np.sum((x - y) ** 2) for x, y in zip(a, b, strict=True))))


def _same_metrics(a: dict[str, float], b: dict[str, float]) -> bool:
    return a.keys() == b.keys() and all(
        a[k] == b[k] or (math.isnan(a[k]) and math.isnan(b[k])) for k in a
    )


def check_init_reproducible(spec: TaskSpec) -> None:
    """``init_params(seed)`` is a non-empty list of finite float arrays, the same for a seed."""
    task = spec.factory()
    first, second = task.init_params(3), task.init_params(3)
    _require(len(first) > 0, "init_params returned no array")
    _require(all(np.issubdtype(p.dtype, np.floating) for p in first), "params must be float arrays")
    _require(all(np.all(np.isfinite(p)) for p in first), "init_params is not finite")
    _require(_equal(first, second), "init_params(3) differs between two calls")


def check_fit_does_not_mutate_params(spec: TaskSpec) -> None:
    """``fit`` leaves the params it is given as they were."""
    task, examples = _data(spec)
    params = task.init_params(0)
    copy = [p.copy() for p in params]
    task.fit(params, examples, FitConfig(local_epochs=1))
    _require(_equal(params, copy), "fit modified the params it was given")


def check_fit_keeps_shapes_and_is_finite(spec: TaskSpec) -> None:
    """``fit`` returns arrays of the shapes and dtypes of ``init_params``, all finite."""
    task, examples = _data(spec)
    params = task.init_params(0)
    result = task.fit(params, examples, FitConfig(local_epochs=1))
    _require(len(result.params) == len(params), "fit changed the number of arrays")
    for index, (got, want) in enumerate(zip(result.params, params, strict=True)):
        _require(got.shape == want.shape, f"fit changed array {index}'s shape")
        _require(got.dtype == want.dtype, f"fit changed array {index}'s dtype")
        _require(bool(np.all(np.isfinite(got))), f"fit returned non-finite values in {index}")
    _require(
        result.num_examples == task.num_examples(examples),
        "fit's num_examples differs from num_examples(examples)",
    )


def check_fit_deterministic(spec: TaskSpec) -> None:
    """Two fits from the same params with the same seed give the same params."""
    task, examples = _data(spec)
    config = FitConfig(local_epochs=2, seed=7)
    first = task.fit(task.init_params(3), examples, config)
    second = task.fit(task.init_params(3), examples, config)
    _require(_equal(first.params, second.params), "fit is not reproducible for a seed")


def check_fit_rejects_wrong_shapes(spec: TaskSpec) -> None:
    """``fit`` raises ``ValueError`` on params of another shape (a model of another version)."""
    task, examples = _data(spec)
    params = task.init_params(0)
    params[0] = np.zeros(params[0].size + 1)
    try:
        task.fit(params, examples, FitConfig())
    except ValueError:
        return
    raise CheckFailed("fit accepted params of the wrong shape")


def check_evaluate_deterministic(spec: TaskSpec) -> None:
    """``evaluate`` returns every declared metric, finite, the same twice."""
    task, examples = _data(spec)
    params = task.fit(task.init_params(0), examples, FitConfig(local_epochs=1)).params
    first, second = task.evaluate(params, examples), task.evaluate(params, examples)
    missing = [m.name for m in spec.metrics if m.name not in first]
    _require(not missing, f"evaluate does not return the declared metrics {missing}")
    _require(all(math.isfinite(first[m.name]) for m in spec.metrics), "a metric is not finite")
    _require(_same_metrics(first, second), "evaluate differs between two calls")


def check_predict_kind(spec: TaskSpec) -> None:
    """``predict`` on the spec's empty context returns what the tags declare."""
    _require(spec.context is not None, "the spec declares no prediction context")
    assert spec.context is not None
    task = spec.factory()
    predictions = task.predict(task.init_params(0), spec.context())
    _require(isinstance(predictions, list) and len(predictions) > 0, "predict returned nothing")
    kind = spec.tags.prediction
    if kind is PredictionKind.RANKED_STRINGS:
        _require(
            all(isinstance(p, str) and p for p in predictions),
            "predict must return non-empty strings",
        )
        _require(len(set(predictions)) == len(predictions), "predict repeated a suggestion")
    elif kind is PredictionKind.SCORED_STRINGS:
        _require(
            all(
                isinstance(p, tuple)
                and len(p) == 2
                and isinstance(p[0], str)
                and isinstance(p[1], float)
                and math.isfinite(p[1])
                for p in predictions
            ),
            "predict must return (string, finite float) pairs",
        )
        scores = [p[1] for p in predictions]
        _require(scores == sorted(scores, reverse=True), "predict must rank best first")
    else:
        _require(all(isinstance(p, bool) for p in predictions), "predict must return booleans")


def check_examples_round_trip(spec: TaskSpec) -> None:
    """Examples saved and loaded again evaluate the same (the node's cache of examples)."""
    task, examples = _data(spec)
    params = task.init_params(0)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "examples.npz"
        examples.save(path)
        _require(path.exists(), "save wrote nothing at the path it was given")
        loaded = spec.examples.load(path)
    _require(isinstance(loaded, spec.examples), "load returned another type")
    _require(len(loaded) == len(examples), "load changed the number of examples")
    _require(
        _same_metrics(task.evaluate(params, loaded), task.evaluate(params, examples)),
        "loaded examples evaluate differently",
    )


def check_slicing_and_concatenation(spec: TaskSpec) -> None:
    """Slices have the lengths asked for, and the two halves joined are the whole again."""
    task, examples = _data(spec)
    total = len(examples)
    _require(total >= 2, "the synthetic population's first client has fewer than 2 examples")
    cut = total // 3
    head, tail = examples.slice(0, cut), examples.slice(cut, None)
    _require(len(head) == cut, f"slice(0, {cut}) holds {len(head)} examples")
    _require(len(tail) == total - cut, f"slice({cut}, None) holds {len(tail)} examples")
    _require(len(examples.slice(total, None)) == 0, "a slice past the end is not empty")
    joined = spec.examples.concatenate([head, tail])
    _require(len(joined) == total, "concatenating the two halves changed the length")
    params = task.init_params(0)
    _require(
        _same_metrics(task.evaluate(params, joined), task.evaluate(params, examples)),
        "the halves joined evaluate differently from the whole",
    )


def check_params_round_trip_npz(spec: TaskSpec) -> None:
    """Params survive the registry's format (``.npz`` without pickles) exactly."""
    task, examples = _data(spec)
    params = task.fit(task.init_params(1), examples, FitConfig(local_epochs=1)).params
    buffer = io.BytesIO()
    np.savez(buffer, *params)
    buffer.seek(0)
    try:
        with np.load(buffer, allow_pickle=False) as loaded:
            restored = [loaded[f"arr_{i}"] for i in range(len(loaded.files))]
    except ValueError as exc:  # object arrays: the registry loads no pickles
        raise CheckFailed(f"params cannot be read back without pickles: {exc}") from exc
    _require(_equal(restored, params), "params changed through .npz")


def check_fit_lowers_loss(spec: TaskSpec) -> None:
    """Gradient tasks: a fit on learnable data lowers the training loss and moves the params."""
    task, examples = _data(spec)
    params = task.init_params(0)
    before = task.evaluate(params, examples)
    _require("loss" in before, "a gradient task's evaluate must return a loss")
    result = task.fit(params, examples, FitConfig(learning_rate=0.02, local_epochs=5))
    after = task.evaluate(result.params, examples)
    _require(_distance(result.params, params) > 0, "fit did not move the params")
    _require(
        after["loss"] < before["loss"],
        f"fit did not lower the loss ({before['loss']:.4f} -> {after['loss']:.4f})",
    )


def check_fedprox_stays_closer(spec: TaskSpec) -> None:
    """Gradient tasks: FedProx's proximal term keeps the fit closer to the global params."""
    task, examples = _data(spec)
    start = task.init_params(0)
    free = task.fit(start, examples, FitConfig(learning_rate=0.05, local_epochs=3)).params
    prox = FitConfig(learning_rate=0.05, local_epochs=3, proximal_mu=5.0)
    held = task.fit(start, examples, prox).params
    _require(
        _distance(held, start) < _distance(free, start), "proximal_mu did not hold the fit back"
    )


def check_sum_of_parts(spec: TaskSpec) -> None:
    """Sum tasks: the global model plus the parts' updates equals one fit on the whole."""
    task, examples = _data(spec)
    start = task.init_params(0)
    cut = len(examples) // 2
    config = FitConfig(local_epochs=1)
    parts = [
        task.fit(start, examples.slice(a, b), config).params for a, b in ((0, cut), (cut, None))
    ]
    whole = task.fit(start, examples, config).params
    summed = [s + sum(p[i] - s for p in parts) for i, s in enumerate(start)]
    _require(
        all(np.allclose(a, b) for a, b in zip(summed, whole, strict=True)),
        "the sum of the parts' updates is not the update of the whole",
    )


_COMMON = (
    check_init_reproducible,
    check_fit_does_not_mutate_params,
    check_fit_keeps_shapes_and_is_finite,
    check_fit_deterministic,
    check_fit_rejects_wrong_shapes,
    check_evaluate_deterministic,
    check_predict_kind,
    check_examples_round_trip,
    check_slicing_and_concatenation,
    check_params_round_trip_npz,
)
_GRADIENT = (check_fit_lowers_loss, check_fedprox_stays_closer)
_SUM = (check_sum_of_parts,)


def _named(function: Callable[[TaskSpec], None]) -> Check:
    return Check(function.__name__.removeprefix("check_"), function)


def all_checks() -> list[Check]:
    """Every check of the battery, whichever task it applies to."""
    return [_named(f) for f in (*_COMMON, *_GRADIENT, *_SUM)]


def task_checks(spec: TaskSpec) -> Iterator[Check]:
    """The checks that apply to ``spec``, chosen by its tags and aggregation."""
    for function in _COMMON:
        yield _named(function)
    if spec.tags.gradient:
        for function in _GRADIENT:
            yield _named(function)
    if spec.aggregation is Aggregation.SUM:
        for function in _SUM:
            yield _named(function)


def check_task(spec: TaskSpec) -> None:
    """Run every check that applies to ``spec``.

    Raises
    ------
    CheckFailed
        Naming the first check that failed and why.
    """
    for check in task_checks(spec):
        try:
            check(spec)
        except CheckFailed as failed:
            raise CheckFailed(f"{spec.name}: {check.name}: {failed}") from failed


def parametrize_with_checks(specs: Iterable[TaskSpec]) -> Callable[[_Test], _Test]:
    """A pytest ``parametrize`` mark over ``(spec, check)`` for every applicable pair.

    Test ids read ``next-command-fit_lowers_loss``; a task that needs an extra
    carries ``needs_extra`` marks (skipped where the extra is missing).
    """
    import pytest  # a test helper: pytest is only needed where it is used

    params = [
        pytest.param(
            spec,
            check,
            # A task whose examples need an extra is skipped where it is missing.
            marks=[pytest.mark.needs_extra(*spec.extras)] if spec.extras else [],
            id=f"{spec.name}-{check.name}",
        )
        for spec in specs
        for check in task_checks(spec)
    ]
    mark = pytest.mark.parametrize(("spec", "check"), params)
    return cast(Callable[[_Test], _Test], mark)
