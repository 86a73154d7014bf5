"""Evaluate the next-command task on Greenberg's shell traces: four training arms.

Per user, the earliest 70% of commands are the train split and the latest
30% the test split. Every arm predicts each test command from the user's own
history up to that moment; what differs is how the ranker's weights are
learned:

- local-only: each user trains on their own train split only;
- centralized: one model trained on the pooled train splits;
- federated: FedAvg over the users as clients (weighted mean of parameters);
- personalised: the federated model fine-tuned on the user's own train split.

Yardsticks are count models on program names: a per-user bigram that keeps
learning through the test period, and a bigram on the pooled train splits.
Metrics are top-1 and top-3 accuracy on the program name, macro-averaged over
users. Usage::

    python benchmarks/next_command_eval.py --data ../shared/data/greenberg --out result.json
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from aicache.features.candidates import CandidateSet
from aicache.features.history_items import HistoryItem, items_from_shell
from aicache.local.history import parse_greenberg, read_text
from aicache.tasks.base import FitConfig, Params
from aicache.tasks.next_command import NextCommandTask

TRAIN_SHARE = 0.7
ARMS = ("local", "centralized", "federated", "personalised")
YARDSTICKS = ("bigram_user_online", "bigram_pooled")


def load_users(data: Path) -> dict[str, list[HistoryItem]]:
    """Every trace file in ``data`` as history items, by file name."""
    users = {}
    for path in sorted(p for p in data.iterdir() if p.is_file() and not p.name.startswith(".")):
        try:
            users[path.name] = items_from_shell(parse_greenberg(read_text(path)))
        except ValueError:
            continue  # not a trace (e.g. a README)
    if not users:
        raise SystemExit(f"no Greenberg traces found in {data}")
    return users


def split_point(n: int) -> int:
    """Index of the first test item: the earliest ``TRAIN_SHARE`` of ``n`` items train."""
    return int(TRAIN_SHARE * n)


def _ranked(counts: Counter[str], last: dict[str, int], k: int) -> list[str]:
    """Programs by count, ties to the most recently used (then by name)."""
    return sorted(counts, key=lambda p: (-counts[p], -last.get(p, -1), p))[:k]


def _bigram_predict(
    row: Counter[str], unigram: Counter[str], last: dict[str, int], k: int
) -> list[str]:
    """Top-k successors, filled from the unigram ranking when the row has fewer than k."""
    top = _ranked(row, last, k)
    for program in _ranked(unigram, last, k + len(top)):
        if len(top) == k:
            break
        if program not in top:
            top.append(program)
    return top


def bigram_yardsticks(users: dict[str, list[HistoryItem]]) -> dict[str, dict[str, list[float]]]:
    """Top-1/top-3 of the online per-user bigram and the pooled (frozen) bigram."""
    pooled: defaultdict[str, Counter[str]] = defaultdict(Counter)
    pooled_unigram: Counter[str] = Counter()
    for items in users.values():
        train = [item.program for item in items[: split_point(len(items))]]
        pooled_unigram.update(train)
        for prev, nxt in itertools.pairwise(train):
            pooled[prev][nxt] += 1
    pooled_last: dict[str, int] = {}
    result: dict[str, dict[str, list[float]]] = {name: {} for name in YARDSTICKS}
    for user, items in users.items():
        programs = [item.program for item in items]
        split = split_point(len(programs))
        bigram: defaultdict[str, Counter[str]] = defaultdict(Counter)
        unigram: Counter[str] = Counter()
        last: dict[str, int] = {}
        hits = {name: np.zeros(3) for name in YARDSTICKS}
        for t, program in enumerate(programs):
            if t >= split:
                prev = programs[t - 1]
                own = _bigram_predict(bigram[prev], unigram, last, 3)
                pool = _bigram_predict(pooled.get(prev, Counter()), pooled_unigram, pooled_last, 3)
                for name, top in (("bigram_user_online", own), ("bigram_pooled", pool)):
                    hits[name] += [program in top[:1], program in top[:3], 1]
            if t:
                bigram[programs[t - 1]][program] += 1
            unigram[program] += 1
            last[program] = t
        for name in YARDSTICKS:
            top1, top3, count = hits[name]
            result[name][user] = [top1 / count, top3 / count]
    return result


def fedavg(
    task: NextCommandTask,
    start: Params,
    clients: Sequence[CandidateSet],
    rounds: int,
    config: FitConfig,
) -> Params:
    """Plain FedAvg: each client fits from the global params; the server takes the weighted mean."""
    params = start
    for round_index in range(rounds):
        round_config = FitConfig(
            learning_rate=config.learning_rate,
            local_epochs=config.local_epochs,
            proximal_mu=config.proximal_mu,
            batch_size=config.batch_size,
            weight_decay=config.weight_decay,
            seed=config.seed * 1000 + round_index,
        )
        results = [task.fit(params, client, round_config) for client in clients]
        total = sum(r.num_examples for r in results)
        params = [
            np.sum([r.params[i] * (r.num_examples / total) for r in results], axis=0)
            for i in range(len(params))
        ]
    return params


Scores = dict[str, dict[str, list[float]]]
"""Arm (or yardstick) -> user -> [top-1, top-3]."""


def train_arms(
    task: NextCommandTask,
    args: argparse.Namespace,
    train: dict[str, CandidateSet],
    test: dict[str, CandidateSet],
    seed: int,
) -> Scores:
    """Train the four arms from the same initial params and score them on the test splits."""
    users = list(train)
    start = task.init_params(seed)
    fit = FitConfig(
        learning_rate=args.lr, local_epochs=args.epochs, batch_size=args.batch_size, seed=seed
    )
    local = {user: task.fit(start, train[user], fit).params for user in users}
    central = task.fit(start, CandidateSet.concatenate([train[u] for u in users]), fit).params
    fed_config = FitConfig(
        learning_rate=args.lr,
        local_epochs=args.local_epochs,
        proximal_mu=args.mu,
        batch_size=args.batch_size,
        seed=seed,
    )
    federated = fedavg(task, start, [train[u] for u in users], args.rounds, fed_config)
    tune = FitConfig(
        learning_rate=args.personal_lr,
        local_epochs=args.personal_epochs,
        batch_size=args.batch_size,
        seed=seed,
    )
    models: dict[str, dict[str, Params]] = {
        "local": local,
        "centralized": dict.fromkeys(users, central),
        "federated": dict.fromkeys(users, federated),
        "personalised": {user: task.fit(federated, train[user], tune).params for user in users},
    }
    scores: Scores = {arm: {} for arm in ARMS}
    for arm in ARMS:
        for user in users:
            metrics = task.evaluate(models[arm][user], test[user])
            scores[arm][user] = [metrics["top1"], metrics["top3"]]
    return scores


def _macro(table: dict[str, list[float]]) -> list[float]:
    return [float(np.mean([v[i] for v in table.values()])) for i in range(2)]


def run(args: argparse.Namespace) -> dict[str, object]:
    """Run every arm (for each seed) and the yardsticks; return a JSON-ready dict."""
    started = time.perf_counter()
    users = load_users(args.data)
    task = NextCommandTask(hidden=args.hidden, use_context=not args.no_context)
    train: dict[str, CandidateSet] = {}
    test: dict[str, CandidateSet] = {}
    for user, items in users.items():
        examples = task.load_local(items)
        split = split_point(len(examples))
        train[user], test[user] = examples.slice(0, split), examples.slice(split, len(examples))
    extracted = time.perf_counter()

    runs = [train_arms(task, args, train, test, seed) for seed in range(args.seeds)]
    scores: Scores = {
        arm: {u: np.mean([r[arm][u] for r in runs], axis=0).tolist() for u in users} for arm in ARMS
    }
    scores.update(bigram_yardsticks(users))
    macro = {name: _macro(table) for name, table in scores.items()}
    per_seed = {arm: [_macro(r[arm]) for r in runs] for arm in ARMS}
    start = task.init_params(0)
    coverage = {user: task.evaluate(start, test[user])["coverage"] for user in users}
    return {
        "data": str(args.data),
        "users": {u: {"commands": len(items), "test": len(test[u])} for u, items in users.items()},
        "config": {
            key: (str(value) if isinstance(value, Path) else value)
            for key, value in vars(args).items()
            if key != "out"
        },
        "num_params": int(sum(p.size for p in start)),
        "macro": macro,
        "macro_std_over_seeds": {
            arm: np.std(values, axis=0).tolist() for arm, values in per_seed.items()
        },
        "macro_per_seed": per_seed,
        "per_user": scores,
        "candidate_coverage": coverage,
        "federated_over_centralized_top1": macro["federated"][0] / macro["centralized"][0],
        "seconds": {
            "features": extracted - started,
            "total": time.perf_counter() - started,
        },
    }


def print_table(result: dict[str, object]) -> None:
    """Print per-user and macro top-1 / top-3 for every arm and yardstick."""
    per_user, macro, std = result["per_user"], result["macro"], result["macro_std_over_seeds"]
    assert isinstance(per_user, dict) and isinstance(macro, dict) and isinstance(std, dict)
    names = [*ARMS, *YARDSTICKS]
    short = {"bigram_user_online": "bigram/user", "bigram_pooled": "bigram/pooled"}
    print(f"{'user':<14}" + "".join(f"{short.get(n, n):>15}" for n in names))
    print(f"{'':<14}" + "".join(f"{'top1  top3':>15}" for _ in names))
    for user in per_user["local"]:
        cells = "".join(f"{per_user[n][user][0]:>9.3f}{per_user[n][user][1]:>6.3f}" for n in names)
        print(f"{user:<14}{cells}")
    print(f"{'MACRO':<14}" + "".join(f"{macro[n][0]:>9.3f}{macro[n][1]:>6.3f}" for n in names))
    print(f"{'std (seeds)':<14}" + "".join(f"{std[n][0]:>9.3f}{std[n][1]:>6.3f}" for n in ARMS))
    print(
        f"\nparams: {result['num_params']}   federated/centralized top-1: "
        f"{result['federated_over_centralized_top1']:.3f}   seconds: "
        + ", ".join(f"{k} {v:.1f}" for k, v in dict(result["seconds"]).items())  # type: ignore[call-overload]
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Parse arguments, run the evaluation, print the table and optionally write JSON."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--data", type=Path, required=True, help="the greenberg folder")
    parser.add_argument("--out", type=Path, help="write the results as JSON here")
    parser.add_argument("--hidden", type=int, default=16, help="hidden units (0: linear)")
    parser.add_argument("--lr", type=float, default=0.01)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--epochs", type=int, default=10, help="local-only / centralized epochs")
    parser.add_argument("--rounds", type=int, default=30, help="federated rounds")
    parser.add_argument("--local-epochs", type=int, default=2, help="epochs per round")
    parser.add_argument("--mu", type=float, default=0.0, help="FedProx mu (0: FedAvg)")
    parser.add_argument("--personal-lr", type=float, default=0.003)
    parser.add_argument("--personal-epochs", type=int, default=3)
    parser.add_argument("--seeds", type=int, default=3, help="seeds to average over")
    parser.add_argument(
        "--no-context",
        action="store_true",
        help="ignore the session and directory of the moment of prediction",
    )
    args = parser.parse_args(argv)
    if not args.data.is_dir():
        print(f"no such folder: {args.data}", file=sys.stderr)
        return 2
    result = run(args)
    print_table(result)
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
