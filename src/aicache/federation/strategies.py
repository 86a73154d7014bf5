"""Aggregation strategies chosen by name, built from Flower's Message-API strategies."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from flwr.app import MetricRecord, RecordDict
from flwr.serverapp.strategy import (
    FedAdam,
    FedAvg,
    FedMedian,
    FedProx,
    FedTrimmedAvg,
    Krum,
    Strategy,
)

StrategyFactory = Callable[[dict[str, Any], dict[str, float]], Strategy]


@dataclass(frozen=True, slots=True)
class NamedStrategy:
    """A registered aggregation rule.

    Attributes
    ----------
    description
        What it is (with its reference).
    defaults
        The settings it takes, with their defaults.
    build
        Makes Flower's strategy from the common sampling arguments and the
        resolved settings.
    """

    description: str
    defaults: dict[str, float]
    build: StrategyFactory


STRATEGIES: dict[str, NamedStrategy] = {
    "fedavg": NamedStrategy(
        "weighted mean of client models (McMahan et al. 2017)",
        {},
        lambda common, _: FedAvg(**common),
    ),
    "fedprox": NamedStrategy(
        "FedAvg with a proximal term on clients (Li et al. 2020)",
        {"proximal_mu": 0.01},
        lambda common, s: FedProx(**common, proximal_mu=s["proximal_mu"]),
    ),
    "fedadam": NamedStrategy(
        "server-side Adam on the mean update (Reddi et al. 2021)",
        {"eta": 0.1, "eta_l": 0.1, "beta_1": 0.9, "beta_2": 0.99, "tau": 1e-3},
        lambda common, s: FedAdam(
            **common,
            eta=s["eta"],
            eta_l=s["eta_l"],
            beta_1=s["beta_1"],
            beta_2=s["beta_2"],
            tau=s["tau"],
        ),
    ),
    "trimmed-mean": NamedStrategy(
        "coordinate-wise trimmed mean (Yin et al. 2018)",
        {"beta": 0.2},
        lambda common, s: FedTrimmedAvg(**common, beta=s["beta"]),
    ),
    "median": NamedStrategy(
        "coordinate-wise median (Yin et al. 2018)",
        {},
        lambda common, _: FedMedian(**common),
    ),
    "krum": NamedStrategy(
        "Krum: the update closest to its neighbours (Blanchard et al. 2017)",
        {"num_malicious_nodes": 0},
        lambda common, s: Krum(**common, num_malicious_nodes=int(s["num_malicious_nodes"])),
    ),
}


@dataclass(frozen=True, slots=True)
class Selection:
    """How clients are chosen each round.

    Attributes
    ----------
    fraction
        Share of the connected clients asked to train (and evaluate) each round.
    min_clients
        Never fewer than this many per round.
    min_available
        The first round waits until this many clients are connected (at least
        ``min_clients``); a simulation sets it to the population size so that
        the fraction is taken of everyone, not of the first to connect.
    """

    fraction: float = 1.0
    min_clients: int = 2
    min_available: int = 0

    def __post_init__(self) -> None:
        if not 0.0 < self.fraction <= 1.0:
            raise ValueError(f"invalid fraction {self.fraction}: it must be in (0, 1]")
        if self.min_clients < 1:
            raise ValueError(f"invalid minimum of clients {self.min_clients}: it must be >= 1")

    def per_round(self, population: int) -> int:
        """How many of ``population`` clients a round asks (Flower's own rounding)."""
        return min(population, max(int(population * self.fraction), self.min_clients))


@dataclass(frozen=True, slots=True)
class StrategySpec:
    """A strategy by name with its settings (the defaults of :data:`STRATEGIES` filled in)."""

    name: str = "fedavg"
    settings: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.name not in STRATEGIES:
            raise ValueError(
                f"unknown strategy {self.name!r}: choose one of {', '.join(STRATEGIES)}"
            )
        unknown = set(self.settings) - set(STRATEGIES[self.name].defaults)
        if unknown:
            raise ValueError(
                f"strategy {self.name} has no setting {', '.join(sorted(unknown))}; "
                f"it takes: {', '.join(STRATEGIES[self.name].defaults) or 'nothing'}"
            )

    def resolved(self) -> dict[str, float]:
        """Every setting of the strategy, defaults included."""
        return {**STRATEGIES[self.name].defaults, **self.settings}


ROBUST_STRATEGIES = ("krum", "trimmed-mean", "median")


def expecting_attackers(spec: StrategySpec, attackers: int, per_round: int) -> StrategySpec:
    """``spec`` set to withstand ``attackers`` malicious clients among ``per_round`` a round.

    Krum scores each update by its ``n - f - 2`` nearest neighbours and needs
    ``n > 2f + 2`` (Blanchard et al. 2017); the trimmed mean must cut at least
    ``f`` updates from each end (``beta >= f/n``); the median holds while the
    attackers are fewer than half. A rule that cannot hold is an error, not a
    silently weaker run.

    Raises
    ------
    ValueError
        If ``attackers`` is negative, ``spec`` is not a robust rule while
        ``attackers`` > 0, or the round is too small for that many.
    """
    if attackers < 0:
        raise ValueError(f"invalid number of expected attackers {attackers}: it must be >= 0")
    if attackers == 0:
        return spec
    if spec.name not in ROBUST_STRATEGIES:
        raise ValueError(
            f"{spec.name} has no setting for expected attackers: the robust rules that "
            f"take it are {', '.join(ROBUST_STRATEGIES)}"
        )
    if spec.name == "krum":
        if per_round <= 2 * attackers + 2:
            raise ValueError(
                f"Krum withstands {attackers} attacker(s) only with more than "
                f"{2 * attackers + 2} clients a round; this run asks {per_round}"
            )
        return StrategySpec("krum", {**spec.settings, "num_malicious_nodes": attackers})
    if 2 * attackers >= per_round:
        raise ValueError(
            f"{spec.name} withstands fewer attackers than half the clients of a round: "
            f"{attackers} of {per_round} is too many"
        )
    if spec.name == "trimmed-mean":
        # Flower cuts int(beta·n) from each end: nudge beta up so that int() gives f.
        beta = max(spec.resolved()["beta"], attackers / per_round + 1e-9)
        return StrategySpec("trimmed-mean", {**spec.settings, "beta": beta})
    return spec


MetricsAggregation = Callable[[list[RecordDict], str], MetricRecord]


def build_strategy(
    spec: StrategySpec,
    selection: Selection,
    *,
    evaluate_metrics_aggr_fn: MetricsAggregation | None = None,
) -> Strategy:
    """The Flower strategy for ``spec``, sampling clients as ``selection`` says."""
    common: dict[str, Any] = {
        "fraction_train": selection.fraction,
        "fraction_evaluate": selection.fraction,
        "min_train_nodes": selection.min_clients,
        "min_evaluate_nodes": selection.min_clients,
        "min_available_nodes": max(selection.min_clients, selection.min_available),
        "evaluate_metrics_aggr_fn": evaluate_metrics_aggr_fn,
    }
    return STRATEGIES[spec.name].build(common, spec.resolved())
