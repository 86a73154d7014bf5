"""Judge library recommendations on real projects: six arms, leave-one-out recall@10.

The projects are Debian's Python packages (the Debian archive's index, read
with ``apt-cache dumpavail``): each package's ``Depends`` on other Python
packages, mapped back to their PyPI names by dh-python's ``cpython3_fallback``
table, is one real project's dependency set. Each maintainer (the first
uploader when a team maintains the package) is one client. Per client, the
first 70 % of its packages (in name order) train and the last 30 % are the test
projects, which no arm ever trains on.

On each test project every dependency inside the public vocabulary is hidden in
turn; the arm recommends 10 packages from the rest; a hit when the hidden one
is among them. Arms:

- federated: FedAvg over the clients (weighted mean of their fits, in process);
- local-only: each client trains alone on its own train projects;
- centralized: one model on the pooled train projects;
- personalised: the federated model fine-tuned on the client's own train projects;
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


def fedavg(
    task: LibraryRecsTask,
    trains: Sequence[ProjectSet],
    rounds: int,
    config: FitConfig,
    seed: int,
) -> Params:
    """FedAvg in process: every client fits from the global model, weighted by its points."""
    params = task.init_params(seed)
    for round_ in range(rounds):
        fits = [
            task.fit(params, train, replace(config, seed=seed + round_ * 1000 + c))
            for c, train in enumerate(trains)
        ]
        weights = np.asarray([f.num_examples for f in fits], dtype=np.float64)
        if weights.sum() == 0:
            break
        params = [
            sum(w * f.params[i] for w, f in zip(weights, fits, strict=True)) / weights.sum()
            for i in range(len(params))
        ]
    return params


def run(args: argparse.Namespace) -> dict[str, object]:
    """Every arm's recall@10 on the test projects."""
    started = time.monotonic()
    source = DebianSource(str(args.data))
    source.check()
    task = LibraryRecsTask()
    names = source.names()
    trains, tests = [], []
    for client in range(len(names)):
        projects = task.load_local(source.records(client))
        cut = int(len(projects) * TRAIN_SHARE)
        trains.append(projects.slice(0, cut))
        tests.append(projects.slice(cut, None))
    local = FitConfig(
        learning_rate=args.learning_rate,
        local_epochs=args.local_epochs,
        batch_size=args.batch_size,
        seed=args.seed,
    )
    federated = fedavg(task, trains, args.rounds, local, args.seed)
    central = FitConfig(
        learning_rate=args.learning_rate,
        local_epochs=args.central_epochs,
        batch_size=args.batch_size,
        seed=args.seed,
    )
    pooled = ProjectSet.concatenate(trains)
    centralized = task.fit(task.init_params(args.seed), pooled, central).params
    counts = CoUseCounts(pooled)
    personal = FitConfig(
        learning_rate=args.personal_learning_rate,
        local_epochs=args.personal_epochs,
        batch_size=args.batch_size,
        seed=args.seed,
    )
    alone = FitConfig(
        learning_rate=args.learning_rate,
        local_epochs=args.central_epochs,
        batch_size=args.batch_size,
        seed=args.seed,
    )
    ranks: dict[str, list[np.ndarray]] = {arm: [] for arm in ARMS}
    shipped = _shipped()
    if shipped is not None:
        ranks["shipped"] = []
    for client, (train, test) in enumerate(zip(trains, tests, strict=True)):
        ranks["federated"].append(model_ranks(federated, test))
        ranks["centralized"].append(model_ranks(centralized, test))
        tuned = task.fit(federated, train, personal).params
        ranks["personalised"].append(model_ranks(tuned, test))
        own = task.fit(task.init_params(args.seed), train, alone).params
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
        "test_projects": sum(len(t) for t in tests),
        "test_points": int(sum(r.size for r in ranks["federated"])),
        "coverage": task.evaluate(federated, ProjectSet.concatenate(tests))["coverage"],
        "settings": {k: v for k, v in vars(args).items() if k not in ("data", "out")},
    }
    for arm, per_client in ranks.items():
        valid = [r for r in per_client if r.size]
        result[arm] = {
            "recall10_macro": float(np.mean([np.mean(r < 10) for r in valid])),
            "recall10_pooled": float(np.mean(np.concatenate(valid) < 10)),
            "recall1_pooled": float(np.mean(np.concatenate(valid) < 1)),
        }
    result["seconds"] = time.monotonic() - started
    return result


def _shipped() -> Params | None:
    from aicache.registry.shipped import shipped_model

    model = shipped_model("library-recs")
    return None if model is None else model.arrays


def main(argv: Sequence[str] | None = None) -> int:
    """Build or read the data, run every arm, print the table and write JSON."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--local-epochs", type=int, default=2)
    parser.add_argument("--central-epochs", type=int, default=8)
    parser.add_argument("--learning-rate", type=float, default=0.02)
    parser.add_argument("--personal-learning-rate", type=float, default=0.003)
    parser.add_argument("--personal-epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
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
