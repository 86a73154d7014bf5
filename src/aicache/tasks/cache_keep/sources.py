"""Where cache-keep's simulated clients come from: generated request streams or real traces.

The synthetic default reuses next-command's generated developers: each typed
command becomes a request, and commands that take an argument are asked about
one of the developer's current working files, a set that drifts as work moves
on, with now and then a one-off argument never asked again. Sizes and costs
follow the program and the argument (log-normal). Greenberg's traces are real:
each command line a request, its repetition a hit.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from aicache.errors import AicacheError
from aicache.features.cache_requests import Request, requests_from_greenberg
from aicache.tasks.next_command.sources import SyntheticSource, greenberg_files

WORKING_SET = 8  # files a developer is working on at once
DRIFT = 0.03  # chance per request that one working file is replaced by a new one
ONE_OFF = 0.1  # chance that an argument is a one-off, never asked again
DEFAULT_REQUESTS = 1500


def _unit(text: str) -> float:
    """A number in [0, 1) fixed by ``text`` (the same for every run)."""
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big") / 2**64


@dataclass(frozen=True, slots=True)
class SyntheticRequests:
    """The embedded default: next-command's generated developers, as request streams."""

    seed: int
    clients: int
    requests: int = DEFAULT_REQUESTS

    def names(self) -> list[str]:
        """``dev-0000``, ``dev-0001``, ..."""
        return self._histories().names()

    def _histories(self) -> SyntheticSource:
        return SyntheticSource(self.seed, self.clients, self.requests)

    def records(self, client: int) -> list[Request]:
        """Client ``client``'s request stream."""
        rng = np.random.default_rng([self.seed, client, 7])
        working = list(range(WORKING_SET))
        fresh = WORKING_SET
        weights = 1.0 / np.arange(1, WORKING_SET + 1)
        weights /= weights.sum()
        stream = []
        for item in self._histories().history(client):
            if rng.random() < DRIFT:
                working[int(rng.integers(WORKING_SET))] = fresh
                fresh += 1
            key = item.command
            if _unit("takes-argument " + item.program) < 0.6:
                if rng.random() < ONE_OFF:
                    argument, fresh = fresh, fresh + 1
                else:
                    argument = working[int(rng.choice(WORKING_SET, p=weights))]
                key = f"{item.command} file{argument}"
            size = float(np.exp(7.0 + 2.0 * _unit("size " + key)))
            cost = float(np.exp(-2.0 + 4.0 * _unit("cost " + item.program)))
            stream.append(Request(key=key, program=item.program, size=size, cost=cost))
        return stream

    def check(self) -> None:
        """Nothing to check: the population is generated."""

    def members(self) -> list[str]:
        """Who the clients are: the developers of next-command's population."""
        return self._histories().members()

    def describe(self) -> str:
        """What the population is."""
        return (
            f"synthetic request streams (seed {self.seed}, {self.clients} developers, "
            f"about {self.requests} requests each)"
        )


@dataclass(frozen=True, slots=True)
class GreenbergRequests:
    """Greenberg's UNIX traces: one user file per client, each command line a request."""

    path: str

    def _files(self) -> list[Path]:
        return greenberg_files(self.path)

    def names(self) -> list[str]:
        """The users' file names."""
        return [p.name for p in self._files()]

    def records(self, client: int) -> list[Request]:
        """User ``client``'s requests."""
        path = self._files()[client]
        try:
            return requests_from_greenberg(path)
        except (ValueError, OSError) as exc:
            raise AicacheError(
                f"--data {self.path}: {path.name} cannot be used: {exc}",
                hint="Give a folder that holds only Greenberg trace files, one per user.",
            ) from exc

    def check(self) -> None:
        """Read every trace once, so that a bad file is named before a simulation starts."""
        for client in range(len(self.names())):
            self.records(client)

    def members(self) -> list[str]:
        """Who the clients are, comparable across folders: a user is the content of its trace."""
        return [
            "trace sha256 " + hashlib.sha256(path.read_bytes()).hexdigest()
            for path in self._files()
        ]

    def describe(self) -> str:
        """Where the traces are."""
        return f"Greenberg UNIX traces in {self.path} ({len(self._files())} users), as requests"
