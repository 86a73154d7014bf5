"""Judge library recommendations on real projects: six arms, leave-one-out recall@10.

The projects are Debian's Python packages (the Debian archive's index, read
with ``apt-cache dumpavail``): each package's ``Depends`` on other Python
packages, mapped back to their PyPI names by dh-python's ``cpython3_fallback``
table, is one real project's dependency set. Each maintainer (the first
uploader when a team maintains the package) is one client. Per client, the
first 70 % of its packages (in name order) are its train projects (the last
15 % of them held for validation: every arm's training stops at the epoch or
round of best validation recall) and the last 30 % are the test projects,
which no arm ever trains on or is tuned on.

On each test project every dependency inside the public vocabulary is hidden in
turn; the arm recommends 10 packages from the rest; a hit when the hidden one
is among them. Arms:

- federated: FedAvg over the clients (weighted mean of their fits, in process);
- local-only: each client trains alone on its own train projects;
- centralized: one model on the pooled train projects;
- personalised: the federated model fine-tuned on the client's own train projects
  (0 to 4 epochs, as the client's own validation projects choose);
- popularity and co-occurrence: counts over the pooled train projects;
- shipped: the model shipped with aicache (trained with DP on synthetic data only).

Recall is macro-averaged over clients (as the simulation report does) and
pooled over all test points. Usage::

    python benchmarks/recommend_eval.py --out recommend.json

It builds the data folder itself (``apt-cache dumpavail`` and ``apt-get
download dh-python``) unless ``--data`` names one holding ``Packages`` and
``cpython3_fallback``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np

from aicache.tasks.base import FitConfig, Params
from aicache.tasks.library_recs.baseline import CoUseCounts, baseline_ranks, model_ranks
from aicache.tasks.library_recs.projects import ProjectSet
from aicache.tasks.library_recs.sources import DebianSource
from aicache.tasks.library_recs.task import LibraryRecsTask

TRAIN_SHARE = 0.7
VALIDATION_SHARE = 0.15  # of the train projects, to stop training where it generalises best
ARMS = ("federated", "local_only", "centralized", "personalised", "popularity", "co_occurrence")


def build_data(folder: Path) -> None:
    """Write ``Packages`` and ``cpython3_fallback`` into ``folder`` from Debian's own tools."""
    with (folder / "Packages").open("w") as out:
        subprocess.run(["apt-cache", "dumpavail"], stdout=out, check=True)
    with tempfile.TemporaryDirectory() as scratch:
        subprocess.run(["apt-get", "download", "dh-python"], cwd=scratch, check=True)
        deb = next(Path(scratch).glob("dh-python_*.deb"))
        subprocess.run(["dpkg-deb", "-x", str(deb), scratch], check=True)
        table = Path(scratch) / "usr/share/dh-python/dist/cpython3_fallback"
        (folder / "cpython3_fallback").write_bytes(table.read_bytes())


def pooled_recall(params: Params, parts: Sequence[ProjectSet]) -> float:
    """Recall@10 averaged over the ``parts`` that have a leave-one-out point (clients).

    Macro, as the report's arms and the targets are: a client with many
    projects does not decide alone when training stops.
    """
    shares = [float(np.mean(r < 10)) for r in (model_ranks(params, p) for p in parts) if r.size]
    return float(np.mean(shares)) if shares else 0.0  # no point to judge by: keep the start


def fedavg(
    task: LibraryRecsTask,
    trains: Sequence[ProjectSet],
    validations: Sequence[ProjectSet],
    rounds: int,
    config: FitConfig,
) -> tuple[Params, int]:
    """FedAvg in process, stopped at the round of best validation recall: (model, round)."""
    params = task.init_params(config.seed)
    best, best_round, best_recall = params, 0, -1.0
    for round_ in range(1, rounds + 1):
        fits = [
            task.fit(params, train, replace(config, seed=config.seed + round_ * 1000 + c))
            for c, train in enumerate(trains)
        ]
        weights = np.asarray([f.num_examples for f in fits], dtype=np.float64)
        params = [
            sum(w * f.params[i] for w, f in zip(weights, fits, strict=True)) / weights.sum()
            for i in range(len(params))
        ]
        recall = pooled_recall(params, validations)
        if recall > best_recall:
            best, best_round, best_recall = params, round_, recall
    return best, best_round


def early_stopped(
    task: LibraryRecsTask,
    start: Params,
    train: ProjectSet,
    validations: Sequence[ProjectSet],
    epochs: int,
    config: FitConfig,
) -> tuple[Params, int]:
    """One epoch at a time from ``start`` (epoch 0 included), kept at the best validation recall."""
    params, best, best_epoch = start, start, 0
    best_recall = pooled_recall(start, validations)
    for epoch in range(1, epochs + 1):
        params = task.fit(
            params, train, replace(config, local_epochs=1, seed=config.seed + epoch)
        ).params
        recall = pooled_recall(params, validations)
        if recall > best_recall:
            best, best_epoch, best_recall = params, epoch, recall
    return best, best_epoch


