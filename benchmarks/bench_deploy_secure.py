"""Per-round time of a deployed federation on loopback: plain, SecAgg+ and CKKS, 3 and 10 nodes.

Usage::

    python -m benchmarks.bench_deploy_secure [--nodes 3 10] [--rounds 3] [--out FILE]

For each node count, one command builds a real federation in a temporary
directory (a SuperLink with TLS and node authentication, that many
SuperNodes, each on its own store of generated commands; the federation
helper of ``bench_deploy.py``), makes CKKS keys with ``aicache server
key-authority`` and installs them (``server he-key``; each node rejoins with
``--he-key``), then trains the next-command task through ``aicache server
run`` three times: ``--secure off``, ``--secure secagg`` and ``--secure he``,
with aicache's default polls and the evaluation after the last round only.

Seconds per round are the gaps between successive versions' registration
times within one run (the first round, which also waits for the nodes, is
left out). Every node and the server share the machine's cores.
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from benchmarks.bench_deploy import TUNED_POLLS, Federation, _aicache, federation

MODES = ("off", "secagg", "he")
NAMES = ("alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy")


def _with_keys(fed: Federation, work: Path) -> None:
    """The key authority's keys on both sides: the public one in DIR, the secret on nodes."""
    keys = work / "key-authority"
    _aicache(fed.env, "server", "key-authority", str(keys))
    _aicache(fed.env, "server", "he-key", str(keys / "server.ckks"), "--dir", str(fed.root))
    for name, env in fed.homes.items():
        subprocess.run([sys.executable, "-m", "aicache", "leave"], env=env, capture_output=True)
        bundle = work / f"{name}.bundle"
        secret = str(keys / "clients.ckks")
        _aicache(env, "join", str(bundle), "--detach", "--he-key", secret)


def measure(fed: Federation, mode: str, nodes: int, rounds: int) -> dict[str, Any]:
    """One run under ``--secure mode``: seconds per round and for the whole run."""
    started_at = time.time()
    started = time.perf_counter()
    run = ["server", "run", str(fed.root), "--rounds", str(rounds), "--min-clients", str(nodes)]
    _aicache(fed.env, *run, "--secure", mode, "--evaluate-every", "1000")
    total = time.perf_counter() - started
    registry = str(fed.root / "registry")
    listed = json.loads(_aicache(fed.env, "models", "list", "--json", "--registry", registry))
    created = [v["created_at"] for v in listed if v["created_at"] >= started_at]
    gaps = [later - earlier for earlier, later in itertools.pairwise(created)]
    return {
        "mode": mode,
        "nodes": nodes,
        "rounds": rounds,
        "run_seconds": total,
        "round_seconds": gaps,
        "round_seconds_median": statistics.median(gaps) if gaps else None,
        "num_clients": [v["num_clients"] for v in listed if v["created_at"] >= started_at],
    }


def main() -> None:
    """Measure every mode at every node count and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--nodes", type=int, nargs="+", default=[3, 10])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    console = Console()
    results: list[dict[str, Any]] = []
    for count in args.nodes:
        with tempfile.TemporaryDirectory(prefix="aicache-bench-secure-") as tmp:
            work = Path(tmp)
            console.print(f"{count} nodes: starting the federation")
            with federation(work, TUNED_POLLS, NAMES[:count]) as fed:
                _with_keys(fed, work)
                for mode in MODES:
                    console.print(f"{count} nodes: --secure {mode}, {args.rounds} rounds")
                    results.append(measure(fed, mode, count, args.rounds))
                    if args.out is not None:  # each result as soon as it is measured
                        args.out.write_text(json.dumps(results, indent=2))
    table = Table("nodes", "--secure", "s/round (median)", "whole run s", "nodes a round")
    for row in results:
        median = row["round_seconds_median"]
        table.add_row(
            str(row["nodes"]),
            row["mode"],
            "-" if median is None else f"{median:.2f}",
            f"{row['run_seconds']:.1f}",
            ",".join(str(n) for n in row["num_clients"]),
        )
    console.print(table)


if __name__ == "__main__":
    main()
