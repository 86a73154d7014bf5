"""Utility under central DP at scale: next-command on a synthetic population with sampling.

Usage::

    python benchmarks/bench_dp_utility.py [--clients 1000] [--fraction 0.1] [--rounds 10]
        [--epsilons 1 4 8] [--out FILE]

Each row is a real simulation (Flower's Simulation Engine): the same population,
plan and seed, without DP and then with ``--target-epsilon`` for each ε (the
noise multiplier calibrated by the accountant for the planned rounds, δ =
min(1e-5, 0.1/N), clip C = 1). Top-1 and top-3 are macro averages over every
client's test split of the final global model.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from aicache.federation.environment import QUIET_ENVIRONMENT
from aicache.federation.plan import TrainingPlan
from aicache.federation.strategies import Selection
from aicache.privacy.accounting import Sampling
from aicache.privacy.central import DpPlan, default_delta
from aicache.registry import ModelRegistry
from aicache.simulation.runner import run
from aicache.simulation.sources import PartitionProvider, SyntheticSource
from aicache.tasks.base import get_task


def final_accuracy(outcome_arrays: list[Any], clients: int) -> tuple[float, float]:
    """Macro top-1/top-3 of a model over every client's test split."""
    task = get_task("next-command")
    provider = PartitionProvider(SyntheticSource(0, clients))
    scores = [
        task.evaluate(outcome_arrays, provider.client_data(task, c).test) for c in range(clients)
    ]
    return (
        sum(s["top1"] for s in scores) / clients,
        sum(s["top3"] for s in scores) / clients,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--fraction", type=float, default=0.1)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--epsilons", type=float, nargs="+", default=[1.0, 4.0, 8.0])
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    os.environ.update(QUIET_ENVIRONMENT)
    logging.getLogger("flwr").setLevel(logging.WARNING)
    console = Console()
    selection = Selection(args.fraction, 2, min_available=args.clients)
    size = max(int(args.clients * args.fraction), 2)
    sampling = Sampling("fixed", population=args.clients, size=size)
    delta = default_delta(args.clients)
    configs: list[tuple[str, DpPlan]] = [("no DP", DpPlan())]
    for target in args.epsilons:
        dp = DpPlan.calibrated(
            target_epsilon=target,
            rounds=args.rounds,
            clip=1.0,
            delta=delta,
            accountant="rdp",
            sampling=sampling,
        )
        configs.append((f"ε = {target:g}", dp))
    rows: list[dict[str, Any]] = []
    for label, dp in configs:
        console.print(f"{label}: simulating {args.clients} clients, {args.rounds} rounds ...")
        plan = TrainingPlan(
            task="next-command",
            rounds=args.rounds,
            selection=selection,
            dp=dp,
            final_evaluation=False,
        )
        with tempfile.TemporaryDirectory() as tmp:
            started = time.perf_counter()
            outcome = run(plan, SyntheticSource(0, args.clients), registry_root=Path(tmp) / "r")
            with ModelRegistry(Path(tmp) / "r") as registry:
                final = registry.load(registry.latest("next-command"))  # type: ignore[arg-type]
            seconds = time.perf_counter() - started
        top1, top3 = final_accuracy(final, args.clients)
        rows.append(
            {
                "setting": label,
                "noise_multiplier": dp.noise_multiplier,
                "epsilon": outcome.privacy.get("epsilon"),
                "delta": delta if dp.enabled else None,
                "top1": top1,
                "top3": top3,
                "seconds": seconds,
            }
        )
    table = Table("setting", "z", "ε (accountant)", "δ", "top-1", "top-3", "s")
    for row in rows:
        table.add_row(
            row["setting"],
            f"{row['noise_multiplier']:.3f}",
            "-" if row["epsilon"] is None else f"{row['epsilon']:.3f}",
            "-" if row["delta"] is None else f"{row['delta']:g}",
            f"{row['top1']:.3f}",
            f"{row['top3']:.3f}",
            f"{row['seconds']:.0f}",
        )
    console.print(table)
    if args.out:
        args.out.write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
