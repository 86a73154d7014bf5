"""Where a simulation's clients come from, and each client's examples for the ClientApp.

A task's spec names its sources (:attr:`~aicache.tasks.spec.TaskSpec.synthetic`,
the embedded default, and :attr:`~aicache.tasks.spec.TaskSpec.formats`, real
data); :class:`PartitionProvider` turns a client's records into the task's
examples and splits them in time (earliest part to train on, latest to test on).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from aicache.federation.client_app import ClientData
from aicache.tasks.base import AnyTask
from aicache.tasks.next_command.sources import GreenbergSource, SyntheticSource
from aicache.tasks.spec import ClientSource

__all__ = [
    "ClientSource",
    "GreenbergSource",
    "PartitionProvider",
    "SyntheticSource",
    "training_members",
]


_CACHE: dict[tuple[Any, str, int], ClientData] = {}


@dataclass(frozen=True, slots=True)
class PartitionProvider:
    """Client examples for the ClientApp in simulation, cached per process.

    Attributes
    ----------
    source
        The population.
    train_fraction
        The earliest share of each client's prediction points used for training.
    """

    source: ClientSource
    train_fraction: float = 0.7

    def client_data(self, task: AnyTask, client: int) -> ClientData:
        """Client ``client``'s chronological train/test split for ``task``."""
        key = (self, task.name, client)
        if key not in _CACHE:
            examples = task.load_local(self.source.records(client))
            cut = int(len(examples) * self.train_fraction)
            _CACHE[key] = ClientData(train=examples.slice(0, cut), test=examples.slice(cut, None))
        return _CACHE[key]


_SYNTHETIC = re.compile(r"synthetic population \(seed (-?\d+), (\d+) developers")


def training_members(spec: dict[str, Any]) -> set[str]:
    """The clients a registered run trained on, from its spec (empty when unknown).

    Runs registered before members were recorded name a synthetic population
    only in their federation's description; that is read instead.
    """
    if "members" in spec:
        return set(spec["members"])
    found = _SYNTHETIC.search(str(spec.get("federation", "")))
    if found is None:
        return set()
    seed, size = int(found.group(1)), int(found.group(2))
    return set(SyntheticSource(seed, size).members())
