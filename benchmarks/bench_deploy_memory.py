"""What a small client pays: a node's memory in a training round, `aicache run`'s, idle CPU.

Usage::

    python benchmarks/bench_deploy_memory.py [--repeats 3] [--idle 30] [--out FILE]

- **A node's training round, per task.** One real SuperNode joined to a
  real SuperLink (TLS, node authentication) on loopback, its store filled
  for every task that exists (600 generated commands for next-command,
  150 semantic-hit verdicts, and the cache events of those commands for
  cache-keep). For each task, ``aicache server run --task T --rounds 2``;
  meanwhile the SuperNode's whole process tree (SuperNode, SuperExec, the
  ClientApp process of each message) is sampled every 20 ms: the peak of
  the summed RSS, and of the summed PSS (shared pages split between the
  processes sharing them: the warm SuperExec and its forked children share
  most of theirs, so summed RSS counts them twice). Repeated ``--repeats``
  times per task; medians.
- **`aicache run`**, a miss (the fake AI CLI answers) then a hit: the
  process's own peak RSS (``VmHWM`` read as it exits; the AI CLI it starts
  on a miss is not counted).
- **Idle CPU.** The node's tree (SuperNode and SuperExec) with nothing to
  do for ``--idle`` seconds: CPU seconds used per second, with aicache's
  polls (before any message, and right after the rounds, while it still
  polls fast) and with Flower's launch path and polls.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
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

import psutil
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.bench_deploy import DEFAULT_POLLS, TUNED_POLLS, _aicache, federation

ROOT = Path(__file__).resolve().parents[1]
FAKE_AI = ROOT / "examples" / "fake-ai"
TASKS = ("next-command", "semantic-hit", "cache-keep")
MIB = 1024 * 1024


def fill_store(home: Path) -> None:
    """Give the node's store examples for the tasks that do not read the history."""
    from aicache.local.cache import Event, record
    from aicache.local.semantic_store import SemanticCandidate, record_hit
    from aicache.local.store import Store
    from aicache.simulation.sources import SyntheticSource
    from aicache.tasks.semantic_hit.sources import SyntheticPairs

    commands = [item.command for item in SyntheticSource(seed=7, clients=1).history(0)]
    seen: set[str] = set()
    with Store.open(home) as store:
        for line in commands:
            outcome = "hit" if line in seen else "miss"
            seen.add(line)
            key = hashlib.sha256(line.encode()).hexdigest()[:32]
            program = line.split()[0] if line.split() else "sh"
            record(store, Event(program, key, outcome, 800.0, 1200, 0, True, program, saved_s=0.8))
        for index, pair in enumerate(SyntheticPairs(seed=7, clients=1).records(0)):
            cached = SemanticCandidate(key=f"k{index}", prompt=pair.cached, vector=b"")
            record_hit(
                store, tool="claude", frame="f", query_prompt=pair.query, cached=cached, score=0.9
            )


class TreeSampler:
    """Peak summed RSS (every 20 ms) and PSS (every 100 ms) of a process and its descendants."""

    def __init__(self, root: psutil.Process) -> None:
        self.root = root
        self.peak_rss = 0
        self.peak_pss = 0
        self.most_processes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        tick = 0
        while not self._stop.is_set():
            try:
                tree = [self.root, *self.root.children(recursive=True)]
            except psutil.Error:
                break
            rss = pss = 0
            for member in tree:
                try:
                    if tick % 5 == 0:
                        full = member.memory_full_info()
                        rss += full.rss
                        pss += full.pss
                    else:
                        rss += member.memory_info().rss
                except psutil.Error:
                    continue
            self.peak_rss = max(self.peak_rss, rss)
            self.peak_pss = max(self.peak_pss, pss)
            self.most_processes = max(self.most_processes, len(tree))
            tick += 1
            time.sleep(0.02)

    @contextmanager
    def running(self) -> Iterator[TreeSampler]:
        """Sample inside the ``with`` block."""
        self._thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            self._thread.join()


def _supernode(home: Path) -> psutil.Process:
    record = json.loads((home / "federation" / "supernode.pid").read_text())
    return psutil.Process(int(record["pid"]))


def idle_cpu(node: psutil.Process, seconds: float) -> float:
    """CPU seconds per second the node's tree used over ``seconds`` with nothing to do."""

    def used() -> float:
        total = 0.0
        for member in [node, *node.children(recursive=True)]:
            times = member.cpu_times()
            total += times.user + times.system
        return total

    time.sleep(15)  # let start-up (the SuperExec's imports) settle
    before, started = used(), time.monotonic()
    time.sleep(seconds)
    return (used() - before) / (time.monotonic() - started)


