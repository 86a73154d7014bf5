"""What the core install weighs against the full one, and what a cache hit costs in each.

Builds two fresh virtual environments with the same Python, ``pip install .``
(the core) and ``pip install '.[all]'`` (every extra), measures the bytes of
their site-packages, then times a cache hit through each, interleaved (one
sample of each in turn) with the interpreter start and the fake AI CLI, as
``bench_hit.py`` does. The full install is the baseline: before the split,
``pip install aicache`` installed all of it.

Usage::

    python -m benchmarks.bench_install [--python python3.13] [--runs 40] [--out results.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.progress import Progress
from rich.table import Table

from benchmarks.bench_hit import AICACHE, FAKE_AI, ROOT, _time

INSTALLS = {"core": ".", "all": ".[all]"}


def _venv(python: str, where: Path, target: str) -> Path:
    """A fresh venv at ``where`` with ``target`` installed from this checkout; its python."""
    subprocess.run([python, "-m", "venv", str(where)], check=True)
    venv_python = where / "bin" / "python"
    subprocess.run(
        [str(venv_python), "-m", "pip", "install", "--quiet", "--upgrade", "pip"], check=True
    )
    subprocess.run(
        [str(venv_python), "-m", "pip", "install", "--quiet", target], cwd=ROOT, check=True
    )
    return venv_python


def _site_packages(venv_python: Path) -> Path:
    found = subprocess.run(
        [str(venv_python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    )
    return Path(found.stdout.strip())


def _bytes(folder: Path) -> int:
    """Bytes of the files under ``folder`` (``du --apparent-size``; links not followed)."""
    return sum(p.lstat().st_size for p in folder.rglob("*") if p.is_file() and not p.is_symlink())


def _distributions(venv_python: Path) -> int:
    listed = subprocess.run(
        [str(venv_python), "-m", "pip", "list", "--format", "json"],
        capture_output=True,
        text=True,
        check=True,
    )
    return len(json.loads(listed.stdout))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--python", default=sys.executable, help="the interpreter of both venvs")
    parser.add_argument("--runs", type=int, default=40, help="hit samples per variant")
    parser.add_argument("--out", type=Path, help="write the results as JSON here")
    args = parser.parse_args()
    if args.runs < 5:
        parser.error("--runs must be at least 5")

    console = Console()
    with tempfile.TemporaryDirectory() as tmp:
        pythons: dict[str, Path] = {}
        sizes: dict[str, dict[str, int]] = {}
        for name, target in INSTALLS.items():
            console.print(escape(f"installing {target} into a fresh venv ({args.python})"))
            pythons[name] = _venv(args.python, Path(tmp) / name, target)
            site = _site_packages(pythons[name])
            sizes[name] = {"bytes": _bytes(site), "distributions": _distributions(pythons[name])}

        base = {**os.environ, "FAKE_AI_DELAY": "0.5"}
        base.pop("PYTHONPATH", None)
        question = [str(FAKE_AI), "how do I squash the last three commits"]
        variants: dict[str, tuple[list[str], dict[str, str]]] = {
            "python -c pass (interpreter start)": ([str(pythons["core"]), "-c", "pass"], base),
            "fake AI CLI, 0.5 s think time": (question, base),
        }
        for name, venv_python in pythons.items():
            env = {**base, "AICACHE_HOME": str(Path(tmp) / f"home-{name}")}
            argv = [str(venv_python), *AICACHE[1:], "run", "--", *question]
            subprocess.run(argv, env=env, capture_output=True, check=True)  # the filling miss
            variants[f"aicache run hit, {name} install"] = (argv, env)
        samples: dict[str, list[float]] = {name: [] for name in variants}
        with Progress(transient=True) as progress:
            task = progress.add_task("timing", total=args.runs * len(variants))
            for _ in range(args.runs):
                for name, (argv, env) in variants.items():
                    samples[name].append(_time(argv, env))
                    progress.advance(task)

    sizes_table = Table("install", "site-packages MB", "distributions", "ratio to all")
    for name, size in sizes.items():
        ratio = size["bytes"] / sizes["all"]["bytes"]
        sizes_table.add_row(
            escape(INSTALLS[name]),
            f"{size['bytes'] / 1e6:.1f}",
            str(size["distributions"]),
            f"{ratio:.3f}",
        )
    medians = {name: statistics.median(values) for name, values in samples.items()}
    baseline = medians["aicache run hit, all install"]
    hits = Table("variant", "median ms", "p90 ms", "ratio to the hit in the full install")
    timings = []
    for name, values in samples.items():
        p90 = statistics.quantiles(values, n=10)[-1]
        ratio = medians[name] / baseline
        hits.add_row(name, f"{medians[name] * 1000:.1f}", f"{p90 * 1000:.1f}", f"{ratio:.3f}")
        timings.append({"variant": name, "median_s": medians[name], "p90_s": p90, "ratio": ratio})
    console.print(sizes_table)
    console.print(hits)
    if args.out:
        results = {"python": args.python, "runs": args.runs, "sizes": sizes, "hits": timings}
        args.out.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
