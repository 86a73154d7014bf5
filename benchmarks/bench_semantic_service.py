"""What the semantic lookup adds to a miss, through the warm service and in the process.

Every sample is a whole ``aicache run`` process, interpreter start included,
timed from the parent; the variants run interleaved so that machine noise
falls on all of them alike, and every ratio is against a variant of the same
run. The store holds ``--entries`` cached prompts of one frame, filled as
``benchmarks/bench_semantic.py`` fills it (``fake-ai ask ...`` with the
``semantic-commands`` setting, real all-MiniLM-L6-v2 vectors), so each lookup
compares the question with all of them; the question is a near miss
(``svn`` for ``git``), so the decision judges a shortlist every time. The
misses pass ``--no-store`` so that every sample stays a miss. Besides wall time,
each variant's CPU time is summed: the process's own (``getrusage`` of the
child) plus what the service used meanwhile (``/proc``), which a loaded
machine does not inflate the way it inflates wall time.

Variants: a miss with ``--exact`` (no lookup: the baseline), a miss with the
lookup through the warm service (started and warmed before sampling), the same
miss with ``AICACHE_SEMANTIC_SERVICE=off`` (the model loaded in the process),
an exact hit, and, with ``--baseline-src``, an exact hit of the package before
semantic hits. Then a few first misses that find no service and start it.

Usage::

    git archive main src | tar -x -C /tmp/before
    python -m benchmarks.bench_semantic_service [--runs 30] [--entries 10000] \\
        [--baseline-src /tmp/before/src] [--out results.json]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.bench_semantic import (
    AICACHE,
    FAKE_AI,
    NEAR,
    ROOT,
    STORED,
    _fill,
    _register_decision,
)

TICK_S = 1.0 / os.sysconf("SC_CLK_TCK")


def _time(argv: list[str], env: dict[str, str]) -> tuple[float, float, bytes]:
    """Wall time, CPU time (user + system) of the process, and its stderr."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(
        argv, env=env, stdin=subprocess.DEVNULL, capture_output=True, check=True, cwd=env["CWD"]
    )
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    return wall, cpu, done.stderr


def _service_cpu(home: Path) -> float:
    """CPU seconds the home's semantic service has used so far (0 when none runs)."""
    try:
        pid = int((home / "semantic.pid").read_text())
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, ValueError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) * TICK_S


WARM = "miss, lookup through the warm service"
IN_PROCESS = "miss, lookup in the process (AICACHE_SEMANTIC_SERVICE=off)"
EXACT_MISS = "miss, --exact (no lookup)"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30, help="samples per variant")
    parser.add_argument("--entries", type=int, default=10_000, help="cached prompts")
    parser.add_argument("--cold", type=int, default=5, help="first misses that start the service")
    parser.add_argument("--baseline-src", type=Path, help="the package before semantic hits")
    parser.add_argument("--out", type=Path, help="write the results as JSON here")
    args = parser.parse_args()
    if args.runs < 5:
        parser.error("--runs must be at least 5")
    sys.path.insert(0, str(ROOT / "src"))
    from aicache.local.semantic_client import stop

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp) / "work"
        work.mkdir()
        home = Path(tmp) / "home"
        env = {
            **os.environ,
            "AICACHE_HOME": str(home),
            "FAKE_AI_DELAY": "0",
            "PATH": f"{FAKE_AI.parent}{os.pathsep}{os.environ.get('PATH', '')}",
            "CWD": str(work),
        }
        env.pop("AICACHE_SEMANTIC_SERVICE", None)
        started = time.perf_counter()
        _fill(env, args.entries)
        model = _register_decision(home)
        print(f"filled {args.entries} entries in {time.perf_counter() - started:.0f} s; {model}")
        stored = ["fake-ai", "ask", *STORED.split()]
        near = ["fake-ai", "ask", *NEAR.split()]
        miss = [*AICACHE, "run", "--no-store", "--", *near]
        variants: dict[str, tuple[list[str], dict[str, str]]] = {
            "python -c pass (interpreter start)": ([sys.executable, "-c", "pass"], env),
            EXACT_MISS: ([*AICACHE, "run", "--no-store", "--exact", "--", *near], env),
            WARM: (miss, env),
            IN_PROCESS: (miss, {**env, "AICACHE_SEMANTIC_SERVICE": "off"}),
            "exact hit, after": ([*AICACHE, "run", "--", *stored], env),
        }
        if args.baseline_src:
            before = {**env, "PYTHONPATH": str(args.baseline_src.resolve())}
            before["AICACHE_HOME"] = str(Path(tmp) / "before")
            subprocess.run(
                [*AICACHE, "run", "--", *stored], env=before, capture_output=True, check=True,
                cwd=work,
            )  # fmt: skip
            variants["exact hit, before"] = ([*AICACHE, "run", "--", *stored], before)
        try:
            _time(miss, env)  # starts the service and loads the decision: later misses are warm
            samples: dict[str, list[float]] = {name: [] for name in variants}
            cpu: dict[str, float] = dict.fromkeys(variants, 0.0)
            warnings: dict[str, str] = {}
            for _ in range(args.runs):
                for name, (argv, variant_env) in variants.items():
                    service_before = _service_cpu(home)
                    elapsed, used, stderr = _time(argv, variant_env)
                    samples[name].append(elapsed)
                    # The process's own CPU, plus what the service spent answering it.
                    cpu[name] += used + _service_cpu(home) - service_before
                    said = [line for line in stderr.decode().splitlines() if "warning" in line]
                    if said:  # a lookup that failed would not be a lookup measured
                        warnings.setdefault(name, said[0])
            cold: list[float] = []
            for _ in range(args.cold):
                stop(home)
                cold.append(_time(miss, env)[0])
        finally:
            stop(home)

    medians = {name: statistics.median(values) * 1000 for name, values in samples.items()}
    base = medians[EXACT_MISS]
    results: dict[str, object] = {
        "entries": args.entries,
        "runs": args.runs,
        "decision": model,
        "warnings": warnings,
        "median_ms": medians,
        "p90_ms": {n: statistics.quantiles(v, n=10)[-1] * 1000 for n, v in samples.items()},
        "added_ms_warm_service": medians[WARM] - base,
        "added_ms_in_process": medians[IN_PROCESS] - base,
        "ratio_warm_to_exact_miss": medians[WARM] / base,
        "ratio_in_process_to_exact_miss": medians[IN_PROCESS] / base,
        "first_miss_starting_the_service_median_ms": statistics.median(cold) * 1000,
        "cpu_ms_per_call_with_the_service_share": {n: c / args.runs * 1000 for n, c in cpu.items()},
        "added_cpu_ms_warm_service": (cpu[WARM] - cpu[EXACT_MISS]) / args.runs * 1000,
        "added_cpu_ms_in_process": (cpu[IN_PROCESS] - cpu[EXACT_MISS]) / args.runs * 1000,
    }
    if "exact hit, before" in medians:
        results["exact_hit_ratio_after_to_before"] = (
            medians["exact hit, after"] / medians["exact hit, before"]
        )
    print(json.dumps(results, indent=2))
    if args.out:
        args.out.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
