"""Round latency of a deployed federation on loopback: Flower's polling as is, then tuned.

Usage::

    python benchmarks/bench_deploy.py [--rounds 5] [--out FILE]

One command builds a real federation in a temporary directory (a SuperLink
with TLS and node authentication, three SuperNodes, each on its own store of
600 generated commands) and runs the next-command task twice through
``aicache server run``:

- *Flower's defaults*: the SuperNode's idle poll 3 s, the SuperExec's task
  poll 1 s, the ServerApp's reply poll 3 s;
- *tuned* (aicache's defaults): 0.2 s, 0.1 s and 0.1 s.

and a third time tuned with the evaluation exchange only after the last round
(``--evaluate-every``), which halves the messages of the other rounds.

Seconds per round are the gaps between successive versions' registration
times (the first round, which also waits for the nodes, is left out), so the
two configurations are compared on the same machine in the same command. A
round is two message exchanges (train, then evaluate), each of which starts a
fresh ``flwr-clientapp`` process on every node; the floor that sets is
measured too (the start-up of ``flwr-clientapp --help``).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import Progress
from rich.table import Table

NODES = ("alice", "bob", "carol")
DEFAULT_POLLS = {
    "AICACHE_NODE_POLL": "3",
    "FLWR_SUPEREXEC_TASK_POLL_INTERVAL": "1.0",
    "AICACHE_SERVER_POLL": "3",
}
TUNED_POLLS = {
    "AICACHE_NODE_POLL": "0.2",
    "FLWR_SUPEREXEC_TASK_POLL_INTERVAL": "0.1",
    "AICACHE_SERVER_POLL": "0.1",
}
# name: (environment, extra `server run` flags)
CONFIGS: dict[str, tuple[dict[str, str], list[str]]] = {
    "flower defaults": (DEFAULT_POLLS, []),
    "tuned": (TUNED_POLLS, []),
    "tuned, evaluating after the last round only": (TUNED_POLLS, ["--evaluate-every", "1000"]),
}


def _aicache(env: dict[str, str], *args: str, timeout: float = 900) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "aicache", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"aicache {' '.join(args)} failed: {done.stdout}{done.stderr}")
    return done.stdout


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def clientapp_startup(repeats: int = 3) -> float:
    """Median seconds to start ``flwr-clientapp`` (Flower starts one per message)."""
    binary = str(Path(sys.executable).parent / "flwr-clientapp")
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        subprocess.run([binary, "--help"], capture_output=True, check=False)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


@dataclass(frozen=True)
class Federation:
    """A running federation on loopback: its server directory and each node's environment."""

    root: Path
    env: dict[str, str]
    homes: dict[str, dict[str, str]]


@contextmanager
def federation(
    work: Path, settings: dict[str, str], nodes: Sequence[str] = NODES
) -> Iterator[Federation]:
    """Start a SuperLink (TLS, node authentication) and one joined SuperNode per node.

    Each node imports its own store of generated commands first. Leaving the
    ``with`` block, even on an error or Ctrl-C, makes every node leave and
    stops the SuperLink, so nothing it started stays alive.
    """
    from aicache.simulation.sources import SyntheticSource

    env = {k: v for k, v in os.environ.items() if not k.startswith(("AICACHE_", "XDG_"))}
    env.update(settings, HOME=str(work), AICACHE_HOME=str(work / "operator"))
    env.update(FLWR_TELEMETRY_ENABLED="0", FLWR_DISABLE_UPDATE_CHECK="1")
    root = work / "fed"
    _aicache(env, "server", "init", str(root), "--host", "127.0.0.1", "--port", str(_free_port()))
    homes: dict[str, dict[str, str]] = {}
    try:
        _aicache(env, "server", "start", str(root), "--detach")
        for index, node in enumerate(nodes):
            bundle = work / f"{node}.bundle"
            _aicache(env, "server", "enroll", node, "--dir", str(root), "-o", str(bundle))
            history = work / f"{node}.history"
            items = SyntheticSource(seed=7, clients=len(nodes)).history(index)
            history.write_text("".join(f"{item.command}\n" for item in items))
            homes[node] = {**env, "AICACHE_HOME": str(work / f"home-{node}")}
            _aicache(homes[node], "import", "history", str(history), "--shell", "bash")
            _aicache(homes[node], "join", str(bundle), "--detach")
        yield Federation(root, env, homes)
    finally:
        for node_env in homes.values():
            subprocess.run(
                [sys.executable, "-m", "aicache", "leave"], env=node_env, capture_output=True
            )
        subprocess.run(
            [sys.executable, "-m", "aicache", "server", "stop", str(root)],
            env=env,
            capture_output=True,
        )


def measure(
    base: Path, name: str, settings: dict[str, str], flags: list[str], rounds: int
) -> dict[str, Any]:
    """One federation under ``settings``: seconds per round and for the whole run."""
    work = base / "".join(c if c.isalnum() else "-" for c in name)
    work.mkdir()
    with federation(work, settings) as fed:
        started = time.perf_counter()
        run = ["server", "run", str(fed.root), "--rounds", str(rounds), "--min-clients", "3"]
        _aicache(fed.env, *run, *flags)
        total = time.perf_counter() - started
        registry = str(fed.root / "registry")
        listed = _aicache(fed.env, "models", "list", "--json", "--registry", registry)
    versions = json.loads(listed)
    created = [v["created_at"] for v in versions]
    gaps = [later - earlier for earlier, later in itertools.pairwise(created)]
    return {
        "settings": settings,
        "flags": flags,
        "rounds": rounds,
        "run_seconds": total,
        "round_seconds_median": statistics.median(gaps),
        "round_seconds": gaps,
        "evaluated_rounds": [v["round"] for v in versions if "eval.top1" in v["metrics"]],
    }


def main() -> None:
    """Measure both configurations and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    console = Console()
    results: dict[str, Any] = {"clientapp_startup_seconds": clientapp_startup()}
    with (
        tempfile.TemporaryDirectory(prefix="aicache-bench-deploy-") as tmp,
        Progress(console=console) as progress,
    ):
        bar = progress.add_task("deployed rounds", total=len(CONFIGS))
        for name, (settings, flags) in CONFIGS.items():
            progress.update(bar, description=f"{name}: {args.rounds} rounds, 3 nodes")
            results[name] = measure(Path(tmp), name, settings, flags, args.rounds)
            progress.advance(bar)
    base = results["flower defaults"]["round_seconds_median"]
    table = Table("configuration", "s/round (median)", "ratio", "whole run s")
    for name in CONFIGS:
        row = results[name]
        table.add_row(
            name,
            f"{row['round_seconds_median']:.2f}",
            f"{row['round_seconds_median'] / base:.2f}",
            f"{row['run_seconds']:.1f}",
        )
    console.print(table)
    console.print(f"flwr-clientapp start-up: {results['clientapp_startup_seconds']:.2f} s")
    if args.out is not None:
        args.out.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
