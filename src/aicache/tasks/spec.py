"""What the rest of aicache knows about a task: one :class:`TaskSpec` per task.

Simulation, the report, evaluation, the CLI, deployment and the registry read
a task's spec instead of knowing the task: its examples type, where its data
comes from (a synthetic population, real data formats, the local store), its
headline metrics, how the federation aggregates it, and the tags that choose
the checks of the shared battery (:mod:`aicache.tasks.checks`).

Built-in tasks register their spec when their package is imported; further
task packages are found through the ``aicache.tasks`` entry-point group and
the ``AICACHE_TASK_MODULES`` environment variable (comma-separated module
names), which Ray workers and Flower's SuperNode processes inherit.
"""

from __future__ import annotations

import enum
import functools
import importlib
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, Self, runtime_checkable

from aicache.errors import AicacheError

if TYPE_CHECKING:
    # The task contract looks tasks up here: at run time only the names are needed.
    from aicache.tasks.base import AnyTask

# Modules that register the built-in tasks, imported on first registry use.
BUILTIN_TASK_MODULES: tuple[str, ...] = (
    "aicache.tasks.next_command",
    "aicache.tasks.semantic_hit",
    "aicache.tasks.cache_keep",
    "aicache.tasks.bug_detector",
    "aicache.tasks.library_recs",
    "aicache.tasks.error_patterns",
)
ENTRY_POINT_GROUP = "aicache.tasks"
MODULES_VARIABLE = "AICACHE_TASK_MODULES"


@runtime_checkable
class Examples(Protocol):
    """A client's examples as the engine handles them, whatever the task.

    ``len`` counts prediction points (what a chronological split cuts), not
    what a fit trains on (:meth:`~aicache.tasks.base.Task.num_examples`).
    """

    def __len__(self) -> int:
        """How many points the examples hold."""
        ...

    def slice(self, start: int, stop: int | None) -> Self:
        """Points ``start`` to ``stop`` (exclusive; ``None``: to the end), in order."""
        ...

    @classmethod
    def concatenate(cls, parts: Sequence[Self]) -> Self:
        """The points of ``parts`` in order (pooled clients)."""
        ...

    def save(self, path: Path) -> None:
        """Write the examples to ``path`` (an ``.npz`` file, no pickles)."""
        ...

    @classmethod
    def load(cls, path: Path) -> Self:
        """Read examples written by :meth:`save`."""
        ...


class ClientSource(Protocol):
    """A simulated population: one private record of each client (a history, a log, ...)."""

    def names(self) -> list[str]:
        """One name per client, in client order."""
        ...

    def records(self, client: int) -> Any:
        """Client ``client``'s raw data: what the task's ``load_local`` takes."""
        ...

    def members(self) -> list[str]:
        """One identity per client that another source of the same people would share."""
        ...

    def describe(self) -> str:
        """One line saying what the data is."""
        ...

    def check(self) -> None:
        """Raise an :class:`~aicache.errors.AicacheError` naming what cannot be used."""
        ...


