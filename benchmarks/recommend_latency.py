"""Whole-process latency of ``aicache recommend``: start Python, read, score, print.

Each sample is one ``aicache recommend`` process, timed from its start to its
exit (what a shell or an editor waits for), for ``--deps`` and for this
repository's own folder (pyproject.toml and every import of its Python files
read). The machine's load average is printed beside the numbers: on a busy
machine every process starts slower. Usage::

    python benchmarks/recommend_latency.py --runs 20
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def sample(command: list[str], runs: int) -> dict[str, float]:
    """Median, 90th percentile and best of ``runs`` whole-process timings, in milliseconds."""
    env = {**os.environ, "FLWR_TELEMETRY_ENABLED": "0", "FLWR_DISABLE_UPDATE_CHECK": "1"}
    seconds = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True, env=env)
        seconds.append(time.perf_counter() - started)
    ms = np.asarray(seconds) * 1000
    return {
        "median_ms": float(np.median(ms)),
        "p90_ms": float(np.percentile(ms, 90)),
        "best_ms": float(ms.min()),
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Time both forms of the command and print a table (JSON with --out)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    program = shutil.which("aicache") or str(Path(sys.executable).parent / "aicache")
    cases = {
        "recommend --deps fastapi,sqlalchemy": [
            program,
            "recommend",
            "--deps",
            "fastapi,sqlalchemy",
        ],
        "recommend <this repository>": [program, "recommend", str(ROOT)],
        "python -c pass (the floor)": [sys.executable, "-c", "pass"],
    }
    result: dict[str, object] = {"load_average": os.getloadavg(), "cpus": os.cpu_count()}
    for name, command in cases.items():
        sample(command, 2)  # warm the file cache
        result[name] = sample(command, args.runs)
        timing = result[name]
        assert isinstance(timing, dict)
        print(
            f"{name:40s} median {timing['median_ms']:6.0f} ms  p90 {timing['p90_ms']:6.0f} ms  "
            f"best {timing['best_ms']:6.0f} ms"
        )
    print(f"load average {result['load_average']}")
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
