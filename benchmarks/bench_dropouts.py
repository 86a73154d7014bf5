"""Dropouts mid-round: does a round complete with the survivors' exact aggregate, or stop loudly?

Usage::

    python benchmarks/bench_dropouts.py [--clients 10] [--rates 0.1 0.3 0.5] [--out FILE]

Each row is one real simulation (Flower's Simulation Engine, Ray) of one
round in which a share of the sampled clients vanishes mid-round:

- plain: the clients train, then fail before they reply
  (``Adversary(count, "vanish")``);
- SecAgg+: the clients share their keys, then fail the masked-vector stage
  (``Dropout(count)``); the server must rebuild their masks from the
  survivors' shares, which works while at least the reconstruction threshold
  (60 % of the shares by default) survives.

The registered model is compared with the FedAvg of the survivors computed
here by hand from the same seeds: plain must match to float rounding (1e-9), SecAgg+
within its quantisation bound. A run that cannot aggregate must stop with a
clear error and register nothing.
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

import numpy as np
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from aicache.errors import AicacheError
from aicache.federation.client_app import client_seed, fit_config
from aicache.federation.environment import QUIET_ENVIRONMENT
from aicache.federation.plan import TrainingPlan
from aicache.federation.strategies import Selection
from aicache.privacy.secure import SecAggSettings
from aicache.registry import ModelRegistry
from aicache.simulation.adversary import Adversary, Dropout
from aicache.simulation.runner import run
from aicache.simulation.sources import PartitionProvider, SyntheticSource
from aicache.tasks.base import get_task

TASK = "next-command"


def survivors_mean(clients: int, survivors: list[int]) -> tuple[list[np.ndarray], float]:
    """Round 1 of FedAvg over ``survivors`` computed by hand, and SecAgg+'s error bound.

    The bound is two quantisation steps per survivor, in weighted units, over
    the survivors' total weight relative to the largest client's (the weight
    bound a simulation gives SecAgg+).
    """
    task = get_task(TASK)
    plan = TrainingPlan(task=TASK, rounds=1)
    config = plan.train_config()
    config["server-round"] = 1
    provider = PartitionProvider(SyntheticSource(0, clients))
    initial = task.init_params(plan.seed)
    models, weights = [], []
    for client in survivors:
        result = task.fit(
            initial,
            provider.client_data(task, client).train,
            fit_config(config, seed=client_seed(config, client)),
        )
        models.append(result.params)
        weights.append(result.num_examples)
    mean = [
        np.average(np.stack(layer), axis=0, weights=weights) for layer in zip(*models, strict=True)
    ]
    max_weight = max(task.num_examples(provider.client_data(task, c).train) for c in range(clients))
    step = 2 * SecAggSettings().clipping_range / 2**22
    return mean, 2 * len(survivors) * step / (sum(weights) / max_weight)


def one_round(mode: str, clients: int, vanished: int) -> dict[str, Any]:
    """One simulated round with ``vanished`` of ``clients`` dropping out mid-round."""
    plan = TrainingPlan(
        task=TASK,
        rounds=1,
        selection=Selection(1.0, 2, min_available=clients),
        secure="secagg" if mode == "SecAgg+" else "off",
        final_evaluation=False,
    )
    extra: dict[str, Any] = (
        {"dropout": Dropout(vanished)}
        if mode == "SecAgg+"
        else {"adversary": Adversary(vanished, "vanish")}
    )
    with tempfile.TemporaryDirectory() as tmp:
        registry_root = Path(tmp) / "registry"
        started = time.perf_counter()
        try:
            run(plan, SyntheticSource(0, clients), registry_root=registry_root, **extra)
            outcome, message = "completed", ""
        except AicacheError as exc:
            outcome, message = "stopped", exc.message
        seconds = time.perf_counter() - started
        with ModelRegistry(registry_root) as registry:
            versions = registry.versions(TASK)
            model = registry.load(versions[0]) if versions else None
    row: dict[str, Any] = {
        "mode": mode,
        "vanished": vanished,
        "clients": clients,
        "outcome": outcome,
        "message": message,
        "versions": len(versions),
        "seconds": seconds,
        "error": None,
        "bound": None,
    }
    if model is not None:
        expected, bound = survivors_mean(clients, list(range(vanished, clients)))
        row["error"] = max(float(np.abs(a - b).max()) for a, b in zip(model, expected, strict=True))
        row["bound"] = bound if mode == "SecAgg+" else 1e-9  # float rounding
    return row


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=10)
    parser.add_argument("--rates", type=float, nargs="+", default=[0.1, 0.3, 0.5])
    parser.add_argument(
        "--modes", nargs="+", choices=["plain", "SecAgg+"], default=["plain", "SecAgg+"]
    )
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    os.environ.update(QUIET_ENVIRONMENT)
    logging.getLogger("flwr").setLevel(logging.WARNING)
    console = Console(width=150)
    cases = [(mode, rate) for mode in args.modes for rate in args.rates]
    rows = []
    with Progress(console=console) as progress:
        bar = progress.add_task("simulations", total=len(cases))
        for mode, rate in cases:
            vanished = round(rate * args.clients)
            progress.update(bar, description=f"{mode}, {vanished} of {args.clients} vanish")
            rows.append(one_round(mode, args.clients, vanished))
            progress.advance(bar)
            if args.out:  # after every case: a campaign cut short keeps what it did
                args.out.write_text(json.dumps(rows, indent=2) + "\n")
    table = Table("mode", "vanished", "outcome", "versions", "max |error|", "allowed", "s")
    for row in rows:
        table.add_row(
            row["mode"],
            f"{row['vanished']} of {row['clients']}",
            row["outcome"] + (f": {row['message'][:60]}" if row["message"] else ""),
            str(row["versions"]),
            "-" if row["error"] is None else f"{row['error']:.2e}",
            "-" if row["bound"] is None else f"{row['bound']:.2e}",
            f"{row['seconds']:.0f}",
        )
    console.print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
