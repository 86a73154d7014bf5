"""The canary exposure table: federated training with a canary in one client's history.

Usage::

    python benchmarks/canary_exposure.py [--clients 20] [--rounds 5] [--epsilon 8] [--out FILE]

Real simulations (Flower's Simulation Engine) over the synthetic population,
client 0's history carrying a random 5-command canary 20 times: without DP and
with central DP calibrated to ``--epsilon`` for the planned rounds (a
``--fraction`` of the clients each round). The attacker holds the final global
model and a history of their own, and ranks the canary among 1,000 random
sequences; a never-inserted canary is the baseline.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from aicache.features.history_items import HistoryItem
from aicache.federation.environment import QUIET_ENVIRONMENT
from aicache.federation.plan import TrainingPlan
from aicache.federation.strategies import Selection
from aicache.privacy.accounting import Sampling
from aicache.privacy.central import DpPlan, default_delta
from aicache.registry import ModelRegistry
from aicache.simulation.canary import exposure, plant, random_sequence
from aicache.simulation.population import developer
from aicache.simulation.runner import run
from aicache.simulation.sources import SyntheticSource

TASK = "next-command"
CANARY = random_sequence(np.random.default_rng(2019))
NEVER = random_sequence(np.random.default_rng(7))


@dataclass(frozen=True, slots=True)
class PlantedSource(SyntheticSource):
    """The synthetic population with the canary planted in client 0's history."""

    def history(self, client: int) -> list[HistoryItem]:
        history = super(PlantedSource, self).history(client)
        return plant(history, CANARY, task=TASK, times=20, seed=client) if client == 0 else history


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--fraction", type=float, default=0.5)
    parser.add_argument("--epsilon", type=float, default=8.0)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    os.environ.update(QUIET_ENVIRONMENT)
    logging.getLogger("flwr").setLevel(logging.WARNING)
    size = max(int(args.clients * args.fraction), 2)
    dp = DpPlan.calibrated(
        target_epsilon=args.epsilon,
        rounds=args.rounds,
        clip=1.0,
        delta=default_delta(args.clients),
        accountant="rdp",
        sampling=Sampling("fixed", population=args.clients, size=size),
    )
    attacker = developer(1, 12345, 200).history
    rows: list[dict[str, Any]] = []
    for label, plan_dp in (("no DP", DpPlan()), (f"central DP, ε = {args.epsilon:g}", dp)):
        plan = TrainingPlan(
            task=TASK,
            rounds=args.rounds,
            selection=Selection(args.fraction, 2, min_available=args.clients),
            dp=plan_dp,
            final_evaluation=False,
        )
        with tempfile.TemporaryDirectory() as tmp:
            outcome = run(plan, PlantedSource(0, args.clients), registry_root=Path(tmp) / "r")
            with ModelRegistry(Path(tmp) / "r") as registry:
                latest = registry.latest(TASK)
                assert latest is not None
                params = registry.load(latest)
        rows.append(
            {
                "setting": label,
                "epsilon": outcome.privacy.get("epsilon"),
                "canary_exposure": exposure(params, CANARY, attacker, task=TASK, candidates=1000),
                "never_inserted_exposure": exposure(
                    params, NEVER, attacker, task=TASK, candidates=1000
                ),
            }
        )
    table = Table("setting", "ε", "canary exposure (bits)", "never-inserted (bits)")
    for row in rows:
        eps = "-" if row["epsilon"] is None else f"{row['epsilon']:.2f}"
        table.add_row(
            str(row["setting"]),
            eps,
            f"{row['canary_exposure']:.2f}",
            f"{row['never_inserted_exposure']:.2f}",
        )
    Console().print(table)
    if args.out:
        args.out.write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
