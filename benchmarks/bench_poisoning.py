"""Poisoning under the norm bound: top-1 of each aggregation rule with and without attackers.

Usage::

    python benchmarks/bench_poisoning.py [--clients 20] [--rounds 10] [--rates 0.1 0.2 0.3]
        [--max-update-norm 100] [--out DIR]

A share of the clients (the first ones) attack in every round: ``sign-flip``
sends the honest update reversed, ``scale`` the honest update boosted, both
stretched to 95 % of the server's update norm bound; ``label-flip`` trains on
answers moved to a wrong candidate and sends what it trained (see
:class:`aicache.simulation.adversary.BoundedAttack`). Every poisoned update is
accepted by validation: the rule alone has to resist it.

Rounds run in this process, with the real pieces of a server round: the
synthetic population's partitions, the task's own ``fit``, Flower's strategies
(FedAvg, FedTrimmedAvg β = 0.2, FedMedian, Krum given the true attacker count)
behind aicache's :class:`ValidatedStrategy` with the norm bound. Top-1 is the
macro average over every client's test split of the final global model.
Writes ``poisoning.json`` and ``poisoning.png`` to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

import numpy as np
from flwr.app import ArrayRecord, ConfigRecord, Message, MetricRecord, RecordDict
from flwr.supercore.task_identity import TaskIdentity
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from aicache.federation.strategies import Selection, StrategySpec, build_strategy
from aicache.federation.validation import META, NUM_EXAMPLES, ValidatedStrategy
from aicache.simulation.adversary import BOUNDED_ATTACKS, BoundedAttack, update_norm
from aicache.simulation.sources import PartitionProvider, SyntheticSource
from aicache.tasks.base import FitConfig, get_task

TASK = "next-command"
RULES = ("fedavg", "trimmed-mean", "median", "krum")


def _reply(model: list[np.ndarray], examples: int) -> Message:
    content = RecordDict(
        {
            "arrays": ArrayRecord(model),
            "metrics": MetricRecord({NUM_EXAMPLES: examples}),
            META: ConfigRecord({"task": TASK}),
        }
    )
    return Message(content, dst_node_id=0, message_type="train")


def federate(
    rule: str,
    attack: BoundedAttack | None,
    attackers: int,
    args: argparse.Namespace,
    provider: PartitionProvider,
) -> tuple[list[np.ndarray], dict[str, Any]]:
    """Run ``args.rounds`` rounds of ``rule``; the global model and what the rounds saw."""
    task = get_task(TASK)
    settings = {"num_malicious_nodes": float(attackers)} if rule == "krum" else {}
    inner = build_strategy(StrategySpec(rule, settings), Selection(1.0, 2))
    strategy = ValidatedStrategy(inner, task=TASK, max_update_norm=args.max_update_norm)
    params = task.init_params(0)
    honest_norms: list[float] = []
    attack_norms: list[float] = []
    rejected = 0
    for server_round in range(1, args.rounds + 1):
        # What configure_train records before sampling: the global model sent.
        strategy._reference = [np.asarray(p, dtype=np.float64) for p in params]
        replies = []
        for client in range(args.clients):
            data = provider.client_data(task, client).train
            hostile = attack is not None and client < attackers
            if hostile and attack is not None:
                data = attack.training_data(data, task=TASK)
            config = FitConfig(
                learning_rate=args.learning_rate,
                local_epochs=args.local_epochs,
                batch_size=128,
                seed=server_round * 10_000 + client,
            )
            result = task.fit(params, data, config)
            update = [m - p for m, p in zip(result.params, params, strict=True)]
            if hostile and attack is not None:
                update = attack.update(update, args.max_update_norm)
                attack_norms.append(update_norm(update))
            else:
                honest_norms.append(update_norm(update))
            model = [p + u for p, u in zip(params, update, strict=True)]
            replies.append(_reply(model, result.num_examples))
        arrays, _ = strategy.aggregate_train(server_round, replies)
        rejected += len(strategy.log.rejected)
        assert arrays is not None  # aggregate_train raises rather than return None
        params = arrays.to_numpy_ndarrays()
    seen = {
        "honest_norm_median": float(np.median(honest_norms)),
        "attack_norm_median": float(np.median(attack_norms)) if attack_norms else None,
        "rejected": rejected,
    }
    return params, seen


def top1(params: list[np.ndarray], provider: PartitionProvider, clients: int) -> float:
    """Macro top-1 of ``params`` over every client's test split."""
    task = get_task(TASK)
    scores = [task.evaluate(params, provider.client_data(task, c).test) for c in range(clients)]
    return float(np.mean([s["top1"] for s in scores]))


