"""Where library-recs' simulated clients come from: the synthetic default or Debian's archive.

Each source yields one client's projects, each a list of dependency names
(PyPI names), in order: what :meth:`LibraryRecsTask.load_local` takes.
"""

from __future__ import annotations

import functools
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from aicache.errors import AicacheError
from aicache.tasks.library_recs.population import developer
from aicache.tasks.library_recs.vocabulary import normalise

Project = list[str]


@dataclass(frozen=True, slots=True)
class SyntheticProjects:
    """The embedded default: ``clients`` simulated developers (see :mod:`.population`)."""

    seed: int
    clients: int
    projects: int = 30

    def names(self) -> list[str]:
        """``dev-0000``, ``dev-0001``, ..."""
        return [f"dev-{index:04d}" for index in range(self.clients)]

    def records(self, client: int) -> list[Project]:
        """Developer ``client``'s projects, oldest first."""
        return developer(self.seed, client, self.projects).projects

    def members(self) -> list[str]:
        """A developer is its seed and index."""
        return [f"library seed {self.seed} developer {i}" for i in range(self.clients)]

    def describe(self) -> str:
        """What the population is."""
        return (
            f"synthetic developers' projects (seed {self.seed}, {self.clients} developers, "
            f"{self.projects} projects each)"
        )

    def check(self) -> None:
        """Nothing to check: the population is generated."""


_FIELD = re.compile(r"^([A-Za-z-]+):\s?(.*)$")
_PERSON = re.compile(r"^\s*([^<,]+?)\s*<")
TEAM = re.compile(r"team|maintainers|packaging|group|debian", re.IGNORECASE)
MIN_PROJECTS = 8  # a maintainer with fewer packages makes a client too small to split


def parse_stanzas(text: str) -> list[dict[str, str]]:
    """The stanzas of a Debian ``Packages`` index (continuation lines joined)."""
    stanzas: list[dict[str, str]] = []
    current: dict[str, str] = {}
    last = ""
    for line in text.splitlines():
        if not line.strip():
            if current:
                stanzas.append(current)
            current, last = {}, ""
        elif line[0] in " \t" and last:
            current[last] += " " + line.strip()
        else:
            match = _FIELD.match(line)
            if match:
                last = match.group(1)
                current[last] = match.group(2)
    if current:
        stanzas.append(current)
    return stanzas


def debian_to_pypi(fallback: str) -> dict[str, str]:
    """Debian binary package -> PyPI name, from dh-python's ``cpython3_fallback`` lines."""
    mapping: dict[str, str] = {}
    for line in fallback.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[1].startswith("python3-"):
            mapping.setdefault(parts[1], normalise(parts[0]))
    return mapping


def _maintainer(stanza: dict[str, str]) -> str:
    """Who made the package: its first named uploader when the maintainer is a team."""
    maintainer = stanza.get("Maintainer", "")
    if TEAM.search(maintainer) and stanza.get("Uploaders"):
        maintainer = stanza["Uploaders"].split(",")[0]
    found = _PERSON.match(maintainer)
    return found.group(1) if found else maintainer.strip()


@dataclass(frozen=True, slots=True)
class DebianSource:
    """Debian's Python packages as projects: one client per maintainer, packages in name order.

    ``path`` is a folder holding ``Packages`` (a Debian archive index, e.g. the
    output of ``apt-cache dumpavail``) and ``cpython3_fallback`` (dh-python's
    map from PyPI names to Debian package names). A package's dependencies are
    its ``Depends`` on other Python packages, mapped back to their PyPI names.
    """

    path: str

    @property
    def _clients(self) -> dict[str, list[Project]]:
        return _read_debian(self.path)

    def names(self) -> list[str]:
        """The maintainers' names."""
        return list(self._clients)

    def records(self, client: int) -> list[Project]:
        """Maintainer ``client``'s packages' dependencies, in package-name order."""
        return list(self._clients.values())[client]

    def members(self) -> list[str]:
        """A client is a maintainer of this index."""
        digest = hashlib.sha256(str(self.path).encode()).hexdigest()[:12]
        return [f"debian {digest} maintainer {name}" for name in self._clients]

    def describe(self) -> str:
        """Where the metadata is."""
        return f"Debian Python packages in {self.path} ({len(self._clients)} maintainers)"

    def check(self) -> None:
        """Read the index once, so that a bad folder is named before a simulation starts."""
        if not self._clients:
            raise AicacheError(
                f"--data {self.path}: no maintainer has {MIN_PROJECTS} Python packages or more"
            )


@functools.cache
def _read_debian(path: str) -> dict[str, list[Project]]:
    """Each maintainer's projects in the Debian metadata folder ``path`` (read once)."""
    folder = Path(path)
    packages, fallback = folder / "Packages", folder / "cpython3_fallback"
    if not packages.is_file() or not fallback.is_file():
        raise AicacheError(
            f"--data {path}: not a folder of Debian package metadata",
            hint="Give a folder holding Packages (apt-cache dumpavail) and dh-python's "
            "cpython3_fallback; benchmarks/recommend_eval.py makes one.",
        )
    mapping = debian_to_pypi(fallback.read_text(encoding="utf-8", errors="replace"))
    by_person: dict[str, dict[str, Project]] = {}
    for stanza in parse_stanzas(packages.read_text(encoding="utf-8", errors="replace")):
        package = stanza.get("Package", "")
        if not package.startswith("python3-") or package.endswith(("-dbg", "-doc")):
            continue
        own = mapping.get(package, package.removeprefix("python3-"))
        depends: list[str] = []
        for entry in stanza.get("Depends", "").split(","):
            first = entry.split("|")[0].strip().split(" ")[0].split(":")[0]
            name = mapping.get(first)
            if name and name != own and name not in depends:
                depends.append(name)
        if depends:
            by_person.setdefault(_maintainer(stanza), {})[own] = depends
    return {
        person: [projects[name] for name in sorted(projects)]
        for person, projects in sorted(by_person.items())
        if len(projects) >= MIN_PROJECTS
    }
