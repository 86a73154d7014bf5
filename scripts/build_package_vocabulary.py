"""Build the public package vocabulary of the library-recs task from a public download ranking.

The vocabulary is the only set of names the library-recs model knows: the most
downloaded projects of the Python Package Index, best first, in PEP 503
normalised form. Its source is the top-pypi-packages data set (the 15,000 most
downloaded PyPI projects of the last 30 days, computed from PyPI's public
download statistics), read in any of its published forms:

- ``top-pypi-packages-30-days.min.json`` (``{"rows": [{"project": ...}, ...]}``,
  rows in download order);
- its CSV form (``download_count,project``);
- a tab-separated table whose header names a ``name`` column and a
  ``rank_among_15000_most_downloaded`` column (a mirror's package index).

    python scripts/build_package_vocabulary.py top-pypi-packages-30-days.min.json

writes ``src/aicache/tasks/library_recs/packages.txt`` (one name a line, most
downloaded first). See docs/library-vocabulary.md for the source and licence.
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import sys
from pathlib import Path

SIZE = 1500
TARGET = (
    Path(__file__).resolve().parents[1] / "src" / "aicache" / "tasks" / "library_recs"
) / "packages.txt"


def normalise(name: str) -> str:
    """A project name in PEP 503 normal form (``Flask_SQLAlchemy`` -> ``flask-sqlalchemy``)."""
    return re.sub(r"[-_.]+", "-", name).lower().strip()


def ranked_names(path: Path) -> list[str]:
    """Project names of the ranking at ``path``, most downloaded first."""
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".json":
        rows = json.loads(text)["rows"]
        return [normalise(str(row["project"])) for row in rows]
    lines = text.splitlines()
    if lines and "\t" in lines[0]:
        reader = csv.DictReader(lines, delimiter="\t")
        ranked = [
            (int(row["rank_among_15000_most_downloaded"]), normalise(row["name"]))
            for row in reader
            if (row.get("rank_among_15000_most_downloaded") or "").strip()
        ]
        return [name for _, name in sorted(ranked)]
    reader = csv.DictReader(lines)
    ranked_rows = sorted(reader, key=lambda row: -int(row["download_count"]))
    return [normalise(row["project"]) for row in ranked_rows]


def main(argv: list[str] | None = None) -> int:
    """Write the vocabulary from the ranking named on the command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("ranking", type=Path, help="the top-pypi-packages file (JSON, CSV or TSV)")
    parser.add_argument("--size", type=int, default=SIZE, help="how many names to keep")
    parser.add_argument("--out", type=Path, default=TARGET)
    args = parser.parse_args(argv)
    names: list[str] = []
    for name in ranked_names(args.ranking):
        if name and name not in names:
            names.append(name)
        if len(names) == args.size:
            break
    if len(names) < args.size:
        print(f"the ranking holds only {len(names)} names", file=sys.stderr)
        return 1
    args.out.write_text("\n".join(names) + "\n", encoding="utf-8")
    print(f"wrote {args.out} ({len(names)} names)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