def node_rounds(work: Path, repeats: int, idle: float) -> dict[str, Any]:
    """Peak memory of each task's round on one node, and the node's idle CPU."""
    found: dict[str, Any] = {task: [] for task in TASKS}
    with federation(work, TUNED_POLLS, ("alice",)) as fed:
        home = Path(fed.homes["alice"]["AICACHE_HOME"])
        fill_store(home)
        node = _supernode(home)
        found["idle_cpu_tuned"] = idle_cpu(node, idle)
        for _ in range(repeats):
            for task in TASKS:
                sampler = TreeSampler(node)
                with sampler.running():
                    run = ["server", "run", str(fed.root), "--task", task, "--rounds", "2"]
                    _aicache(fed.env, *run, "--min-clients", "1", "--evaluate-every", "1000")
                found[task].append(
                    {
                        "peak_rss_mib": sampler.peak_rss / MIB,
                        "peak_pss_mib": sampler.peak_pss / MIB,
                        "processes": sampler.most_processes,
                    }
                )
        found["idle_cpu_after_rounds"] = idle_cpu(node, idle)
    return found


def flower_polls_idle(work: Path, idle: float) -> float:
    """The idle node's CPU with Flower's own launch path and polls (SuperNode 3 s, SuperExec
    1 s)."""
    with federation(work, {**DEFAULT_POLLS, "AICACHE_NODE_WARM": "0"}, ("bob",)) as fed:
        return idle_cpu(_supernode(Path(fed.homes["bob"]["AICACHE_HOME"])), idle)


# Runs `aicache` in this interpreter and, at its exit, writes the process's high-water RSS
# (VmHWM: since exec, unlike wait4's ru_maxrss, which keeps the forking parent's size).
_HIGH_WATER = """
import atexit, os, runpy, sys
def _note():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            open(os.environ["HWM_FILE"], "w").write(line.split()[1])
atexit.register(_note)
sys.argv = ["aicache", *sys.argv[1:]]
runpy.run_module("aicache", run_name="__main__")
"""


def _peak_rss_of(args: list[str], env: dict[str, str], note: Path) -> float:
    """Peak RSS in MiB of ``aicache ARGS`` itself (not the AI CLI it may start)."""
    subprocess.run(
        [sys.executable, "-c", _HIGH_WATER, *args],
        env={**env, "HWM_FILE": str(note)},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        check=True,
    )
    return int(note.read_text()) / 1024  # KiB


def run_memory(base: Path, repeats: int) -> dict[str, list[float]]:
    """Peak RSS of `aicache run` on a miss and on the hit that follows, ``repeats`` homes."""
    found: dict[str, list[float]] = {"miss": [], "hit": []}
    question = [str(FAKE_AI), "how do I squash the last three commits"]
    note = base / "high-water"
    for index in range(repeats):
        env = {**os.environ, "FAKE_AI_DELAY": "0", "AICACHE_HOME": str(base / f"run-{index}")}
        found["miss"].append(_peak_rss_of(["run", "--", *question], env, note))
        found["hit"].append(_peak_rss_of(["run", "--", *question], env, note))
    return found


def main() -> None:
    """Measure and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--idle", type=float, default=30.0)
    parser.add_argument("--idle-only", action="store_true", help="measure the idle CPU only")
    parser.add_argument("--run-only", action="store_true", help="measure `aicache run` only")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    console = Console()
    results: dict[str, Any] = {"load_before": os.getloadavg()}
    with tempfile.TemporaryDirectory(prefix="aicache-bench-memory-") as tmp:
        (Path(tmp) / "node").mkdir()
        (Path(tmp) / "flower").mkdir()
        if not args.idle_only:
            results["run"] = run_memory(Path(tmp), args.repeats)
        if args.run_only:
            console.print(json.dumps(results["run"]))
            return
        results["node"] = node_rounds(
            Path(tmp) / "node", 0 if args.idle_only else args.repeats, args.idle
        )
        results["idle_cpu_flower_polls"] = flower_polls_idle(Path(tmp) / "flower", args.idle)
    results["load_after"] = os.getloadavg()
    if args.out is not None:
        args.out.write_text(json.dumps(results, indent=2))
    if args.idle_only:
        console.print(json.dumps({k: v for k, v in results.items() if "idle" in k or k == "node"}))
        return
    table = Table("what", "peak RSS MiB (median)", "peak PSS MiB (median)", "processes")
    for task in TASKS:
        rows = results["node"][task]
        table.add_row(
            f"node round, {task}",
            f"{statistics.median(r['peak_rss_mib'] for r in rows):.0f}",
            f"{statistics.median(r['peak_pss_mib'] for r in rows):.0f}",
            str(max(r["processes"] for r in rows)),
        )
    for name, values in results["run"].items():
        table.add_row(f"aicache run, {name}", f"{statistics.median(values):.0f}", "—", "1")
    console.print(table)
    node = results["node"]
    console.print(
        f"idle node CPU: {100 * node['idle_cpu_tuned']:.2f} % of a core with aicache's polls "
        f"({100 * node['idle_cpu_after_rounds']:.2f} % within 30 s of a message), "
        f"{100 * results['idle_cpu_flower_polls']:.2f} % with Flower's; load average before "
        f"{results['load_before'][0]:.1f}, after {results['load_after'][0]:.1f}"
    )
    if args.out is not None:
        args.out.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
