"""Soak: a long simulation, with the server's and a node's memory sampled every round.

Usage::

    python benchmarks/bench_soak.py [--rounds 200] [--clients 3] [--out DIR]

Runs ``aicache simulate`` as its own process and, each time the registry gains
a version (one per round), samples the resident memory (RSS) of the server
process and of the Ray worker that runs the ClientApps (the largest one, "a
node"), the server's open file descriptors and how many processes it has
under it. Reports the slope of each over the second half of the run (after
warm-up) by least squares, and after the run ends, which of the processes it
started are still alive. Writes ``soak.json`` and ``soak.png`` to ``--out``.

The deployed soak (SuperLink and SuperNodes on loopback) is
``benchmarks/bench_soak_deployed.py``, which reuses these helpers.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import psutil
from rich.console import Console
from rich.progress import Progress

MIB = 1024 * 1024


def registered_versions(registry: Path) -> int:
    """How many versions ``registry`` holds (0 before it exists, -1 if unreadable now)."""
    path = registry / "registry.db"
    if not path.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=1) as conn:
            count = int(conn.execute("SELECT count(*) FROM versions").fetchone()[0])
        conn.close()
        return count
    except sqlite3.Error:
        return -1  # mid-write or schema not there yet: try again


def _sample(server: psutil.Process, seen: dict[int, float]) -> dict[str, Any] | None:
    try:
        children = server.children(recursive=True)
        for child in children:
            try:
                seen.setdefault(child.pid, child.create_time())
            except psutil.Error:
                continue
        workers = []
        for child in children:
            try:
                if "ClientAppActor" in " ".join(child.cmdline()) or child.name().startswith(
                    "ray::"
                ):
                    workers.append(child.memory_info().rss)
            except psutil.Error:
                continue
        return {
            "server_rss_mib": server.memory_info().rss / MIB,
            "node_rss_mib": max(workers) / MIB if workers else None,
            "server_fds": server.num_fds(),
            "processes": len(children),
        }
    except psutil.Error:
        return None


def alive(pid: int, created: float) -> bool:
    """Whether the process ``pid`` started at ``created`` still runs (pids are reused)."""
    try:
        process = psutil.Process(pid)
        return process.create_time() == created and process.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def slope(rounds: list[int], values: list[float]) -> float:
    """Least-squares change per round over the second half of the samples."""
    half = len(rounds) // 2
    x, y = np.array(rounds[half:], dtype=float), np.array(values[half:], dtype=float)
    return float(np.polyfit(x, y, 1)[0]) if len(x) >= 2 else float("nan")


def plot(samples: list[dict[str, Any]], path: Path) -> None:
    """RSS of the server and of a node against the round."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(7, 3.6))
    rounds = [s["round"] for s in samples]
    axis.plot(rounds, [s["server_rss_mib"] for s in samples], label="server (simulate)")
    nodes = [(s["round"], s["node_rss_mib"]) for s in samples if s["node_rss_mib"] is not None]
    if nodes:
        axis.plot(*zip(*nodes, strict=True), label="a node (Ray worker)")
    axis.set_xlabel("round")
    axis.set_ylabel("RSS (MiB)")
    axis.grid(alpha=0.3)
    axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--clients", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("soak-out"))
    args = parser.parse_args()
    console = Console()
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AICACHE_", "XDG_"))}
        env.update(
            AICACHE_HOME=str(home), FLWR_TELEMETRY_ENABLED="0", FLWR_DISABLE_UPDATE_CHECK="1"
        )
        command = [sys.executable, "-m", "aicache", "simulate", "--clients", str(args.clients)]
        command += ["--rounds", str(args.rounds), "--out", str(Path(tmp) / "report")]
        started = time.monotonic()
        process = subprocess.Popen(
            command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        server = psutil.Process(process.pid)
        seen: dict[int, float] = {}  # pid -> start time (pids are reused)
        samples: list[dict[str, Any]] = []
        last = 0
        with Progress(console=console) as progress:
            bar = progress.add_task("rounds", total=args.rounds)
            while process.poll() is None:
                count = registered_versions(home / "simulations")
                if count > last:
                    sample = _sample(server, seen)
                    if sample is not None:
                        samples.append({"round": count, **sample})
                    progress.update(bar, completed=count)
                    last = count
                time.sleep(0.05)
        _, stderr = process.communicate()
        seconds = time.monotonic() - started
        time.sleep(5)  # let Ray's own shutdown finish before looking for leftovers
        leaked = [pid for pid, created in seen.items() if alive(pid, created)]
    if not samples:
        console.print(f"no round was sampled; exit {process.returncode}: {stderr[-500:]!r}")
        return 1
    rounds = [s["round"] for s in samples]
    result = {
        "rounds": args.rounds,
        "clients": args.clients,
        "exit": process.returncode,
        "seconds": seconds,
        "sampled_rounds": len(samples),
        "server_rss_first_last_mib": [samples[0]["server_rss_mib"], samples[-1]["server_rss_mib"]],
        "server_rss_slope_kib_per_round": slope(rounds, [s["server_rss_mib"] for s in samples])
        * 1024,
        "node_rss_slope_kib_per_round": slope(
            [s["round"] for s in samples if s["node_rss_mib"] is not None],
            [s["node_rss_mib"] for s in samples if s["node_rss_mib"] is not None],
        )
        * 1024,
        "server_fds_first_last": [samples[0]["server_fds"], samples[-1]["server_fds"]],
        "processes_first_last": [samples[0]["processes"], samples[-1]["processes"]],
        "leaked_processes": len(leaked),
        "stderr_tail": stderr.decode(errors="replace")[-300:] if process.returncode else "",
        "samples": samples,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "soak.json").write_text(json.dumps(result, indent=2) + "\n")
    for key, value in result.items():
        if key != "samples":
            console.print(f"{key}: {value}")
    plot(samples, args.out / "soak.png")
    return 0 if process.returncode == 0 and not leaked else 1


if __name__ == "__main__":
    sys.exit(main())
