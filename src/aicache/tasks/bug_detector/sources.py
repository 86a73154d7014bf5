"""Where the bug detector's code comes from: a git project, or installed packages.

A developer's examples are the Python files of the project they work in
(:func:`project_files`: ``git ls-files`` when it is a git work tree, else every
``.py`` file below it). The embedded simulation gives each simulated developer
a real code base: the Python files of one package installed in this
environment, found through :mod:`importlib.metadata` (so it works on any
machine), different packages for different clients, chosen by the seed.
"""

from __future__ import annotations

import functools
import subprocess
from dataclasses import dataclass
from importlib.metadata import distributions
from pathlib import Path

import numpy as np

from aicache.errors import AicacheError

DEFAULT_LINES = 500  # a module or two per developer: many developers, each a fit of a second
MIN_FILES = 4  # a package with fewer Python files is hardly a code base
MIN_BYTES = 20_000  # nor one with less code than that (a few hundred lines): it has no sites
RESERVED = 10
"""Packages of the seeded order no simulated developer gets: the unseen code thresholds
and held-out measures are set on (:class:`HeldOutPackages`)."""
_SKIPPED_PARTS = frozenset({"tests", "test", "testing", "_vendor", "vendor", "migrations"})


@dataclass(frozen=True, slots=True)
class CodeFile:
    """One Python file: its path (relative to its project) and its text."""

    path: str
    text: str


def read_text(path: Path) -> str | None:
    """A file's text, or ``None`` when it cannot be read as UTF-8 (it is skipped)."""
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None


def project_files(root: Path) -> list[Path]:
    """The Python files of the project at ``root``, sorted.

    A git work tree lists its tracked files (``git ls-files``), so that
    virtual environments and build output are left out; any other folder is
    walked, skipping hidden folders.
    """
    if root.is_file():
        return [root]
    try:
        listed = subprocess.run(
            ["git", "-C", str(root), "ls-files", "-z", "--", "*.py"],
            capture_output=True,
            check=True,
            timeout=60,
        ).stdout.decode("utf-8", "replace")
        return sorted(root / name for name in listed.split("\0") if name)
    except (OSError, subprocess.SubprocessError):
        return sorted(
            p
            for p in root.rglob("*.py")
            if not any(part.startswith(".") for part in p.relative_to(root).parts[:-1])
        )


@functools.cache
def installed_code_bases() -> tuple[tuple[str, tuple[Path, ...]], ...]:
    """Every installed distribution with at least :data:`MIN_FILES` Python files, by name.

    Each comes with its Python files (tests and vendored code left out), sorted, and
    holds at least :data:`MIN_BYTES` of them.
    """
    found: dict[str, tuple[Path, ...]] = {}
    for dist in distributions():
        name = (dist.metadata["Name"] or "").lower()
        if not name or name in found or not dist.files:
            continue
        files, size = [], 0
        for entry in dist.files:
            if entry.suffix != ".py" or _SKIPPED_PARTS & set(entry.parts):
                continue
            path = Path(str(dist.locate_file(entry)))
            if path.is_file():
                files.append(path)
                size += path.stat().st_size
        if len(files) >= MIN_FILES and size >= MIN_BYTES:
            found[name] = tuple(sorted(files))
    return tuple(sorted(found.items()))


def _ordered(seed: int) -> tuple[tuple[tuple[str, tuple[Path, ...]], ...], list[int]]:
    """The installed code bases and their seeded order."""
    bases = installed_code_bases()
    if not bases:
        raise AicacheError(
            "no installed Python package has enough Python files to train on",
            hint="Run in an environment with packages installed, or give --data.",
        )
    return bases, [int(i) for i in np.random.default_rng(seed).permutation(len(bases))]


def _pick(
    name: str, files: tuple[Path, ...], rng: np.random.Generator, budget: int
) -> list[CodeFile]:
    """Files of one package in ``rng``'s order, up to about ``budget`` lines.

    Only files that define a function and fit the budget are taken: a data table
    or a file of re-exports holds no slip to learn from, and a developer whose
    code has no site would send the federation an empty update.
    """
    picked: list[CodeFile] = []
    smallest: CodeFile | None = None
    total = 0
    for index in rng.permutation(len(files)):
        path = files[int(index)]
        text = read_text(path)
        if text is None or "def " not in text:
            continue
        lines = text.count("\n") + 1
        if smallest is None or lines < smallest.text.count("\n") + 1:
            smallest = CodeFile(f"{name}/{path.name}", text)
        if total + lines > budget:
            continue
        picked.append(CodeFile(f"{name}/{path.name}", text))
        total += lines
    # Every file of the package is over the budget: its smallest stands in.
    return picked or ([smallest] if smallest is not None else [])


