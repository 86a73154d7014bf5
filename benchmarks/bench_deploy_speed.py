"""Where a deployed round's time goes: Flower's process per message against the warm fork.

Usage::

    python benchmarks/bench_deploy_speed.py [--repeats 3] [--rounds 6] [--nodes 3] [--out FILE]

Builds the federation of ``bench_deploy.py`` (a SuperLink with TLS and node
authentication, SuperNodes on their own stores of generated commands) and
runs the next-command task with aicache's tuned polls and evaluation after
the last round only, under two launch paths, interleaved ``--repeats`` times:

- *flwr-clientapp per message* (``AICACHE_NODE_WARM=0``): Flower's SuperExec
  starts a fresh interpreter per message, which imports Flower and aicache;
- *warm fork* (aicache's default): aicache's SuperExec forks each ClientApp
  from a process that imported them once.

Seconds per round are the gaps between successive versions' registration
times (the first round, which also waits for the nodes, is left out). Each
round is split along its slowest node's path, from timestamps taken by
following the SuperNodes' logs (10 ms resolution) while the run goes:

- *server → node*: previous version registered → the node logs the train
  message received (the ServerApp's next round, the node's idle poll, the pull);
- *on the node*: received → reply handed to the SuperNode (SuperExec poll,
  process start, imports, training, the SuperNode's reply check);
- *reply push*: the SuperNode sending the reply over TLS;
- *server*: last reply sent → version registered (ServerApp reply poll,
  aggregation, signing, registration).

The warm path logs each ClientApp child's own run time (Flower's runtime
calls, app load, training); the cold path's process start and import costs
are measured alone (``flwr-clientapp --help``, ``python -X importtime``).
The load average is printed: the machine is shared.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.bench_deploy import TUNED_POLLS, _aicache, clientapp_startup, federation

CONFIGS = {
    "flwr-clientapp per message": {**TUNED_POLLS, "AICACHE_NODE_WARM": "0"},
    "warm fork": {**TUNED_POLLS, "AICACHE_NODE_WARM": "1"},
}
EVENTS = {
    "received": re.compile(r"Receiving: train message"),
    "sending": re.compile(r"Sending: train message"),
    "sent": re.compile(r"Sent successfully"),
    "child": re.compile(r"ClientApp task in pid \d+ ended in ([0-9.]+) s"),
}


class LogFollower:
    """Timestamps of the lines the SuperNodes write, read every 10 ms while a run goes."""

    def __init__(self, logs: dict[str, Path]) -> None:
        self.logs = logs
        self.lines: dict[str, list[tuple[float, str]]] = {name: [] for name in logs}
        self._offsets = {name: path.stat().st_size for name, path in logs.items()}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._follow, daemon=True)

    def _follow(self) -> None:
        while not self._stop.is_set():
            now = time.time()
            for name, path in self.logs.items():
                with path.open("rb") as handle:
                    handle.seek(self._offsets[name])
                    chunk = handle.read()
                cut = chunk.rfind(b"\n") + 1
                self._offsets[name] += cut
                for line in chunk[:cut].decode(errors="replace").splitlines():
                    self.lines[name].append((now, line))
            time.sleep(0.01)

    @contextmanager
    def running(self) -> Iterator[LogFollower]:
        """Follow the logs inside the ``with`` block."""
        self._thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            self._thread.join()

    def events(self, name: str, kind: str) -> list[tuple[float, re.Match[str]]]:
        """When each line of ``kind`` appeared in node ``name``'s log, in order."""
        found = []
        for stamp, line in self.lines[name]:
            match = EVENTS[kind].search(line)
            if match:
                found.append((stamp, match))
        return found


def _after(events: list[tuple[float, Any]], moment: float) -> float | None:
    return next((stamp for stamp, _ in events if stamp >= moment), None)


def breakdown(follower: LogFollower, created: list[float]) -> list[dict[str, float]]:
    """Each round after the first, split along the slowest node's path."""
    rounds = []
    for earlier, later in itertools.pairwise(created):
        paths = []
        for name in follower.logs:
            received = _after(follower.events(name, "received"), earlier)
            sending = _after(follower.events(name, "sending"), earlier)
            sent = _after(follower.events(name, "sent"), sending or later)
            child = next(
                (
                    float(m.group(1))
                    for stamp, m in follower.events(name, "child")
                    if stamp > earlier
                ),
                None,
            )
            if received is None or sending is None or sent is None or sent > later:
                continue
            paths.append((sent, received, sending, child))
        if len(paths) != len(follower.logs):
            continue
        sent, received, sending, child = max(paths)
        row = {
            "round": later - earlier,
            "server to node": received - earlier,
            "on the node": sending - received,
            "reply push": sent - sending,
            "server": later - sent,
        }
        if child is not None:
            row["ClientApp child"] = child
        rounds.append(row)
    return rounds


