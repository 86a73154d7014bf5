"""Where the semantic-hit task's simulated clients come from.

The embedded default (:class:`SyntheticPairs`, from :mod:`.population`) and two
real data formats: ``nl2bash`` (English descriptions of shell commands: two
descriptions of one command are a paraphrase, descriptions of two commands of
the same program a hard negative; one client per group of programs) and
``stsb`` (the STS Benchmark: score >= 4 means the same; one client per source
of sentences).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from aicache.errors import AicacheError
from aicache.tasks.semantic_hit.pairs import LabelledPair
from aicache.tasks.semantic_hit.population import developer_pairs

SAME_MEANING = 4.0  # STS-B score from which two sentences are read as the same meaning
NL2BASH_CLIENTS = 10
PAIRS_PER_CLIENT = 120  # a bound on each real client's pairs: embedding is the cost


@dataclass(frozen=True, slots=True)
class SyntheticPairs:
    """The embedded default: ``clients`` simulated developers of one seed."""

    seed: int
    clients: int
    pairs: int = 150

    def names(self) -> list[str]:
        """One name per developer."""
        return [f"dev{index:03d}" for index in range(self.clients)]

    def records(self, client: int) -> list[LabelledPair]:
        """Developer ``client``'s questions paired with cached prompts, in time order."""
        return developer_pairs(self.seed, client, self.pairs)

    def members(self) -> list[str]:
        """A developer is its seed and index."""
        return [f"semantic seed {self.seed} developer {i}" for i in range(self.clients)]

    def describe(self) -> str:
        """What the population is."""
        return (
            f"synthetic developers' questions (seed {self.seed}, {self.clients} developers, "
            f"{self.pairs} pairs each)"
        )

    def check(self) -> None:
        """Nothing to check: the population is generated."""


def _folder(path: str, wanted: tuple[str, ...], what: str) -> Path:
    folder = Path(path)
    missing = [name for name in wanted if not (folder / name).is_file()]
    if not folder.is_dir() or missing:
        raise AicacheError(
            f"--data {path}: not a folder of {what} (missing {', '.join(missing) or wanted[0]})",
            hint=f"Give the folder that holds {' and '.join(wanted)}.",
        )
    return folder


def _shuffled(pairs: list[LabelledPair], key: str) -> list[LabelledPair]:
    """``pairs`` in an order fixed by ``key`` (the data sets are sorted; a split must not be)."""
    seed = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big")
    order = np.random.default_rng(seed).permutation(len(pairs))
    return [pairs[int(i)] for i in order]


def _balanced(pairs: list[LabelledPair], key: str, size: int) -> list[LabelledPair]:
    """At most ``size / 2`` pairs of each label, in a fixed shuffled order.

    Negatives outnumber paraphrases many times in NL2Bash; an even mix keeps
    precision and recall measurable on every client.
    """
    half = size // 2
    positives = _shuffled([p for p in pairs if p.same], key)[:half]
    negatives = _shuffled([p for p in pairs if not p.same], key)[:half]
    return _shuffled(positives + negatives, key)


