"""The contract every learned capability (a *task*) follows, and lookups by name.

A task's model is a list of numpy float arrays: the only thing a client ever
sends (after clipping and masking) and the thing the engine averages. The
engine, privacy, registry and simulation layers handle every task the same
way through :class:`Task`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import numpy as np
from numpy.typing import NDArray

from aicache.errors import AicacheError
from aicache.tasks.spec import get_spec, spec_names

Params = list[NDArray[np.float64]]
"""A model: a list of float arrays, in a task-defined order."""

SourceT = TypeVar("SourceT")
ExamplesT = TypeVar("ExamplesT")
ContextT = TypeVar("ContextT")
PredictionT = TypeVar("PredictionT")


@dataclass(frozen=True, slots=True)
class FitConfig:
    """How a client trains in one round.

    The defaults are the ones runs use (a plan's training settings and a
    client's fallbacks read them from here).

    Attributes
    ----------
    learning_rate
        The optimiser's step size.
    local_epochs
        Passes over the local examples.
    proximal_mu
        FedProx's μ: adds ``μ/2 · ||w - w_global||²`` to the loss (0 is FedAvg).
    batch_size
        Examples per optimiser step.
    weight_decay
        L2 penalty on the parameters.
    seed
        Seeds the order of examples, so a fit is reproducible.
    """

    learning_rate: float = 0.01
    local_epochs: int = 2
    proximal_mu: float = 0.0
    batch_size: int = 128
    weight_decay: float = 0.0
    seed: int = 0

    def __post_init__(self) -> None:
        if self.learning_rate <= 0 or self.local_epochs < 0 or self.batch_size < 1:
            raise ValueError("learning_rate > 0, local_epochs >= 0 and batch_size >= 1 needed")
        if self.proximal_mu < 0 or self.weight_decay < 0:
            raise ValueError("proximal_mu and weight_decay must be >= 0")


@dataclass(frozen=True, slots=True)
class FitResult:
    """What a local fit returns.

    Attributes
    ----------
    params
        The new parameters (same shapes as the ones given).
    num_examples
        How many examples were trained on: the weight of this update in FedAvg.
    metrics
        A few aggregate numbers (e.g. the training loss), safe to report.
    """

    params: Params
    num_examples: int
    metrics: dict[str, float] = field(default_factory=dict)


class Task(ABC, Generic[SourceT, ExamplesT, ContextT, PredictionT]):
    """One learned capability.

    Subclasses set :attr:`name` and implement the five operations; nothing
    else about a task is known to the engine.
    """

    name: str
    max_examples: int = 100_000
    """The most examples one client's data counts for: the server rejects an update
    that claims more (a weight it cannot check), and an honest client with more
    reports this. 100,000 shell commands are a decade of a busy history."""

    @abstractmethod
    def init_params(self, seed: int) -> Params:
        """A fresh model, reproducible from ``seed``."""

    @abstractmethod
    def load_local(self, source: SourceT) -> ExamplesT:
        """The client's private examples, from the local store or a simulation partition."""

    @abstractmethod
    def num_examples(self, examples: ExamplesT) -> int:
        """How many examples ``examples`` holds."""

    @abstractmethod
    def fit(self, params: Params, examples: ExamplesT, config: FitConfig) -> FitResult:
        """Train from ``params`` on ``examples``; ``params`` is not modified."""

    @abstractmethod
    def evaluate(self, params: Params, examples: ExamplesT) -> dict[str, float]:
        """Metrics of ``params`` on ``examples`` (deterministic)."""

    @abstractmethod
    def predict(self, params: Params, context: ContextT) -> list[PredictionT]:
        """What the product shows for ``context``, best first."""


AnyTask = Task[Any, Any, Any, Any]


def task_names() -> list[str]:
    """The names of every registered task, sorted (the specs' registry)."""
    return spec_names()


def get_task(name: str) -> AnyTask:
    """A new instance of the task registered as ``name`` (made by its spec's factory).

    Raises
    ------
    KeyError
        If no task has that name.
    """
    return get_spec(name).factory()


def check_params(params: Sequence[NDArray[Any]], reference: Sequence[NDArray[Any]]) -> None:
    """Check that ``params`` match ``reference`` in count, shapes and are finite.

    Raises
    ------
    ValueError
        On the first mismatch or non-finite value.
    """
    if len(params) != len(reference):
        raise ValueError(f"expected {len(reference)} arrays, got {len(params)}")
    for index, (got, want) in enumerate(zip(params, reference, strict=True)):
        if got.shape != want.shape:
            raise ValueError(f"array {index}: shape {got.shape}, expected {want.shape}")
        if not np.all(np.isfinite(got)):
            raise ValueError(f"array {index} has non-finite values")


def ensure_compatible(task_name: str, params: Sequence[NDArray[Any]]) -> None:
    """Refuse a model whose arrays do not fit the task as this version defines it.

    Raises
    ------
    AicacheError
        Naming the mismatch (a model registered by another version of the task).
    """
    try:
        check_params(params, get_task(task_name).init_params(0))
    except ValueError as exc:
        raise AicacheError(
            f"the model does not fit task {task_name} as this aicache defines it: {exc}",
            hint="It was trained by another version of the task; train a new one with "
            "`aicache simulate`.",
        ) from exc
