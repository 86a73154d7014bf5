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
- ``central``: the sum of the clipped contributions (as SecAgg+ would deliver
  it) noised once with ``N(0, (zC)²)`` (add-or-remove-one). The engine does
  not run this placement for a summed task today (it refuses central noise
  calibrated to a mean), so it is measured here on the same contributions.

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
from pathlib import Path

import numpy as np

from aicache.features.error_events import bucket
from aicache.privacy.accounting import Sampling, calibrate_noise_multiplier
from aicache.tasks.error_patterns import CONTRIBUTION_NORM, MIN_DEVELOPERS, contribution
from aicache.tasks.error_patterns.catalogue import catalogue
from aicache.tasks.error_patterns.population import SyntheticErrors
from aicache.tasks.error_patterns.release import threshold
from aicache.tasks.error_patterns.task import histogram, in_counts

EPSILONS = (1.0, 4.0, 8.0, math.inf)
CLIENTS = (100, 1000)
MECHANISMS = ("local", "central")
TOP = 20
DELTA = 1e-5


def population(seed: int, clients: int) -> tuple[np.ndarray, Counter[str]]:
    """The summed counts of every client's bounded contribution, and each key's true developers."""
    source = SyntheticErrors(seed, clients)
    summed = None
    truth: Counter[str] = Counter()
    for client in range(clients):
        errors = source.records(client)
        truth.update({e.key for e in errors})
        counts = in_counts(histogram(contribution(errors)))[0]
        summed = counts if summed is None else summed + counts
    assert summed is not None
    return summed, truth


def measure(
    summed: np.ndarray,
    truth: Counter[str],
    *,
    clients: int,
    epsilon: float,
    mechanism: str,
    seed: int,
) -> dict[str, float]:
    """One release of ``summed`` at ``epsilon``: recall of the true top 20, FDR, threshold."""
    if math.isinf(epsilon):
        std = 0.0
    else:
        local = mechanism == "local"
        z = calibrate_noise_multiplier(epsilon, Sampling(), 1, DELTA, local=local)
        std = z * CONTRIBUTION_NORM * (math.sqrt(clients) if local else 1.0)
    rng = np.random.default_rng([seed, int(min(epsilon, 1e6) * 10), clients, len(mechanism)])
    noised = summed + rng.normal(0.0, std, summed.size) if std else summed
    tau = threshold(std, 1)
    released = set(np.flatnonzero(noised >= tau).tolist())
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
    }


def run(seeds: int) -> list[dict[str, float | str]]:
    """Every (clients, mechanism, ε) cell, averaged over ``seeds`` populations."""
    rows: list[dict[str, float | str]] = []
    for clients in CLIENTS:
        pops = [population(seed, clients) for seed in range(seeds)]
        for mechanism in MECHANISMS:
            for epsilon in EPSILONS:
                cells = [
                    measure(s, t, clients=clients, epsilon=epsilon, mechanism=mechanism, seed=i)
                    for i, (s, t) in enumerate(pops)
                ]
                row: dict[str, float | str] = {
                    "clients": float(clients),
                    "mechanism": mechanism,
                    "epsilon": epsilon,
                }
                for name in cells[0]:
                    row[name] = float(np.mean([c[name] for c in cells]))
                rows.append(row)
                print(
                    f"clients {clients:5d} {mechanism:7s} eps {epsilon:>4} "
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