@dataclass(frozen=True, slots=True)
class Nl2BashSource:
    """NL2Bash (``all.nl``, ``all.cm``): clients are groups of programs.

    ``pairs`` bounds each client's pairs (benchmarks take more).
    """

    path: str
    pairs: int = PAIRS_PER_CLIENT

    def _groups(self) -> list[list[LabelledPair]]:
        folder = _folder(self.path, ("all.nl", "all.cm"), "NL2Bash")
        texts = (folder / "all.nl").read_text(encoding="utf-8", errors="replace").splitlines()
        commands = (folder / "all.cm").read_text(encoding="utf-8", errors="replace").splitlines()
        if len(texts) != len(commands) or not texts:
            raise AicacheError(
                f"--data {self.path}: all.nl has {len(texts)} lines, all.cm {len(commands)}",
                hint="Line i of all.nl describes line i of all.cm: give the corpus as released.",
            )
        by_command: dict[str, list[str]] = {}
        for text, command in zip(texts, commands, strict=True):
            if text.strip() and command.strip():
                found = by_command.setdefault(command.strip(), [])
                if text.strip() not in found:
                    found.append(text.strip())
        by_program: dict[str, list[str]] = {}
        for command in by_command:
            by_program.setdefault(command.split()[0], []).append(command)
        ranked = sorted(by_program, key=lambda p: (-len(by_program[p]), p))
        groups: list[list[LabelledPair]] = [[] for _ in range(NL2BASH_CLIENTS)]
        for rank, program in enumerate(ranked):
            pairs = groups[rank % NL2BASH_CLIENTS]
            cmds = by_program[program]
            for k, command in enumerate(cmds):
                described = by_command[command]
                if len(described) > 1:
                    pairs.append(LabelledPair(described[1], described[0], True))
                if len(cmds) > 1:  # the next command of the same program: a hard negative
                    other = by_command[cmds[(k + 1) % len(cmds)]][0]
                    pairs.append(LabelledPair(described[0], other, False))
        return [_balanced(pairs, f"nl2bash {i}", self.pairs) for i, pairs in enumerate(groups)]

    def names(self) -> list[str]:
        """One name per group of programs."""
        return [f"programs{index}" for index in range(NL2BASH_CLIENTS)]

    def records(self, client: int) -> list[LabelledPair]:
        """Group ``client``'s pairs."""
        return self._groups()[client]

    def members(self) -> list[str]:
        """A client is its group of the corpus."""
        return [f"nl2bash programs group {i}" for i in range(NL2BASH_CLIENTS)]

    def describe(self) -> str:
        """Where the corpus is."""
        return f"NL2Bash descriptions in {self.path} ({NL2BASH_CLIENTS} groups of programs)"

    def check(self) -> None:
        """Read the corpus once, so that a bad folder is named before a simulation starts."""
        if not any(self._groups()):
            raise AicacheError(f"--data {self.path}: no command has two descriptions")


@dataclass(frozen=True, slots=True)
class StsbSource:
    """The STS Benchmark (``sts-train.csv``, ``sts-dev.csv``): one client per source.

    ``pairs`` bounds each client's pairs (benchmarks take more).
    """

    path: str
    pairs: int = PAIRS_PER_CLIENT

    def _slices(self) -> dict[str, list[LabelledPair]]:
        folder = _folder(self.path, ("sts-train.csv", "sts-dev.csv"), "STS Benchmark files")
        slices: dict[str, list[LabelledPair]] = {}
        for name in ("sts-train.csv", "sts-dev.csv"):
            lines = (folder / name).read_text(encoding="utf-8", errors="replace").splitlines()
            for number, line in enumerate(lines, 1):
                fields = line.split("\t")
                try:
                    score = float(fields[4])
                    first, second = fields[5], fields[6]
                except (IndexError, ValueError):
                    raise AicacheError(
                        f"--data {self.path}: {name} line {number} is not "
                        "genre, source, year, id, score, sentence, sentence (tab-separated)"
                    ) from None
                pair = LabelledPair(first.strip(), second.strip(), score >= SAME_MEANING)
                slices.setdefault(fields[1], []).append(pair)
        # Sources with few pairs would be clients without a test split worth the name.
        kept = {k: v for k, v in sorted(slices.items()) if len(v) >= 40}
        return {k: _shuffled(v, f"stsb {k}")[: self.pairs] for k, v in kept.items()}

    def names(self) -> list[str]:
        """The sources' names (MSRvid, headlines, ...)."""
        return list(self._slices())

    def records(self, client: int) -> list[LabelledPair]:
        """Source ``client``'s pairs."""
        return list(self._slices().values())[client]

    def members(self) -> list[str]:
        """A client is its source of sentences."""
        return [f"stsb {name}" for name in self._slices()]

    def describe(self) -> str:
        """Where the benchmark is."""
        return f"STS Benchmark pairs in {self.path} ({len(self._slices())} sources)"

    def check(self) -> None:
        """Read the files once, so that a bad line is named before a simulation starts."""
        if not self._slices():
            raise AicacheError(f"--data {self.path}: no source has 40 pairs or more")
