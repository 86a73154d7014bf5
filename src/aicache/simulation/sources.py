"""Where a simulation's clients come from: the synthetic default or real traces.

A source yields one private history per client; :class:`PartitionProvider`
turns a client's history into the task's examples and splits them in time
(earliest part to train on, latest part to test on).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from aicache.errors import AicacheError
from aicache.features.history_items import HistoryItem, items_from_shell
from aicache.federation.client_app import ClientData
from aicache.local.history import parse_greenberg, read_text
from aicache.simulation.population import developer
from aicache.tasks.base import AnyTask

FORMATS = ("greenberg",)


class HistorySource(Protocol):
    """A population of clients, each with a private command history."""

    def names(self) -> list[str]:
        """One name per client, in client order."""
        ...

    def history(self, client: int) -> list[HistoryItem]:
        """The history of ``client`` in typed order."""
        ...

    def members(self) -> list[str]:
        """One identity per client that another source of the same people would share."""
        ...

    def describe(self) -> str:
        """One line saying what the data is."""
        ...


@dataclass(frozen=True, slots=True)
class SyntheticSource:
    """The embedded default: a generated population (see :mod:`.population`)."""

    seed: int
    clients: int
    commands: int = 600

    def names(self) -> list[str]:
        """``dev-0000``, ``dev-0001``, ..."""
        return [f"dev-{index:04d}" for index in range(self.clients)]

    def history(self, client: int) -> list[HistoryItem]:
        """Client ``client``'s generated history."""
        return developer(self.seed, client, self.commands).history

    def members(self) -> list[str]:
        """Who the clients are, comparable across sources: a developer is its seed and index."""
        return [f"synthetic seed {self.seed} developer {index}" for index in range(self.clients)]

    def describe(self) -> str:
        """What the population is."""
        return (
            f"synthetic population (seed {self.seed}, {self.clients} developers, "
            f"{self.commands} commands each)"
        )


@dataclass(frozen=True, slots=True)
class GreenbergSource:
    """Greenberg's UNIX traces: one user file per client, in file-name order."""

    path: str

    def _files(self) -> list[Path]:
        folder = Path(self.path)
        if not folder.exists():
            raise AicacheError(
                f"--data {self.path}: does not exist",
                hint="Give the folder that holds one trace file per user.",
            )
        if not folder.is_dir():
            raise AicacheError(
                f"--data {self.path}: not a folder of Greenberg traces",
                hint="Give the folder that holds one trace file per user.",
            )
        files = sorted(
            p for p in folder.iterdir() if p.is_file() and not p.name.startswith((".", "README"))
        )
        if not files:
            raise AicacheError(f"--data {self.path}: the folder has no trace files")
        return files

    def names(self) -> list[str]:
        """The users' file names."""
        return [p.name for p in self._files()]

    def history(self, client: int) -> list[HistoryItem]:
        """User ``client``'s trace."""
        path = self._files()[client]
        try:
            return items_from_shell(parse_greenberg(read_text(path)))
        except ValueError as exc:
            raise AicacheError(f"{path}: {exc}") from exc

    def members(self) -> list[str]:
        """Who the clients are, comparable across folders: a user is the content of its trace."""
        return [
            "trace sha256 " + hashlib.sha256(path.read_bytes()).hexdigest()
            for path in self._files()
        ]

    def describe(self) -> str:
        """Where the traces are."""
        return f"Greenberg UNIX traces in {self.path} ({len(self._files())} users)"


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

    source: SyntheticSource | GreenbergSource
    train_fraction: float = 0.7

    def client_data(self, task: AnyTask, client: int) -> ClientData:
        """Client ``client``'s chronological train/test split for ``task``."""
        key = (self, task.name, client)
        if key not in _CACHE:
            examples = task.load_local(self.source.history(client))
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