class Aggregation(enum.Enum):
    """How the federation combines the clients' models of a task."""

    WEIGHTED_MEAN = "weighted-mean"
    """FedAvg and its relatives: models weighted by their example counts."""
    SUM = "sum"
    """Histograms and sketches: the global model plus the sum of every client's update.

    A client's update has L2 norm at most 1, so that DP's clip of 1 (or more)
    leaves every count whole."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Metric:
    """One metric a task's ``evaluate`` returns, as reports and dashboards show it.

    Attributes
    ----------
    name
        The key in the task's metrics (``top1``).
    label
        How a table or a plot names it (``top-1``).
    higher_is_better
        Which direction is an improvement.
    headline
        Shown in tables and plots (the others are only recorded).
    bounded
        Values lie in [0, 1] (plots fix their axis to it).
    """

    name: str
    label: str
    higher_is_better: bool = True
    headline: bool = True
    bounded: bool = False


class PredictionKind(enum.Enum):
    """What :meth:`~aicache.tasks.base.Task.predict` returns, for the battery."""

    RANKED_STRINGS = "ranked-strings"
    """Distinct non-empty strings, best first (next commands, recommendations)."""
    SCORED_STRINGS = "scored-strings"
    """``(string, finite score)`` pairs, best first (heavy hitters, findings)."""
    DECISIONS = "decisions"
    """Booleans (a semantic-hit decision)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskTags:
    """Which checks of the shared battery apply to a task.

    Attributes
    ----------
    gradient
        Fit takes optimiser steps: it must lower the training loss and honour
        FedProx's proximal term.
    prediction
        What predict returns.
    """

    gradient: bool = True
    prediction: PredictionKind = PredictionKind.RANKED_STRINGS


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskAttacks:
    """How the robustness and leakage experiments attack a task (simulation only).

    Attributes
    ----------
    label_flipped
        ``label_flipped(examples)``: the same points with each answer moved to a
        wrong one (the label-flip poisoning attack), or ``None`` when the task's
        examples carry no answers to flip.
    plant
        ``plant(records, canary, times, seed)``: a client's raw records with the
        canary (a sequence of made-up tokens) inserted ``times`` times.
    log_perplexity
        ``log_perplexity(params, prefix, sequence)``: ``-Σ log p(s_i | prefix, s_<i)``
        under the model, what a canary's exposure ranks by; ``None`` (with
        ``plant``) when the task predicts no sequences.
    """

    label_flipped: Callable[[Any], Any] | None = None
    plant: Callable[[Any, Sequence[str], int, int], Any] | None = None
    log_perplexity: Callable[[Any, Any, Sequence[str]], float] | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Curve:
    """One line of a task's own figure in the simulation report.

    Attributes
    ----------
    label
        What the legend calls it.
    xs, ys
        Its points, in drawing order.
    point
        The operating point to mark on it (the decision actually taken), if any.
    """

    label: str
    xs: tuple[float, ...]
    ys: tuple[float, ...]
    point: tuple[float, float] | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Comparison:
    """A task's model against a baseline, measured in the same run on the same test splits.

    Attributes
    ----------
    title, x_label, y_label
        How the report's figure is titled and its axes labelled.
    curves
        The lines of the figure (the model's, the baseline's).
    baseline_label
        What the baseline is, in one line.
    baseline
        The baseline's values of the task's headline metrics.
    """

    title: str
    x_label: str
    y_label: str
    curves: tuple[Curve, ...]
    baseline_label: str
    baseline: Mapping[str, float]


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskSpec:
    """Everything the engine, simulation, report, CLI and deployment know of one task.

    Attributes
    ----------
    name
        The task's registered name (``next-command``).
    factory
        Makes the task (usually its class).
    examples
        The examples type, satisfying :class:`Examples`.
    metrics
        What ``evaluate`` returns that reports show, headline metrics first.
    synthetic
        ``synthetic(seed, clients)``: the embedded default population for simulation.
    formats
        Real data formats by name: each makes a source from a path.
    read_store
        ``read_store(task, home)``: this machine's examples from the local
        store of the aicache home ``home`` (deployment); ``None`` when the task
        cannot train on a node.
    store_version
        ``store_version(home)``: changes whenever what ``read_store`` reads
        changes (the node's cache of extracted examples is keyed by it).
    context
        A prediction context with no history (the battery predicts on it).
    record_label
        What one unit of a client's raw data is called (``commands``).
    cold_start
        ``cold_start(records, n)``: a baseline's metrics on the first ``n``
        records of one user without any shared model (evaluation's cold-start
        view), or ``None``.
    aggregation
        How the federation combines clients' models.
    tags
        Which checks of the battery apply.
    attacks
        How the robustness and leakage experiments attack it.
    extras
        Optional parts of aicache its examples need (``semantic``: the
        embedder); where one is missing the battery skips the task.
    compare
        ``compare(params, tests)``: the final global model against the task's
        baseline on every client's test split (the report draws it), or ``None``.
    """

    name: str
    factory: Callable[[], AnyTask]
    examples: type[Examples]
    metrics: tuple[Metric, ...]
    synthetic: Callable[[int, int], ClientSource]
    formats: Mapping[str, Callable[[str], ClientSource]] = field(default_factory=dict)
    read_store: Callable[[AnyTask, Path], Examples] | None = None
    store_version: Callable[[Path], str] | None = None
    context: Callable[[], Any] | None = None
    record_label: str = "records"
    cold_start: Callable[[Any, int], dict[str, float]] | None = None
    aggregation: Aggregation = Aggregation.WEIGHTED_MEAN
    tags: TaskTags = field(default_factory=TaskTags)
    attacks: TaskAttacks = field(default_factory=TaskAttacks)
    extras: tuple[str, ...] = ()
    compare: Callable[[Any, Sequence[Any]], Comparison] | None = None

    def __post_init__(self) -> None:
        if not self.metrics:
            raise ValueError(f"task {self.name!r} declares no metric")
        if (self.read_store is None) != (self.store_version is None):
            raise ValueError(f"task {self.name!r}: read_store and store_version go together")

    @property
    def headline(self) -> tuple[Metric, ...]:
        """The metrics tables and plots show."""
        return tuple(m for m in self.metrics if m.headline)

    @property
    def default_format(self) -> str | None:
        """The format ``--data`` is read in when none is named: the first declared."""
        return next(iter(self.formats), None)

    def source(
        self, *, data: str | None, data_format: str | None, seed: int, clients: int
    ) -> ClientSource:
        """The population of a simulation: ``data`` in ``data_format``, or the synthetic one.

        ``data_format`` ``None`` reads ``data`` in :attr:`default_format`.

        Raises
        ------
        ValueError
            If the task reads no data format of that name, or no data at all.
        """
        if data_format is not None and data_format not in self.formats:
            known = ", ".join(self.formats) or "none"
            raise ValueError(
                f"--format: task {self.name} reads no format {data_format!r} (it reads: {known})"
            )
        if data is None:
            return self.synthetic(seed, clients)
        chosen = data_format or self.default_format
        if chosen is None:
            raise ValueError(
                f"--data: task {self.name} reads no data format: it runs on its synthetic "
                "population only (drop --data)"
            )
        return self.formats[chosen](data)