def plot(rows: list[dict[str, Any]], rates: list[float], path: Path) -> None:
    """Top-1 against the attacker share: one panel per attack, one line per rule."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, len(BOUNDED_ATTACKS), figsize=(12, 3.6), sharey=True)
    for axis, attack in zip(axes, BOUNDED_ATTACKS, strict=True):
        for rule in RULES:
            clean = next(r for r in rows if r["rule"] == rule and r["attack"] == "none")
            points = [clean["top1"]] + [
                next(
                    r["top1"]
                    for r in rows
                    if r["rule"] == rule and r["attack"] == attack and r["rate"] == rate
                )
                for rate in rates
            ]
            axis.plot([0.0, *rates], points, marker="o", label=rule)
        axis.set_title(attack)
        axis.set_xlabel("share of attacking clients")
        axis.grid(alpha=0.3)
    axes[0].set_ylabel("top-1 of the final model")
    axes[-1].legend(loc="lower left")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--rates", type=float, nargs="+", default=[0.1, 0.2, 0.3])
    parser.add_argument("--max-update-norm", type=float, default=100.0)
    parser.add_argument("--learning-rate", type=float, default=0.01)
    parser.add_argument("--local-epochs", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("poisoning-out"))
    args = parser.parse_args()
    logging.getLogger("flwr").setLevel(logging.WARNING)
    # Flower builds messages only inside a task: pose as one, as a ServerApp is.
    TaskIdentity.task_id, TaskIdentity.run_id, TaskIdentity.node_id = 1, 1, 1
    console = Console()
    provider = PartitionProvider(SyntheticSource(0, args.clients))
    runs: list[tuple[str, str, float]] = [(rule, "none", 0.0) for rule in RULES]
    runs += [(r, a, rate) for r in RULES for a in BOUNDED_ATTACKS for rate in args.rates]
    rows: list[dict[str, Any]] = []
    with Progress(console=console) as progress:
        bar = progress.add_task("federated runs", total=len(runs))
        for rule, attack, rate in runs:
            attackers = round(rate * args.clients)
            progress.update(bar, description=f"{rule}, {attack}, {attackers} attackers")
            params, seen = federate(
                rule, None if attack == "none" else BoundedAttack(attack), attackers, args, provider
            )
            rows.append(
                {
                    "rule": rule,
                    "attack": attack,
                    "rate": rate,
                    "attackers": attackers,
                    "top1": top1(params, provider, args.clients),
                    **seen,
                }
            )
            progress.advance(bar)
    clean = {r["rule"]: r["top1"] for r in rows if r["attack"] == "none"}
    table = Table("rule", "attack", "attackers", "top-1", "vs attack-free", "rejected")
    for row in rows:
        row["ratio"] = row["top1"] / clean[row["rule"]]
        table.add_row(
            row["rule"],
            row["attack"],
            f"{row['attackers']} of {args.clients}",
            f"{row['top1']:.3f}",
            f"{row['ratio']:.3f}",
            str(row["rejected"]),
        )
    console.print(table)
    honest = float(np.median([r["honest_norm_median"] for r in rows]))
    console.print(
        f"median honest update norm {honest:.3g}; norm bound {args.max_update_norm:g}; "
        f"poisoned updates rejected: {sum(r['rejected'] for r in rows)}"
    )
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "poisoning.json").write_text(json.dumps(rows, indent=2) + "\n")
    plot(rows, args.rates, args.out / "poisoning.png")
    console.print(f"wrote {args.out / 'poisoning.json'} and {args.out / 'poisoning.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
