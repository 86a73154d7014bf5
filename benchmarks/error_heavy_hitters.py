"""DP heavy hitters of error signatures: recall of the true top 20 and false discoveries against ε.

The population is the error-patterns task's embedded default: simulated
developers drawing errors from recorded real tool output (shared Zipf-popular
keys, private tail keys each hit by one developer, a trend). Each developer's
bounded contribution (:func:`aicache.tasks.error_patterns.contribution`) is
summed, noised and thresholded as :mod:`aicache.tasks.error_patterns.release`
does, for two placements of the noise, each calibrated by dp-accounting (RDP)
to (ε, δ) for one round:

- ``local``: what ``aicache simulate --task error-patterns --dp local`` runs:
  every client adds ``N(0, (zC)²)`` to its own contribution (``z`` calibrated
  with sensitivity 2C, replace-one). The sum of ``n`` such Gaussians is drawn
  as one of standard deviation ``zC·√n`` (the same law).
- ``central``: what ``aicache simulate --task error-patterns --dp central
  --sample-rate 1`` runs, through the engine's own server-side code: every
  client's update (its contribution, clipped as ``fixedclipping_mod`` clips
  it) goes through the validated, DP-wrapped, summed strategy the ServerApp
  builds (:func:`aicache.federation.server_app.training_strategy`), which
  releases the sum plus ``N(0, (zC)²)``; the release is read with the
  version's privacy record as ``aicache errors`` reads it, and ε is the one
  the engine's accountant records for it (Poisson rate 1: add or remove one
  client). At ε = ∞ the engine runs without DP.

The truth: a key's developers are those who hit it at all. Recall is the
share of the 20 keys with most developers that the release marks common; a
false discovery is a released bucket with fewer than MIN_DEVELOPERS
developers behind it (a private key, or noise). Usage::

    python benchmarks/error_heavy_hitters.py --plot docs/error_heavy_hitters.png
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from flwr.app import ArrayRecord, ConfigRecord, Message, MessageType, MetricRecord, RecordDict
from flwr.supercore.differential_privacy import compute_clip_model_update
from flwr.supercore.task_identity import TaskIdentity

from aicache.features.error_events import bucket
from aicache.federation.plan import TrainingPlan
from aicache.federation.server_app import training_strategy, validated_strategy
from aicache.federation.validation import META, NUM_EXAMPLES
from aicache.privacy.accounting import Sampling, calibrate_noise_multiplier
from aicache.privacy.central import DpPlan
from aicache.tasks.error_patterns import (
    CONTRIBUTION_NORM,
    MIN_DEVELOPERS,
    ErrorPatternsTask,
    contribution,
    release_of,
)
from aicache.tasks.error_patterns.catalogue import catalogue
from aicache.tasks.error_patterns.population import SyntheticErrors
from aicache.tasks.error_patterns.release import threshold
from aicache.tasks.error_patterns.task import histogram, in_counts

EPSILONS = (1.0, 4.0, 8.0, math.inf)
CLIENTS = (100, 1000)
MECHANISMS = ("local", "central")
TOP = 20
DELTA = 1e-5


class _Nodes:
    """The grid's node list, all Flower's sampler asks of it."""

    def __init__(self, count: int) -> None:
        self.nodes = list(range(1, count + 1))

    def get_node_ids(self) -> list[int]:
        return self.nodes


@dataclass
class Population:
    """One seeded population: each client's update, their sum in counts, the truth."""

    updates: list[list[np.ndarray]]
    summed: np.ndarray
    truth: Counter[str]


def population(seed: int, clients: int) -> Population:
    """Every client's bounded contribution, their summed counts, and each key's developers."""
    source = SyntheticErrors(seed, clients)
    truth: Counter[str] = Counter()
    updates = []
    for client in range(clients):
        errors = source.records(client)
        truth.update({e.key for e in errors})
        updates.append(histogram(contribution(errors)))
    summed = np.sum([in_counts(u)[0] for u in updates], axis=0)
    return Population(updates, summed, truth)


def engine_release(pop: Population, epsilon: float) -> tuple[set[int], float, float]:
    """The engine's central release of one round: released buckets, threshold, recorded ε."""
    clients = len(pop.updates)
    sampling = Sampling("poisson", 1.0, population=clients)
    if math.isinf(epsilon):
        dp = DpPlan()
    else:
        z = calibrate_noise_multiplier(epsilon, sampling, 1, DELTA)
        dp = DpPlan(mode="central", clip=1.0, noise_multiplier=z, sampling=sampling, delta=DELTA)
    plan = TrainingPlan(task=ErrorPatternsTask.name, rounds=1, dp=dp)
    initial = ErrorPatternsTask().init_params(0)
    strategy = validated_strategy(plan, training_strategy(plan), initial)
    grid: Any = _Nodes(clients)
    strategy.configure_train(1, ArrayRecord(initial), ConfigRecord(), grid)
    replies = []
    for update in pop.updates:
        model = [i + u for i, u in zip(initial, update, strict=True)]
        compute_clip_model_update(model, initial, dp.clip)  # what fixedclipping_mod does
        content = RecordDict(
            {
                "arrays": ArrayRecord(model),
                "metrics": MetricRecord({NUM_EXAMPLES: 1}),
                META: ConfigRecord({"task": plan.task}),
            }
        )
        replies.append(Message(content, dst_node_id=0, message_type=MessageType.TRAIN))
    merged, _ = strategy.aggregate_train(1, replies)
    assert merged is not None
    release = release_of(merged.to_numpy_ndarrays(), dp.privacy_record(1).as_dict())
    released = set(np.flatnonzero(release.params[0] >= release.threshold).tolist())
    recorded = math.inf if release.epsilon is None else release.epsilon
    return released, release.threshold, recorded


