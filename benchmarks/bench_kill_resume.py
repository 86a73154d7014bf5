"""SIGKILL a simulation at random moments, then ``--resume``: nothing lost, doubled, or unaccounted.

Usage::

    python benchmarks/bench_kill_resume.py [--kills 10] [--rounds 6] [--seed 0] [--out FILE]

First one uninterrupted run (``aicache simulate`` with central DP) gives the
reference: its versions' rounds and its privacy-ledger row. Then, for each
trial, the same run starts in a fresh home and its whole process group
(Ray's workers included) is SIGKILLed:

- odd trials at a random moment within the first 70 % of the reference
  run's duration;
- even trials the moment the registry's write-ahead log grows past the
  ``k``-th round's write (polled every millisecond): during or right after a
  registry write.

``aicache simulate --resume`` must then exit 0, the versions' rounds must be
exactly 1..R once each in one run, and the ledger row (rounds, ε, δ, the
spend) must equal the reference's. A kill before the run was recorded leaves
nothing to resume; that trial starts afresh and says so. A run that ended
before its kill moment has nothing to resume either (``--resume`` exits 2).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import Progress
from rich.table import Table

TASK = "next-command"


def _environment(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AICACHE_", "XDG_"))}
    env.update(AICACHE_HOME=str(home), FLWR_TELEMETRY_ENABLED="0", FLWR_DISABLE_UPDATE_CHECK="1")
    return env


def _command(flags: list[str], out: Path) -> list[str]:
    return [sys.executable, "-m", "aicache", "simulate", *flags, "--out", str(out)]


def _state(home: Path) -> dict[str, Any]:
    """The registry's versions (round, run) and ledger rows, read without aicache."""
    path = home / "simulations" / "registry.db"
    if not path.exists():
        return {"rounds": [], "runs": 0, "ledger": []}
    try:
        with sqlite3.connect(path) as conn:
            versions = conn.execute(
                "SELECT round, run_id FROM versions WHERE task = ? ORDER BY version", (TASK,)
            ).fetchall()
            ledger = conn.execute(
                "SELECT rounds, epsilon, delta, spend FROM privacy_ledger WHERE task = ?", (TASK,)
            ).fetchall()
        conn.close()
    except sqlite3.OperationalError:  # created, but its tables not yet
        return {"rounds": [], "runs": 0, "ledger": []}
    return {
        "rounds": [row[0] for row in versions],
        "runs": len({row[1] for row in versions}),
        "ledger": [list(row) for row in ledger],
    }


def _wal_size(home: Path) -> int:
    wal = home / "simulations" / "registry.db-wal"
    try:
        return wal.stat().st_size
    except FileNotFoundError:
        return 0


def _kill(process: subprocess.Popen[bytes]) -> None:
    os.killpg(process.pid, signal.SIGKILL)
    process.communicate(timeout=60)


def trial(
    index: int, flags: list[str], reference: dict[str, Any], duration: float, rng: random.Random
) -> dict[str, Any]:
    """One kill and resume; what the registry held after each."""
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        env = _environment(home)
        process = subprocess.Popen(
            _command(flags, Path(tmp) / "report"),
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        started = time.monotonic()
        rounds = len(reference["rounds"])
        if index % 2:  # a random moment
            delay = rng.uniform(0.0, 0.7 * duration)  # load varies: leave the run time to end
            moment = f"at {delay:.1f} s"
            while process.poll() is None and time.monotonic() - started < delay:
                time.sleep(0.01)
        else:  # the moment the log grows past the k-th round's write
            known = rng.randint(0, rounds - 1)
            moment = f"registry write after round {known}"
            while process.poll() is None and len(_state(home)["rounds"]) < known:
                time.sleep(0.05)
            size = _wal_size(home)
            while process.poll() is None and _wal_size(home) == size:
                time.sleep(0.001)
        finished_first = process.poll() is not None
        if finished_first:
            process.communicate(timeout=60)
        else:
            _kill(process)
        killed = _state(home)
        resume = subprocess.run(
            _command(["--resume", *flags], Path(tmp) / "report"),
            env=env,
            capture_output=True,
            check=False,
            timeout=1800,
        )
        fresh = False
        nothing_recorded = not killed["rounds"] and not finished_first
        if resume.returncode == 2 and b"no interrupted run" in resume.stderr and nothing_recorded:
            fresh = True  # killed before the run was recorded: start it again
            resume = subprocess.run(
                _command(flags, Path(tmp) / "report"),
                env=env,
                capture_output=True,
                check=False,
                timeout=1800,
            )
        after = _state(home)
    return {
        "trial": index,
        "moment": moment + (" (the run had already ended)" if finished_first else ""),
        "rounds_at_kill": len(killed["rounds"]),
        "ledger_rounds_at_kill": killed["ledger"][0][0] if killed["ledger"] else 0,
        "resume_exit": resume.returncode,
        "fresh_start": fresh,
        "rounds_after": after["rounds"],
        "runs_after": after["runs"],
        "versions_ok": after["rounds"] == reference["rounds"] and after["runs"] == 1,
        "ledger_ok": after["ledger"] == reference["ledger"],
        "ledger_after": after["ledger"],
        "stderr": resume.stderr.decode(errors="replace")[-400:] if resume.returncode else "",
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    console = Console()
    flags = (
        f"--clients 3 --rounds {args.rounds} --dp central --noise-multiplier 1.0 --clip 1.0"
    ).split()
    rng = random.Random(args.seed)
    with Progress(console=console) as progress:
        bar = progress.add_task("uninterrupted reference run", total=args.kills + 1)
        with tempfile.TemporaryDirectory() as tmp:
            home = Path(tmp) / "home"
            started = time.monotonic()
            done = subprocess.run(
                _command(flags, Path(tmp) / "report"),
                env=_environment(home),
                capture_output=True,
                check=False,
                timeout=1800,
            )
            duration = time.monotonic() - started
            if done.returncode != 0:
                console.print(done.stderr.decode(errors="replace")[-2000:])
                return 1
            reference = _state(home)
        progress.advance(bar)
        rows = []
        for index in range(1, args.kills + 1):
            progress.update(bar, description=f"kill {index} of {args.kills}, then --resume")
            rows.append(trial(index, flags, reference, duration, rng))
            progress.advance(bar)
            if args.out:  # after every trial: a long campaign cut short keeps what it did
                document = {"reference": reference, "duration": duration, "trials": rows}
                args.out.write_text(json.dumps(document, indent=2) + "\n")
    table = Table("trial", "killed", "versions at kill", "ledger rounds", "resume", "versions ok")
    table.add_column("ledger = reference")
    for row in rows:
        table.add_row(
            str(row["trial"]),
            row["moment"],
            str(row["rounds_at_kill"]),
            str(row["ledger_rounds_at_kill"]),
            f"exit {row['resume_exit']}" + (" (fresh start)" if row["fresh_start"] else ""),
            "yes" if row["versions_ok"] else f"NO {row['rounds_after']}",
            "yes" if row["ledger_ok"] else f"NO {row['ledger_after']}",
        )
    console.print(table)
    console.print(
        f"reference: {len(reference['rounds'])} versions, ledger {reference['ledger']}, "
        f"{duration:.0f} s; resumed cleanly: "
        f"{sum(r['resume_exit'] == 0 and r['versions_ok'] and r['ledger_ok'] for r in rows)} "
        f"of {len(rows)}"
    )
    for row in rows:
        if row["stderr"]:
            console.print(f"trial {row['trial']}: {row['stderr']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