def aicache_import_seconds(repeats: int = 3) -> float:
    """Median seconds to import aicache's ClientApp module (and all it needs) in a fresh
    interpreter."""
    times = []
    for _ in range(repeats):
        done = subprocess.run(
            [sys.executable, "-X", "importtime", "-c", "import aicache.deploy.client_app"],
            capture_output=True,
            text=True,
            check=True,
        )
        # Top-level entries only (one space before the name): what the statement imported,
        # Flower and numpy included, each counted once.
        total = sum(
            int(parts[1])
            for parts in (line.split("|") for line in done.stderr.splitlines())
            if len(parts) == 3 and parts[2].startswith(" aicache")
        )
        times.append(total / 1e6)
    return statistics.median(times)


def measure(
    base: Path, name: str, settings: dict[str, str], rounds: int, nodes: int
) -> dict[str, Any]:
    """One federation under ``settings``: its rounds and their breakdown."""
    from benchmarks.bench_deploy import NODES

    names = tuple(f"{NODES[i % 3]}{i}" for i in range(nodes))
    work = base / f"{''.join(c if c.isalnum() else '-' for c in name)}-{time.monotonic_ns()}"
    work.mkdir()
    with federation(work, settings, names) as fed:
        logs = {
            n: Path(fed.homes[n]["AICACHE_HOME"]) / "federation" / "supernode.log" for n in names
        }
        follower = LogFollower(logs)
        with follower.running():
            run = ["server", "run", str(fed.root), "--rounds", str(rounds)]
            _aicache(fed.env, *run, "--min-clients", str(nodes), "--evaluate-every", "1000")
        listed = _aicache(
            fed.env, "models", "list", "--json", "--registry", str(fed.root / "registry")
        )
    created = [v["created_at"] for v in json.loads(listed)]
    return {"created": created, "rounds": breakdown(follower, created)}


def main() -> None:
    """Measure both launch paths, interleaved, and print the medians."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--nodes", type=int, default=3)
    parser.add_argument(
        "--launch", choices=[*CONFIGS, "both"], default="both", help="the launch path(s) to measure"
    )
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    configs = CONFIGS if args.launch == "both" else {args.launch: CONFIGS[args.launch]}
    console = Console()
    results: dict[str, Any] = {
        "load_before": os.getloadavg(),
        "clientapp_startup_seconds": clientapp_startup(),
        "aicache_import_seconds": aicache_import_seconds(),
        "nodes": args.nodes,
        "runs": {name: [] for name in configs},
    }
    with tempfile.TemporaryDirectory(prefix="aicache-bench-speed-") as tmp:
        for repeat in range(args.repeats):
            for name, settings in configs.items():
                console.print(f"[{repeat + 1}/{args.repeats}] {name} …")
                results["runs"][name].append(
                    measure(Path(tmp), name, settings, args.rounds, args.nodes)
                )
                if args.out is not None:  # so far, in case the rest does not finish
                    args.out.write_text(json.dumps(results, indent=2))
    results["load_after"] = os.getloadavg()
    columns = ("round", "server to node", "on the node", "reply push", "server", "ClientApp child")
    table = Table("launch path", *(f"{c} s" for c in columns), "rounds")
    for name in configs:
        rows = [row for run in results["runs"][name] for row in run["rounds"]]
        medians = {
            c: statistics.median([r[c] for r in rows if c in r])
            if any(c in r for r in rows)
            else None
            for c in columns
        }
        results[f"median {name}"] = medians
        table.add_row(
            name,
            *("—" if medians[c] is None else f"{medians[c]:.2f}" for c in columns),
            str(len(rows)),
        )
    console.print(table)
    console.print(
        f"flwr-clientapp start-up {results['clientapp_startup_seconds']:.2f} s; aicache ClientApp "
        f"imports {results['aicache_import_seconds']:.2f} s; load average before "
        f"{results['load_before'][0]:.1f}, after {results['load_after'][0]:.1f}"
    )
    if args.out is not None:
        args.out.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