_SPECS: dict[str, TaskSpec] = {}
_loaded: set[str] = set()


def register_spec(spec: TaskSpec) -> TaskSpec:
    """Register ``spec``, which makes its task known by name; registering it again is a no-op.

    Raises
    ------
    ValueError
        If another spec already uses its name.
    """
    known = _SPECS.get(spec.name)
    if known is not None and known != spec:
        raise ValueError(f"task {spec.name!r} is already registered")
    _SPECS[spec.name] = spec
    return spec


@functools.cache
def task_modules() -> tuple[str, ...]:
    """The modules that register tasks: built-ins, entry points, then the environment's.

    Read once per process: scanning the installed distributions' entry points
    takes milliseconds, and specs are looked up for every message and round.
    A process started later (a Ray worker, a SuperNode's app) reads its own.
    """
    extra = [m.strip() for m in os.environ.get(MODULES_VARIABLE, "").split(",") if m.strip()]
    plugins = [point.value for point in entry_points(group=ENTRY_POINT_GROUP)]
    return (*BUILTIN_TASK_MODULES, *plugins, *extra)


def load_task_modules() -> None:
    """Import every module that registers a task (each once per process).

    Raises
    ------
    AicacheError
        Naming a module that cannot be imported and where it was listed.
    """
    modules = task_modules()
    if _loaded.issuperset(modules):
        return
    for module in modules:
        if module in _loaded:
            continue
        try:
            importlib.import_module(module.split(":")[0])
        except ImportError as exc:
            raise AicacheError(
                f"task module {module!r} cannot be imported: {exc}",
                hint=f"Fix {MODULES_VARIABLE} or the package that declares it in the "
                f"{ENTRY_POINT_GROUP!r} entry points (and check PYTHONPATH).",
            ) from exc
        _loaded.add(module)


def spec_names() -> list[str]:
    """The names of every registered task spec, sorted."""
    load_task_modules()
    return sorted(_SPECS)


def all_specs() -> list[TaskSpec]:
    """Every registered spec, built-in tasks first (registration order)."""
    load_task_modules()
    return list(_SPECS.values())


def get_spec(name: str) -> TaskSpec:
    """The spec registered as ``name``.

    Raises
    ------
    KeyError
        If no task has that name.
    """
    load_task_modules()
    try:
        return _SPECS[name]
    except KeyError:
        known = ", ".join(sorted(_SPECS)) or "none"
        raise KeyError(f"unknown task {name!r} (known: {known})") from None
