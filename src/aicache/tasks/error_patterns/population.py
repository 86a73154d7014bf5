"""The embedded default population: simulated developers hitting recorded real errors.

Each developer draws errors, over a working period scaled to [0, 1), from
the catalogue of recorded real tool output (:mod:`.catalogue`):

- common errors are shared: a key's popularity follows a Zipf law over a
  seeded order of the catalogue;
- developers differ (non-IID): each works mostly with a few tools, with
  weights drawn from a Dirichlet distribution;
- rare errors are private: the catalogue's tail is split among a few
  owners, and only its owner ever hits a private key;
- there is a trend: a fifth of the shared keys become more frequent over
  the period (their weight grows by ``e^RISE`` from start to end), a fifth
  fade.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass

import numpy as np

from aicache.features.error_events import ErrorOccurrence
from aicache.tasks.error_patterns.catalogue import catalogue

ZIPF = 1.1
PRIVATE_SHARE = 0.35  # the catalogue's tail kept by single owners
RISE = 2.0
TOOL_CONCENTRATION = 0.5
DEFAULT_ERRORS = 60


@dataclass(frozen=True, slots=True)
class PopulationModel:
    """The population's law: which keys exist, how common each is, who owns the private ones."""

    keys: tuple[str, ...]
    tools: tuple[str, ...]
    tool_of: np.ndarray
    weight: np.ndarray
    slope: np.ndarray
    owner: np.ndarray
    """The client owning each private key, ``-1`` for a shared key."""


@functools.cache
def population_model(seed: int, clients: int) -> PopulationModel:
    """The law of the population of ``clients`` developers seeded by ``seed``."""
    keys = catalogue()
    rng = np.random.default_rng([seed, 1013])
    order = rng.permutation(len(keys))
    ranks = np.empty(len(keys))
    ranks[order] = np.arange(1, len(keys) + 1)
    weight = ranks**-ZIPF
    private = ranks > len(keys) * (1 - PRIVATE_SHARE)
    owner = np.where(private, rng.integers(0, max(clients, 1), len(keys)), -1)
    slope = np.where(private, 0.0, rng.choice([-RISE, 0.0, 0.0, 0.0, RISE], len(keys)))
    tools = tuple(sorted({k.split(":", 1)[0] for k in keys}))
    tool_of = np.array([tools.index(k.split(":", 1)[0]) for k in keys])
    return PopulationModel(keys, tools, tool_of, weight, slope, owner)


def client_errors(
    model: PopulationModel, seed: int, client: int, count: int
) -> list[ErrorOccurrence]:
    """Client ``client``'s errors over its period, in time order."""
    rng = np.random.default_rng([seed, client, 29])
    affinity = rng.dirichlet(np.full(len(model.tools), TOOL_CONCENTRATION))[model.tool_of]
    allowed = (model.owner < 0) | (model.owner == client)
    # A private key is frequent for its owner: it is the owner's own recurring error.
    base = np.where(model.owner == client, 0.2, model.weight) * (0.2 + affinity) * allowed
    times = np.sort(rng.random(count))
    errors = []
    for t in times:
        w = base * np.exp(model.slope * (t - 0.5))
        index = int(rng.choice(len(w), p=w / w.sum()))
        errors.append(ErrorOccurrence(float(t), model.keys[index]))
    return errors


@dataclass(frozen=True, slots=True)
class SyntheticErrors:
    """The embedded default population (see the module)."""

    seed: int
    clients: int
    errors: int = DEFAULT_ERRORS

    def names(self) -> list[str]:
        """``dev-0000``, ``dev-0001``, ..."""
        return [f"dev-{i:04d}" for i in range(self.clients)]

    def records(self, client: int) -> list[ErrorOccurrence]:
        """Client ``client``'s errors, in time order."""
        return client_errors(
            population_model(self.seed, self.clients), self.seed, client, self.errors
        )

    def members(self) -> list[str]:
        """Who the clients are: a developer is its seed and its number."""
        return [
            "synthetic errors " + hashlib.sha256(f"{self.seed}/{i}".encode()).hexdigest()[:16]
            for i in range(self.clients)
        ]

    def describe(self) -> str:
        """What the population is."""
        return (
            f"simulated developers hitting recorded real tool errors (seed {self.seed}, "
            f"{self.clients} developers, {self.errors} errors each)"
        )

    def check(self) -> None:
        """Nothing to check: the population is generated."""
