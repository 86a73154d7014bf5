"""Where next-command's simulated clients come from: the synthetic default or real traces.

Each source yields one private history per client, in typed order: what
:meth:`~aicache.tasks.next_command.task.NextCommandTask.load_local` takes.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from aicache.errors import AicacheError
from aicache.features.history_items import HistoryItem, items_from_greenberg
from aicache.tasks.next_command.population import developer


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

    def records(self, client: int) -> list[HistoryItem]:
        """Client ``client``'s generated history (what the task loads)."""
        return self.history(client)

    def check(self) -> None:
        """Nothing to check: the population is generated."""

    def members(self) -> list[str]:
        """Who the clients are, comparable across sources: a developer is its seed and index."""
        return [f"synthetic seed {self.seed} developer {index}" for index in range(self.clients)]

    def describe(self) -> str:
        """What the population is."""
        return (
            f"synthetic population (seed {self.seed}, {self.clients} developers, "
            f"{self.commands} commands each)"
        )


def greenberg_files(path: str) -> list[Path]:
    """The trace files of the Greenberg folder ``path``, one per user, in name order.

    Raises
    ------
    AicacheError
        Naming the problem: no such folder, not a folder, or no trace files.
    """
    folder = Path(path)
    if not folder.exists():
        raise AicacheError(
            f"--data {path}: does not exist",
            hint="Give the folder that holds one trace file per user.",
        )
    if not folder.is_dir():
        raise AicacheError(
            f"--data {path}: not a folder of Greenberg traces",
            hint="Give the folder that holds one trace file per user.",
        )
    files = sorted(
        p for p in folder.iterdir() if p.is_file() and not p.name.startswith((".", "README"))
    )
    if not files:
        raise AicacheError(f"--data {path}: the folder has no trace files")
    return files


@dataclass(frozen=True, slots=True)
class GreenbergSource:
    """Greenberg's UNIX traces: one user file per client, in file-name order."""

    path: str

    def _files(self) -> list[Path]:
        return greenberg_files(self.path)

    def names(self) -> list[str]:
        """The users' file names."""
        return [p.name for p in self._files()]

    def history(self, client: int) -> list[HistoryItem]:
        """User ``client``'s trace."""
        path = self._files()[client]
        try:
            return items_from_greenberg(path)
        except (ValueError, OSError) as exc:
            raise AicacheError(
                f"--data {self.path}: {path.name} cannot be used: {exc}",
                hint="Give a folder that holds only Greenberg trace files, one per user.",
            ) from exc

    def records(self, client: int) -> list[HistoryItem]:
        """User ``client``'s trace (what the task loads)."""
        return self.history(client)

    def check(self) -> None:
        """Read every trace once, so that a bad file is named before a simulation starts.

        Raises
        ------
        AicacheError
            Naming the first file that is not a Greenberg trace.
        """
        for client in range(len(self.names())):
            self.history(client)

    def members(self) -> list[str]:
        """Who the clients are, comparable across folders: a user is the content of its trace."""
        return [
            "trace sha256 " + hashlib.sha256(path.read_bytes()).hexdigest()
            for path in self._files()
        ]

    def describe(self) -> str:
        """Where the traces are."""
        return f"Greenberg UNIX traces in {self.path} ({len(self._files())} users)"
