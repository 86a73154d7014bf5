"""Wall time of a cache hit through ``aicache run``, against running the tool itself.

Every sample is a whole process, interpreter start included, timed from the
parent. The variants run interleaved (one sample of each in turn) so that
machine noise falls on all of them alike.

Usage::

    python benchmarks/bench_hit.py [--runs 50] [--out results.json] [--compare-src DIR]

``--compare-src DIR`` adds a hit served by the ``aicache`` package under
``DIR`` (for example ``src`` of an older checkout), interleaved with the
others, to compare two versions on an equally busy machine.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.progress import Progress
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
FAKE_AI = ROOT / "examples" / "fake-ai"
AICACHE = [sys.executable, "-m", "aicache"]


def _time(argv: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(
        argv,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        check=True,
    )
    return time.perf_counter() - started


def _fill(env: dict[str, str], entries: int) -> None:
    """Put ``entries`` other answers in the store, so the hit is not on an empty table."""
    sys.path.insert(0, str(ROOT / "src"))
    from aicache.local.cache import Event, NewEntry, make_key, record
    from aicache.local.home_key import home_key
    from aicache.local.store import Store

    with Store.open(Path(env["AICACHE_HOME"])) as store:
        secret = home_key(store.path.parent)
        for index in range(entries):
            key = make_key(["fake-ai", f"question {index}"], b"", {"project": "/p"}, secret=secret)
            answer = NewEntry(key, b"answer " * 200, b"", 0, 1.0, None)
            event = Event("fake-ai", key.event_hash, "miss", 1000.0, 1400, 0, True, "fake-ai")
            record(store, event, entry=answer)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=50, help="samples per variant")
    parser.add_argument("--out", type=Path, help="write the results as JSON here")
    parser.add_argument(
        "--compare-src", type=Path, help="also time a hit served by the package under this folder"
    )
    args = parser.parse_args()
    if args.runs < 5:
        parser.error("--runs must be at least 5")

    with tempfile.TemporaryDirectory() as tmp:
        base = {
            **os.environ,
            "FAKE_AI_DELAY": "0.5",
            "AICACHE_HOME": str(Path(tmp) / "empty"),
        }
        filled = {**base, "AICACHE_HOME": str(Path(tmp) / "filled")}
        _fill(filled, 1000)
        question = [str(FAKE_AI), "how do I squash the last three commits"]
        variants = {
            "python -c pass (interpreter start)": ([sys.executable, "-c", "pass"], base),
            "fake AI CLI, 0 s think time": (question, {**base, "FAKE_AI_DELAY": "0"}),
            "fake AI CLI, 0.5 s think time": (question, base),
            "aicache run hit (1 entry)": ([*AICACHE, "run", "--", *question], base),
            "aicache run hit (1,001 entries)": ([*AICACHE, "run", "--", *question], filled),
        }
        homes = [base, filled]
        if args.compare_src:
            other = {
                **base,
                "PYTHONPATH": str(args.compare_src.resolve()),
                "AICACHE_HOME": str(Path(tmp) / "compare"),
            }
            variants[f"aicache run hit (1 entry), {args.compare_src}"] = (
                [*AICACHE, "run", "--", *question],
                other,
            )
            homes.append(other)
        for env in homes:  # the one miss that fills each cache
            subprocess.run(
                [*AICACHE, "run", "--", *question], env=env, capture_output=True, check=True
            )
        samples: dict[str, list[float]] = {name: [] for name in variants}
        with Progress(transient=True) as progress:
            task = progress.add_task("timing", total=args.runs * len(variants))
            for _ in range(args.runs):
                for name, (argv, env) in variants.items():
                    samples[name].append(_time(argv, env))
                    progress.advance(task)

    medians = {name: statistics.median(values) for name, values in samples.items()}
    reference = medians["fake AI CLI, 0.5 s think time"]
    table = Table("variant", "median ms", "p90 ms", "ratio to fake AI (0.5 s)")
    results = []
    for name, values in samples.items():
        p90 = statistics.quantiles(values, n=10)[-1]
        ratio = medians[name] / reference
        table.add_row(name, f"{medians[name] * 1000:.1f}", f"{p90 * 1000:.1f}", f"{ratio:.3f}")
        results.append(
            {
                "variant": name,
                "median_s": medians[name],
                "p90_s": p90,
                "ratio": ratio,
                "runs": args.runs,
            }
        )
    Console().print(table)
    if args.out:
        args.out.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