def local_release(
    pop: Population, clients: int, epsilon: float, seed: int
) -> tuple[set[int], float, float]:
    """The local-noise release, drawn as one Gaussian of the summed law (see the module)."""
    if math.isinf(epsilon):
        std = 0.0
    else:
        z = calibrate_noise_multiplier(epsilon, Sampling(), 1, DELTA, local=True)
        std = z * CONTRIBUTION_NORM * math.sqrt(clients)
    rng = np.random.default_rng([seed, int(min(epsilon, 1e6) * 10), clients, len("local")])
    noised = pop.summed + rng.normal(0.0, std, pop.summed.size) if std else pop.summed
    tau = threshold(std, 1)
    return set(np.flatnonzero(noised >= tau).tolist()), tau, epsilon


def measure(
    pop: Population, *, clients: int, epsilon: float, mechanism: str, seed: int
) -> dict[str, float]:
    """One release at ``epsilon``: recall of the true top 20, FDR, threshold, recorded ε."""
    if mechanism == "central":
        released, tau, recorded = engine_release(pop, epsilon)
    else:
        released, tau, recorded = local_release(pop, clients, epsilon, seed)
    truth = pop.truth
    developers_of_bucket: Counter[int] = Counter()
    for key in catalogue():
        developers_of_bucket[bucket(key)] += truth.get(key, 0)
    top = [k for k, _ in truth.most_common(TOP)]
    found = sum(bucket(k) in released for k in top)
    false = sum(developers_of_bucket[b] < MIN_DEVELOPERS for b in released)
    private = sum(truth.get(k, 0) == 1 and bucket(k) in released for k in catalogue())
    return {
        "recall": found / len(top),
        "fdr": false / len(released) if released else 0.0,
        "released": float(len(released)),
        "private_released": float(private),
        "threshold": tau,
        "recorded_epsilon": recorded,
    }


def run(seeds: int) -> list[dict[str, float | str]]:
    """Every (clients, mechanism, ε) cell, averaged over ``seeds`` populations."""
    rows: list[dict[str, float | str]] = []
    # Flower builds messages only inside a task: pose as one (as a ServerApp runs in).
    TaskIdentity.task_id, TaskIdentity.run_id, TaskIdentity.node_id = 1, 1, 1
    # The engine draws its noise from numpy's global generator: seeded for a repeatable table.
    np.random.seed(0)
    for clients in CLIENTS:
        cells: dict[tuple[str, float], list[dict[str, float]]] = {}
        for seed in range(seeds):
            pop = population(seed, clients)
            for mechanism in MECHANISMS:
                for epsilon in EPSILONS:
                    cells.setdefault((mechanism, epsilon), []).append(
                        measure(
                            pop, clients=clients, epsilon=epsilon, mechanism=mechanism, seed=seed
                        )
                    )
        for (mechanism, epsilon), measured in cells.items():
            row: dict[str, float | str] = {
                "clients": float(clients),
                "mechanism": mechanism,
                "epsilon": epsilon,
            }
            for name in measured[0]:
                row[name] = float(np.mean([c[name] for c in measured]))
            rows.append(row)
            print(
                f"clients {clients:5d} {mechanism:7s} eps {epsilon:>4} "
                f"(recorded {row['recorded_epsilon']:.3f}) "
                f"recall@{TOP} {row['recall']:.2f} FDR {row['fdr']:.2f} "
                f"released {row['released']:.1f} private {row['private_released']:.1f} "
                f"threshold {row['threshold']:.1f}",
                flush=True,
            )
    return rows


def plot(rows: list[dict[str, float | str]], path: Path) -> None:
    """Recall and FDR against ε, one line per (clients, mechanism)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    positions = list(range(len(EPSILONS)))
    labels = ["∞" if math.isinf(e) else f"{e:g}" for e in EPSILONS]
    for clients in CLIENTS:
        for mechanism in MECHANISMS:
            mine = [r for r in rows if r["clients"] == clients and r["mechanism"] == mechanism]
            label = f"{int(clients)} clients, {mechanism}"
            for axis, metric in zip(axes, ("recall", "fdr"), strict=True):
                axis.plot(positions, [float(r[metric]) for r in mine], marker="o", label=label)
    for axis, title in zip(
        axes, (f"recall of the true top {TOP}", "false-discovery rate"), strict=True
    ):
        axis.set_xticks(positions, labels)
        axis.set_xlabel("ε (δ = 1e-5, one round)")
        axis.set_ylim(-0.02, 1.02)
        axis.set_title(title)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main(argv: list[str]) -> int:
    """Run the grid, print it, and write JSON and the plot where asked."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5, help="populations per cell")
    parser.add_argument("--json", type=Path, help="write the rows here")
    parser.add_argument("--plot", type=Path, help="write the figure here (PNG)")
    args = parser.parse_args(argv)
    rows = run(args.seeds)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1) + "\n")
    if args.plot:
        plot(rows, args.plot)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
