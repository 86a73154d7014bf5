"""Cache budgets on real request streams: LRU, LFU, the learned keep-score, Belady.

Each of Greenberg's users is replayed through a cache of 10, 50 and 200
entries: every command line a request, its repetition a hit. The learned
keep-score is judged on users it never saw, trained two ways: federated over
the *other* users (leave-one-user-out: FedAvg over the seven other traces,
``--rounds`` rounds through the task's own ``fit``, no DP), and the model
shipped with aicache (federated with central DP on the synthetic default only).
Belady's optimum evicts the entry whose next use is furthest away: it reads
the future and bounds every policy. Hit rates are pooled over all requests;
"gap closed" is (learned − LRU) / (Belady − LRU). Usage::

    python benchmarks/eviction_replay.py --data ../shared/data/greenberg \\
        --plot docs/eviction_replay.png
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from aicache.registry.shipped import shipped_model
from aicache.tasks.base import FitConfig, Params
from aicache.tasks.cache_keep import CacheKeepTask, KeepExamples, logits
from aicache.tasks.cache_keep.replay import (
    EncodedStream,
    Policy,
    belady,
    encode,
    hit_rate,
    lfu,
    lru,
    scored,
)
from aicache.tasks.cache_keep.sources import GreenbergRequests

BUDGETS = (10, 50, 200)
ARMS = ("LRU", "LFU", "learned (other users)", "learned (shipped)", "Belady")


def federated(task: CacheKeepTask, clients: Sequence[KeepExamples], rounds: int) -> Params:
    """FedAvg over ``clients``: each round every client fits from the global model."""
    params = task.init_params(0)
    config = FitConfig(learning_rate=0.05, local_epochs=2)
    for _ in range(rounds):
        results = [task.fit(params, examples, config) for examples in clients]
        weights = np.array([r.num_examples for r in results], dtype=np.float64)
        params = [
            sum(w * r.params[i] for w, r in zip(weights, results, strict=True)) / weights.sum()
            for i in range(len(params))
        ]
    return params


def _learned(params: Params) -> Policy:
    return scored(lambda features: logits(params, features))


Table = dict[str, dict[str, float]]


def evaluate(source: GreenbergRequests, rounds: int) -> tuple[Table, Table]:
    """Pooled hit rate of every arm at every budget, and each user's gap closed by budget."""
    task = CacheKeepTask()
    names = source.names()
    requests = [source.records(c) for c in range(len(names))]
    streams: list[EncodedStream] = [encode(r) for r in requests]
    examples = [task.load_local(r) for r in requests]
    shipped = shipped_model(task.name)
    if shipped is None:
        raise SystemExit("no shipped cache-keep model in this install")
    hits = {budget: dict.fromkeys(ARMS, 0.0) for budget in BUDGETS}
    per_user: dict[str, dict[str, float]] = {}
    for held, stream in enumerate(streams):
        others = [e for index, e in enumerate(examples) if index != held]
        policies = {
            "LRU": lru,
            "LFU": lfu,
            "learned (other users)": _learned(federated(task, others, rounds)),
            "learned (shipped)": _learned(shipped.arrays),
            "Belady": belady,
        }
        for budget in BUDGETS:
            rates = {arm: hit_rate(stream, budget, policy) for arm, policy in policies.items()}
            for arm, rate in rates.items():
                hits[budget][arm] += rate * len(stream)
            gap = rates["Belady"] - rates["LRU"]
            closed = (rates["learned (other users)"] - rates["LRU"]) / gap if gap > 0 else 1.0
            per_user.setdefault(names[held], {})[str(budget)] = closed
            print(names[held], budget, {a: round(r, 4) for a, r in rates.items()}, flush=True)
    total = sum(len(s) for s in streams)
    table: Table = {}
    for budget in BUDGETS:
        row = {arm: hits[budget][arm] / total for arm in ARMS}
        gap = row["Belady"] - row["LRU"]
        for arm in ("learned (other users)", "learned (shipped)"):
            row[f"gap closed, {arm}"] = (row[arm] - row["LRU"]) / gap if gap > 0 else 1.0
        table[str(budget)] = row
    return table, per_user


def plot(table: Table, path: Path) -> None:
    """Hit rate by budget, one line per policy."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(6.4, 4.0))
    for arm, style in zip(ARMS, ("o-", "s-", "D-", "^--", "k:"), strict=True):
        axis.plot(BUDGETS, [table[str(b)][arm] for b in BUDGETS], style, label=arm)
    axis.set_xscale("log")
    axis.set_xticks(BUDGETS, [str(b) for b in BUDGETS])
    axis.set_xlabel("cache budget (entries)")
    axis.set_ylabel("hit rate (pooled over 8 users)")
    axis.set_title("Greenberg traces: each command line a request")
    axis.legend(fontsize=8)
    axis.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=120)


def main() -> int:
    """Replay, print the table as Markdown, write JSON and the plot."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default="../shared/data/greenberg")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--plot", type=Path, default=None)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    source = GreenbergRequests(args.data)
    source.check()
    table, per_user = evaluate(source, args.rounds)
    print("| budget | " + " | ".join(ARMS) + " | gap closed (other users) | gap closed (shipped) |")
    print("|---" * (len(ARMS) + 3) + "|")
    for budget in BUDGETS:
        row = table[str(budget)]
        cells = [f"{row[arm]:.3f}" for arm in ARMS]
        closed = [f"{row[f'gap closed, {arm}']:.0%}" for arm in ARMS[2:4]]
        print(f"| {budget} | " + " | ".join(cells + closed) + " |")
    if args.json:
        document = {"pooled": table, "per_user_gap_closed": per_user}
        args.json.write_text(json.dumps(document, indent=2) + "\n")
    if args.plot:
        plot(table, args.plot)
    return 0


if __name__ == "__main__":
    sys.exit(main())
