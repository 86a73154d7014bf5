"""SecAgg+ against plain aggregation at about 10k and 1M parameters, 10 and 100 clients.

Usage::

    python benchmarks/bench_secagg_size.py [--rounds 3] [--sizes 10000,1000000]
        [--clients 10,100] [--out FILE]

The next-command model has 916 parameters, so this benchmark sends a plain
vector of P float32 parameters instead: each simulated client returns the
global vector plus a small random update (no training), and the server
averages them with Flower's FedAvg, either directly or behind aicache's
SecAgg+ workflow (``loud_workflow``, as ``--secure secagg`` uses it, with
``secaggplus_mod`` on the clients). Both run in Flower's Simulation Engine in
this process; seconds per round are the gaps between successive aggregations
(the first round, which also starts Ray, is left out), and the ratio is
SecAgg+ over plain for the same P and N.

Key shares: every client shares with every other at 10 clients (``1.0``); at
100 clients each client shares with 11 others, 7 of whom can rebuild its
mask (SecAgg+'s sparse graph), the setting a population that size would use.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np
from flwr.app import Context
from flwr.client import ClientApp, NumPyClient
from flwr.client.mod import secaggplus_mod
from flwr.common import NDArrays, Parameters, Scalar, ndarrays_to_parameters
from flwr.server import Grid, LegacyContext, ServerApp, ServerConfig
from flwr.server.client_proxy import ClientProxy
from flwr.server.strategy import FedAvg
from flwr.server.workflow import DefaultWorkflow
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from aicache.federation.environment import QUIET_ENVIRONMENT
from aicache.federation.secure_aggregation import loud_workflow
from aicache.privacy.secure import SecAggSettings
from aicache.simulation.engine import simulate


class _VectorClient(NumPyClient):
    """Returns the global vector plus a small random update: aggregation cost only."""

    def fit(
        self, parameters: NDArrays, config: dict[str, Scalar]
    ) -> tuple[NDArrays, int, dict[str, Scalar]]:
        rng = np.random.default_rng()
        update = rng.normal(0.0, 0.01, parameters[0].shape).astype(np.float32)
        return [parameters[0] + update], 1, {}


class _TimedFedAvg(FedAvg):
    """FedAvg that notes when each round's aggregate is ready."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.done: list[float] = []

    def aggregate_fit(
        self,
        server_round: int,
        results: list[tuple[ClientProxy, Any]],
        failures: list[Any],
    ) -> tuple[Parameters | None, dict[str, Scalar]]:
        aggregated = super().aggregate_fit(server_round, results, failures)
        if aggregated[0] is None:
            raise RuntimeError(f"round {server_round} produced no aggregate")
        self.done.append(time.monotonic())
        return aggregated


def round_seconds(parameters: int, clients: int, rounds: int, secure: bool) -> float:
    """Median seconds per round after the first."""
    strategy = _TimedFedAvg(
        fraction_fit=1.0,
        fraction_evaluate=0.0,
        min_fit_clients=clients,
        min_available_clients=clients,
        initial_parameters=ndarrays_to_parameters([np.zeros(parameters, np.float32)]),
        fit_metrics_aggregation_fn=lambda _: {},
    )
    # Everyone shares with everyone at 10 clients; at 100, 11 neighbours, 7 to rebuild a mask.
    shares, threshold = (1.0, 0.6) if clients <= 10 else (11.0, 7.0)
    settings = SecAggSettings(num_shares=shares, reconstruction_threshold=threshold, max_weight=1.0)
    server = ServerApp()

    @server.main()
    def main(grid: Grid, context: Context) -> None:
        legacy = LegacyContext(context, config=ServerConfig(num_rounds=rounds), strategy=strategy)
        workflow = DefaultWorkflow(fit_workflow=loud_workflow(settings)) if secure else None
        (workflow or DefaultWorkflow())(grid, legacy)

    client = ClientApp(
        client_fn=lambda context: _VectorClient().to_client(),
        mods=[secaggplus_mod] if secure else [],
    )
    simulate(server, client, clients=clients, cpus=2)
    if len(strategy.done) != rounds:
        raise RuntimeError(f"only {len(strategy.done)} of {rounds} rounds completed")
    return statistics.median(b - a for a, b in zip(strategy.done, strategy.done[1:], strict=False))


def main() -> int:
    """Measure every size and client count, plain and with SecAgg+."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--sizes", default="10000,1000000")
    parser.add_argument("--clients", default="10,100")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    os.environ.update(QUIET_ENVIRONMENT)
    logging.getLogger("flwr").setLevel(logging.WARNING)
    console = Console()
    cells = [(int(p), int(n)) for p in args.sizes.split(",") for n in args.clients.split(",")]
    results = []
    with Progress(console=console) as progress:
        bar = progress.add_task("SecAgg+ vs plain", total=len(cells) * 2)
        for parameters, clients in cells:
            row: dict[str, Any] = {"parameters": parameters, "clients": clients}
            for secure in (False, True):
                name = "secagg" if secure else "plain"
                progress.update(
                    bar, description=f"{parameters:,} parameters, {clients} clients, {name}"
                )
                row[f"{name}_s"] = round_seconds(parameters, clients, args.rounds, secure)
                progress.advance(bar)
            row["ratio"] = row["secagg_s"] / row["plain_s"]
            results.append(row)
    table = Table("parameters", "clients", "plain s/round", "SecAgg+ s/round", "ratio")
    for row in results:
        table.add_row(
            f"{row['parameters']:,}",
            str(row["clients"]),
            f"{row['plain_s']:.2f}",
            f"{row['secagg_s']:.2f}",
            f"{row['ratio']:.2f}",
        )
    console.print(table)
    if args.out is not None:
        args.out.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