@dataclass(frozen=True, slots=True)
class HeldOutPackages:
    """The :data:`RESERVED` packages no simulated developer of ``seed`` gets, one per client."""

    seed: int
    lines: int = DEFAULT_LINES

    def _bases(self) -> list[tuple[str, tuple[Path, ...]]]:
        bases, order = _ordered(self.seed)
        if len(order) <= 2 * RESERVED:
            raise AicacheError(
                f"only {len(order)} installed packages: too few to hold {RESERVED} out",
                hint="Run where more Python packages are installed.",
            )
        return [bases[i] for i in order[-RESERVED:]]

    def names(self) -> list[str]:
        """The held-out packages' names."""
        return [name for name, _ in self._bases()]

    def records(self, client: int) -> list[CodeFile]:
        """Held-out package ``client``'s files, up to the line budget."""
        name, files = self._bases()[client]
        return _pick(name, files, np.random.default_rng([self.seed, client, 13]), self.lines)


@dataclass(frozen=True, slots=True)
class InstalledPackages:
    """The embedded default: each developer's code is one installed package's files.

    Client ``i`` gets package ``order[i mod P]`` of a seeded permutation of the
    ``P`` packages found (the last :data:`RESERVED` left out), and from it files
    in a seeded order up to ``lines`` lines; past ``P`` clients a package is
    shared, with another file order.
    """

    seed: int
    clients: int
    lines: int = DEFAULT_LINES

    def _assignment(self, client: int) -> tuple[str, tuple[Path, ...]]:
        bases, order = _ordered(self.seed)
        usable = order[:-RESERVED] if len(order) > 2 * RESERVED else order
        return bases[int(usable[client % len(usable)])]

    def names(self) -> list[str]:
        """One name per developer: the package their code comes from."""
        return [f"{self._assignment(c)[0]}#{c}" for c in range(self.clients)]

    def records(self, client: int) -> list[CodeFile]:
        """Developer ``client``'s files, in a seeded order, up to the line budget."""
        name, files = self._assignment(client)
        return _pick(name, files, np.random.default_rng([self.seed, client, 11]), self.lines)

    def members(self) -> list[str]:
        """Who the developers are: a package and the part of it they hold."""
        return [f"package {n}" for n in self.names()]

    def check(self) -> None:
        """Fail early when no package can serve as a code base."""
        self._assignment(0)

    def describe(self) -> str:
        """What the population is."""
        return (
            f"installed Python packages as code bases (seed {self.seed}, {self.clients} "
            f"developers, up to {self.lines} lines each)"
        )


@dataclass(frozen=True, slots=True)
class ProjectFolders:
    """A folder of projects, one developer per sub-folder (``--data DIR --format projects``)."""

    path: str

    def _folders(self) -> list[Path]:
        root = Path(self.path)
        if not root.is_dir():
            raise AicacheError(
                f"--data {self.path}: no such folder",
                hint="Give a folder with one project folder per developer.",
            )
        return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))

    def names(self) -> list[str]:
        """The project folders' names."""
        return [p.name for p in self._folders()]

    def records(self, client: int) -> list[CodeFile]:
        """Every readable Python file of project ``client``."""
        root = self._folders()[client]
        picked = []
        for path in project_files(root):
            text = read_text(path)
            if text is not None:
                picked.append(CodeFile(str(path.relative_to(root)), text))
        return picked

    def members(self) -> list[str]:
        """Who the developers are: their projects' names."""
        return [f"project {n}" for n in self.names()]

    def check(self) -> None:
        """Fail early when the folder holds no project."""
        if not self._folders():
            raise AicacheError(
                f"--data {self.path}: holds no project folder",
                hint="Give a folder with one project folder per developer.",
            )

    def describe(self) -> str:
        """Where the projects are."""
        return f"Python projects in {self.path} ({len(self._folders())} developers)"
