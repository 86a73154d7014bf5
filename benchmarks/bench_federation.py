"""Cost of the federated engine: seconds per round at 10, 100 and 1,000 simulated
clients, and the server's aggregation against a plain numpy weighted mean.

Usage::

    python benchmarks/bench_federation.py [--clients 10 100 1000] [--rounds 3] [--out FILE]

Rounds run the real ServerApp and ClientApp under Flower's Simulation Engine
(next-command task, synthetic population, FedAvg, no final report arms). The
aggregation part times, in this process, the server's validated FedAvg on N
replies against ``np.average`` of the very same arrays with the same weights.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from flwr.app import ArrayRecord, ConfigRecord, Message, MetricRecord, RecordDict
from flwr.serverapp.strategy import FedAvg
from flwr.supercore.task_identity import TaskIdentity
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from aicache.federation.environment import QUIET_ENVIRONMENT
from aicache.federation.plan import TrainingPlan
from aicache.federation.strategies import Selection
from aicache.federation.validation import ValidatedStrategy
from aicache.simulation.runner import run
from aicache.simulation.sources import SyntheticSource
from aicache.tasks.base import get_task


def round_seconds(clients: int, rounds: int, fraction: float) -> dict[str, float]:
    """Median seconds per round (the first round, which starts Ray's actors, apart)."""
    plan = TrainingPlan(
        task="next-command",
        rounds=rounds,
        selection=Selection(fraction, 2, min_available=clients),
        final_evaluation=False,
    )
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        outcome = run(plan, SyntheticSource(0, clients), registry_root=Path(tmp) / "registry")
        total = time.perf_counter() - started
    seconds = [r.seconds for r in outcome.rounds]
    return {
        "clients": clients,
        "fraction": fraction,
        "first_round_s": seconds[0],
        "later_rounds_median_s": statistics.median(seconds[1:]) if len(seconds) > 1 else seconds[0],
        "whole_command_s": total,
    }


def aggregation(clients: int, params: list[np.ndarray], repeats: int) -> dict[str, float]:
    """The validated FedAvg on ``clients`` replies against a numpy weighted mean, in seconds."""
    rng = np.random.default_rng(0)
    models = [[p + rng.normal(0, 0.01, p.shape) for p in params] for _ in range(clients)]
    weights = rng.integers(100, 1000, clients).astype(float)
    TaskIdentity.task_id, TaskIdentity.run_id, TaskIdentity.node_id = 1, 1, 1
    replies = [
        Message(
            RecordDict(
                {
                    "arrays": ArrayRecord(model),
                    "metrics": MetricRecord({"num-examples": float(w)}),
                    "meta": ConfigRecord({"task": "next-command"}),
                }
            ),
            dst_node_id=0,
            message_type="train",
        )
        for model, w in zip(models, weights, strict=True)
    ]
    strategy = ValidatedStrategy(FedAvg(), task="next-command", max_update_norm=100.0)
    strategy._reference = [p.astype(np.float64) for p in params]
    flower, plain = [], []
    for _ in range(repeats):
        started = time.perf_counter()
        arrays, _ = strategy.aggregate_train(1, replies)
        flower.append(time.perf_counter() - started)
        started = time.perf_counter()
        mean = [
            np.average(np.stack([m[i] for m in models]), axis=0, weights=weights)
            for i in range(len(params))
        ]
        plain.append(time.perf_counter() - started)
    assert arrays is not None
    assert all(np.allclose(a, b) for a, b in zip(arrays.to_numpy_ndarrays(), mean, strict=True))
    return {
        "clients": clients,
        "parameters": int(sum(p.size for p in params)),
        "server_s": statistics.median(flower),
        "numpy_s": statistics.median(plain),
        "ratio": statistics.median(flower) / statistics.median(plain),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, nargs="+", default=[10, 100, 1000])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    os.environ.update(QUIET_ENVIRONMENT)  # no telemetry from anything this process starts
    logging.getLogger("flwr").setLevel(logging.WARNING)
    console = Console()
    task_params = get_task("next-command").init_params(0)
    big = [np.zeros(10_000), np.zeros((100, 1000))]
    results: dict[str, list[dict[str, float]]] = {"rounds": [], "aggregation": []}
    with Progress(console=console, transient=True) as progress:
        bar = progress.add_task("aggregation", total=len(args.clients) * 2)
        for clients in args.clients:
            for params in (task_params, big):
                results["aggregation"].append(aggregation(clients, params, repeats=5))
                progress.advance(bar)
    for clients in args.clients:
        fraction = 1.0 if clients <= 100 else 0.1
        console.print(f"simulating {clients} clients (fraction {fraction}) ...")
        results["rounds"].append(round_seconds(clients, args.rounds, fraction))

    table = Table("clients", "fraction", "first round s", "later rounds s (median)", "command s")
    for row in results["rounds"]:
        table.add_row(
            str(row["clients"]),
            f"{row['fraction']:g}",
            f"{row['first_round_s']:.2f}",
            f"{row['later_rounds_median_s']:.2f}",
            f"{row['whole_command_s']:.1f}",
        )
    console.print(table)
    table = Table("clients", "parameters", "server aggregate ms", "numpy mean ms", "ratio")
    for row in results["aggregation"]:
        table.add_row(
            str(row["clients"]),
            str(row["parameters"]),
            f"{row['server_s'] * 1000:.1f}",
            f"{row['numpy_s'] * 1000:.1f}",
            f"{row['ratio']:.2f}",
        )
    console.print(table)
    if args.out:
        args.out.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
