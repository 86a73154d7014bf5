"""Deployed soak: a real SuperLink and SuperNodes on loopback, memory sampled every round.

Usage::

    python -m benchmarks.bench_soak_deployed [--rounds 50] [--nodes 3] [--out DIR]

Builds the federation of ``benchmarks/bench_deploy.py`` (a SuperLink with TLS
and node authentication, SuperNodes joined with their bundles, all through
aicache's own commands) and runs ``aicache server run --rounds N`` against it.
Each time the registry gains a version (one per round) it samples the
resident memory (RSS) of the SuperLink's whole process tree (the SuperLink,
its SuperExec and the ServerApp it runs) and of one node's whole tree (the
SuperNode, its SuperExec and any ClientApp alive at that moment), with their
open file descriptors and process counts. Slopes are least-squares fits over
the second half of the rounds (after warm-up), as in ``bench_soak.py``.

File descriptors and processes are counted once before the run and once
after it, with the federation idle both times, so a leak shows as a
difference. After every node has left and the SuperLink is stopped, every
process seen in any tree (and the ``server run`` command's) must be gone.
Whatever happens, Ctrl-C included, the federation is stopped on the way out.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from aicache.deploy.processes import Supervised, end_tree
from aicache.local.paths import federation_dir
from benchmarks.bench_deploy import NODES, federation
from benchmarks.bench_soak import MIB, alive, registered_versions, slope

# A ClientApp lives a second or more: polling this often sees each one.
POLL_SECONDS = 0.2
# Flower starts one per message and ends it after the reply: whether one is
# alive when a round is sampled is chance, so a node's RSS is also given without.
TRANSIENT = frozenset({"flwr-clientapp"})
# Enough for the nodes' SuperExecs to finish the last round's ClientApps.
SETTLE_SECONDS = 5.0


def tree_sample(supervised: Supervised, seen: dict[int, float]) -> dict[str, Any] | None:
    """RSS (MiB), open file descriptors and processes (count, names) of a supervised tree.

    Every member's pid and start time goes into ``seen`` for the leak check.
    ``None`` when the process is not running.
    """
    root = supervised.process()
    if root is None:
        return None
    try:
        members = [root, *root.children(recursive=True)]
    except psutil.Error:
        return None
    rss = lasting = fds = 0
    names: list[str] = []
    for member in members:
        try:
            with member.oneshot():
                seen.setdefault(member.pid, member.create_time())
                name = program(member.cmdline()) or member.name()
                size = member.memory_info().rss
                fds += member.num_fds()
        except psutil.Error:
            continue  # a ClientApp that ended while we looked
        names.append(name)
        rss += size
        lasting += 0 if name in TRANSIENT else size
    return {
        "rss_mib": rss / MIB,
        "lasting_rss_mib": lasting / MIB,
        "fds": fds,
        "processes": len(names),
        "names": sorted(names),
    }


def program(argv: list[str]) -> str:
    """What a Python process runs: its module (``-m``) or script name."""
    if argv and Path(argv[0]).name.startswith("python"):
        argv = argv[1:]
    if len(argv) >= 2 and argv[0] == "-m":
        return argv[1]
    return Path(argv[0]).name if argv else ""


def _remember(process: psutil.Process, seen: dict[int, float]) -> None:
    try:
        for child in process.children(recursive=True):
            seen.setdefault(child.pid, child.create_time())
    except psutil.Error:
        return  # it, or a child, ended while we looked: the next pass sees the rest


def sample(server: Supervised, node: Supervised, seen: dict[int, float]) -> dict[str, Any]:
    """One sample of the server's and the node's trees (``None`` fields if not running)."""
    return {"server": tree_sample(server, seen), "node": tree_sample(node, seen)}


def soak(work: Path, rounds: int, nodes: int, console: Console) -> dict[str, Any]:
    """Run the federation for ``rounds`` rounds and return the samples and the leak check."""
    seen: dict[int, float] = {}
    samples: list[dict[str, Any]] = []
    log = work / "server-run.log"
    with federation(work, {}, NODES[:nodes]) as fed:
        server = Supervised(fed.root / "superlink.pid")
        supernodes = [
            Supervised(federation_dir(Path(home["AICACHE_HOME"])) / "supernode.pid")
            for home in fed.homes.values()
        ]
        node = supernodes[0]  # the one whose memory is reported
        before = sample(server, node, seen)
        command = [sys.executable, "-m", "aicache", "server", "run", str(fed.root)]
        command += ["--rounds", str(rounds), "--min-clients", str(nodes)]
        started = time.monotonic()
        with log.open("wb") as output:
            run = subprocess.Popen(command, env=fed.env, stdout=output, stderr=subprocess.STDOUT)
        try:
            runner = psutil.Process(run.pid)
            seen[run.pid] = runner.create_time()
            last = 0
            with Progress(console=console) as progress:
                bar = progress.add_task(f"deployed rounds, {nodes} nodes", total=rounds)
                while run.poll() is None:
                    # Every tree counts for the leak check, ClientApps included.
                    _remember(runner, seen)
                    for supervised in (server, *supernodes):
                        root = supervised.process()
                        if root is not None:
                            _remember(root, seen)
                    count = registered_versions(fed.root / "registry")
                    if count > last:
                        samples.append(
                            {"round": count, "at": time.monotonic() - started}
                            | sample(server, node, seen)
                        )
                        progress.update(bar, completed=count)
                        last = count
                    time.sleep(POLL_SECONDS)
        finally:
            if run.poll() is None:  # interrupted: end the run before the federation
                end_tree(psutil.Process(run.pid))
            run.wait()
        seconds = time.monotonic() - started
        time.sleep(SETTLE_SECONDS)
        after = sample(server, node, seen)
    time.sleep(SETTLE_SECONDS)  # leave/stop return once the roots end; let the rest go too
    leftovers = sorted(pid for pid, created in seen.items() if alive(pid, created))
    tail = log.read_text(errors="replace")[-400:] if run.returncode else ""
    return {
        "rounds": rounds,
        "nodes": nodes,
        "exit": run.returncode,
        "run_tail": tail,
        "seconds": seconds,
        "before": before,
        "after": after,
        "processes_seen": len(seen),
        "leftovers": leftovers,
        "samples": samples,
    }


def summarise(result: dict[str, Any]) -> dict[str, Any]:
    """The figures of the table: seconds per round, RSS first/last/slope, fds, processes."""
    samples = [s for s in result["samples"] if s["server"] and s["node"]]
    rounds = [s["round"] for s in samples]
    # The first round also waits for the nodes: left out, as in bench_deploy.py.
    per_round = (
        (samples[-1]["at"] - samples[0]["at"]) / (rounds[-1] - rounds[0])
        if len(samples) >= 2 and rounds[-1] > rounds[0]
        else None
    )
    summary: dict[str, Any] = {
        "rounds": result["rounds"],
        "nodes": result["nodes"],
        "exit": result["exit"],
        "sampled_rounds": len(samples),
        "seconds": round(result["seconds"], 1),
        "seconds_per_round_after_first": round(per_round, 2) if per_round else None,
    }
    for side in ("server", "node"):
        for kind, key in (("rss", "rss_mib"), ("lasting_rss", "lasting_rss_mib")):
            values = [s[side][key] for s in samples]
            summary[f"{side}_{kind}_first_last_mib"] = (
                [round(values[0], 1), round(values[-1], 1)] if values else None
            )
            summary[f"{side}_{kind}_slope_kib_per_round"] = (
                round(slope(rounds, values) * 1024, 1) if len(values) >= 4 else None
            )
        for when in ("before", "after"):
            tree = result[when][side]
            summary[f"{side}_fds_{when}"] = tree["fds"] if tree else None
            summary[f"{side}_processes_{when}"] = tree["processes"] if tree else None
            summary[f"{side}_process_names_{when}"] = tree["names"] if tree else None
    summary["processes_seen"] = result["processes_seen"]
    summary["leftovers_after_shutdown"] = len(result["leftovers"])
    return summary


def table(summary: dict[str, Any]) -> Table:
    """The summary as a Rich table, one row per side."""
    view = Table("tree", "RSS 1st MiB", "RSS last MiB", "KiB/round", "fds before/after")
    view.add_column("procs before/after")
    rows = (
        ("server", "rss", "SuperLink tree"),
        ("node", "rss", "a SuperNode tree"),
        ("node", "lasting_rss", "same, without ClientApps"),
    )
    for side, kind, label in rows:
        first_last = summary[f"{side}_{kind}_first_last_mib"] or ["–", "–"]
        counts = kind == "rss"  # fds and processes are of the whole tree
        view.add_row(
            label,
            str(first_last[0]),
            str(first_last[1]),
            str(summary[f"{side}_{kind}_slope_kib_per_round"]),
            f"{summary[f'{side}_fds_before']} / {summary[f'{side}_fds_after']}" if counts else "",
            f"{summary[f'{side}_processes_before']} / {summary[f'{side}_processes_after']}"
            if counts
            else "",
        )
    return view


def main() -> int:
    """Run the soak, print the table, write ``soak-deployed.json``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=50)
    parser.add_argument("--nodes", type=int, default=3, choices=range(2, len(NODES) + 1))
    parser.add_argument("--out", type=Path, default=Path("soak-out"))
    args = parser.parse_args()
    console = Console()
    with tempfile.TemporaryDirectory(prefix="aicache-soak-deployed-") as tmp:
        result = soak(Path(tmp), args.rounds, args.nodes, console)
    args.out.mkdir(parents=True, exist_ok=True)
    # The samples first: a long run is not lost to a mistake in the summary.
    (args.out / "soak-deployed.json").write_text(json.dumps(result, indent=2) + "\n")
    summary = summarise(result)
    (args.out / "soak-deployed.json").write_text(
        json.dumps({"summary": summary, **result}, indent=2) + "\n"
    )
    console.print(table(summary))
    for key, value in summary.items():
        console.print(f"{key}: {value}")
    if result["run_tail"]:
        console.print(f"server run failed: {result['run_tail']}")
    return 0 if result["exit"] == 0 and not result["leftovers"] else 1


if __name__ == "__main__":
    sys.exit(main())