def run(args: argparse.Namespace) -> dict[str, object]:
    """Every arm's recall@10 on the test projects."""
    started = time.monotonic()
    source = DebianSource(str(args.data))
    source.check()
    task = LibraryRecsTask()
    names = source.names()
    trains, validations, tests = [], [], []
    for client in range(len(names)):
        projects = task.load_local(source.records(client))
        cut = int(len(projects) * TRAIN_SHARE)
        held = int(cut * (1 - VALIDATION_SHARE))
        trains.append(projects.slice(0, held))
        validations.append(projects.slice(held, cut))
        tests.append(projects.slice(cut, None))
    config = FitConfig(
        learning_rate=args.learning_rate,
        local_epochs=args.local_epochs,
        batch_size=args.batch_size,
        seed=args.seed,
    )
    if args.shipped_only:
        return shipped_only(trains, tests)
    federated, federated_round = fedavg(task, trains, validations, args.rounds, config)
    pooled = ProjectSet.concatenate(trains)
    fresh = task.init_params(args.seed)
    centralized, central_epoch = early_stopped(
        task, fresh, pooled, validations, args.max_epochs, config
    )
    counts = CoUseCounts(pooled)
    personal = replace(config, learning_rate=args.personal_learning_rate)
    ranks: dict[str, list[np.ndarray]] = {arm: [] for arm in ARMS}
    shipped = _shipped()
    if shipped is not None:
        ranks["shipped"] = []
    chosen: dict[str, list[int]] = {"personalised_epochs": [], "local_only_epochs": []}
    for client, (train, valid, test) in enumerate(zip(trains, validations, tests, strict=True)):
        ranks["federated"].append(model_ranks(federated, test))
        ranks["centralized"].append(model_ranks(centralized, test))
        # The personal fine-tuning stops where the client's own validation projects say
        # (0 epochs: the global model as it is).
        tuned, epochs = early_stopped(
            task, federated, train, [valid], args.personal_epochs, personal
        )
        chosen["personalised_epochs"].append(epochs)
        ranks["personalised"].append(model_ranks(tuned, test))
        own, epochs = early_stopped(task, fresh, train, [valid], args.max_epochs, config)
        chosen["local_only_epochs"].append(epochs)
        ranks["local_only"].append(model_ranks(own, test))
        counted = baseline_ranks(counts, test, leave_out=False)
        ranks["popularity"].append(counted["popularity"])
        ranks["co_occurrence"].append(counted["co-occurrence"])
        if shipped is not None:
            ranks["shipped"].append(model_ranks(shipped, test))
        print(f"client {client + 1}/{len(names)} done", file=sys.stderr)
    result: dict[str, object] = {
        "data": source.describe(),
        "clients": len(names),
        "train_projects": len(pooled),
        "validation_projects": sum(len(v) for v in validations),
        "test_projects": sum(len(t) for t in tests),
        "test_points": int(sum(r.size for r in ranks["federated"])),
        "coverage": task.evaluate(federated, ProjectSet.concatenate(tests))["coverage"],
        "federated_round": federated_round,
        "centralized_epochs": central_epoch,
        **chosen,
        "settings": {k: str(v) for k, v in vars(args).items() if k not in ("data", "out")},
    }
    for arm, per_client in ranks.items():
        result[arm] = _summary(per_client)
    result["seconds"] = time.monotonic() - started
    return result


def shipped_only(trains: Sequence[ProjectSet], tests: Sequence[ProjectSet]) -> dict[str, object]:
    """The shipped model and the count baselines alone, on the same test projects."""
    shipped = _shipped()
    if shipped is None:
        raise SystemExit("no library-recs model is shipped")
    counts = CoUseCounts(ProjectSet.concatenate(list(trains)))
    ranks: dict[str, list[np.ndarray]] = {"shipped": [], "popularity": [], "co_occurrence": []}
    for test in tests:
        ranks["shipped"].append(model_ranks(shipped, test))
        counted = baseline_ranks(counts, test, leave_out=False)
        ranks["popularity"].append(counted["popularity"])
        ranks["co_occurrence"].append(counted["co-occurrence"])
    return {arm: _summary(per_client) for arm, per_client in ranks.items()}


def _summary(per_client: Sequence[np.ndarray]) -> dict[str, float]:
    valid_ranks = [r for r in per_client if r.size]
    return {
        "recall10_macro": float(np.mean([np.mean(r < 10) for r in valid_ranks])),
        "recall10_pooled": float(np.mean(np.concatenate(valid_ranks) < 10)),
        "recall1_pooled": float(np.mean(np.concatenate(valid_ranks) < 1)),
    }


def _shipped() -> Params | None:
    from aicache.registry.shipped import shipped_model

    model = shipped_model("library-recs")
    return None if model is None else model.arrays


def main(argv: Sequence[str] | None = None) -> int:
    """Build or read the data, run every arm, print the table and write JSON."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--rounds", type=int, default=12)
    parser.add_argument("--local-epochs", type=int, default=2)
    parser.add_argument("--max-epochs", type=int, default=12)
    parser.add_argument("--learning-rate", type=float, default=0.05)
    parser.add_argument("--personal-learning-rate", type=float, default=0.01)
    parser.add_argument("--personal-epochs", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--shipped-only", action="store_true", help="judge only the shipped model and baselines"
    )
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="aicache-debian-") as scratch:
        if args.data is None:
            args.data = Path(scratch)
            build_data(args.data)
        result = run(args)
    for arm in (*ARMS, "shipped"):
        if arm in result:
            values = result[arm]
            assert isinstance(values, dict)
            print(
                f"{arm:14s} recall@10 macro {values['recall10_macro']:.3f}  "
                f"pooled {values['recall10_pooled']:.3f}  recall@1 {values['recall1_pooled']:.3f}"
            )
    text = json.dumps(result, indent=2)
    if args.out:
        args.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
