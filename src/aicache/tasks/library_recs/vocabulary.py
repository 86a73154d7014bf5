"""The public package vocabulary: the only names the library-recs model knows.

The most downloaded projects of the Python Package Index, most downloaded
first, shipped as ``packages.txt`` and rebuilt from the public ranking by
``scripts/build_package_vocabulary.py`` (source and licence:
docs/library-vocabulary.md). A name outside it (a private package, a rare one)
never enters the model: it is neither trained on nor recommended.
"""

from __future__ import annotations

import functools
import re
from importlib import resources

_SEPARATORS = re.compile(r"[-_.]+")


def normalise(name: str) -> str:
    """A project name in PEP 503 normal form (``Flask_SQLAlchemy`` -> ``flask-sqlalchemy``)."""
    return _SEPARATORS.sub("-", name).lower().strip()


@functools.cache
def vocabulary() -> tuple[str, ...]:
    """The vocabulary's names, most downloaded first."""
    text = (resources.files(__package__) / "packages.txt").read_text(encoding="utf-8")
    return tuple(line.strip() for line in text.splitlines() if line.strip())


@functools.cache
def index() -> dict[str, int]:
    """Each vocabulary name's position (its row in the model)."""
    return {name: position for position, name in enumerate(vocabulary())}


def ids_of(names: list[str] | tuple[str, ...]) -> tuple[list[int], int]:
    """The vocabulary ids of ``names`` (normalised, each once) and how many are outside it."""
    known = index()
    ids: list[int] = []
    unknown = 0
    for name in dict.fromkeys(normalise(n) for n in names if n.strip()):
        position = known.get(name)
        if position is None:
            unknown += 1
        else:
            ids.append(position)
    return ids, unknown
