"""Rebuild a model shipped with aicache (next-command, semantic-hit, cache-keep, library-recs).

The models that let ``aicache suggest`` and the semantic cache answer on a
fresh install are trained here, never by hand: a federated simulation over the embedded synthetic
population (no real person's history), with central differential privacy,
in a throw-away registry. Its last version is written as package data with a
record of how it was made: the command, the population, the metrics, the
privacy spent (ε and δ from the accountant) and the SHA-256 the package
checks before using it.

    python scripts/train_shipped_model.py
    python scripts/train_shipped_model.py --task semantic-hit
    python scripts/train_shipped_model.py --task cache-keep
    python scripts/train_shipped_model.py --task bug-detector
    python scripts/train_shipped_model.py --task library-recs

For semantic-hit the script then applies the serving-threshold rule: the
lowest probability whose precision reaches 0.95 on developers of the same
seeded population that took no part in training (the highest F0.5 if none
does); the record keeps it, and ``decision.THRESHOLD`` must equal it.

The data, the model's initialisation and the sampling are seeded; the DP
noise is not (it draws on system entropy, as DP requires), so a rebuild gives
a different model with the same privacy guarantee and about the same accuracy.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from aicache.registry import ModelRegistry
from aicache.registry.artifacts import encode_arrays, sha256_hex

# Each task's run: population size, rounds and training settings beyond simulate's defaults.
RUNS: dict[str, dict[str, Any]] = {
    "next-command": {"clients": 60, "rounds": 15, "training": []},
    # A developer has few pairs (one optimiser step an epoch) and the model 13
    # weights: more local steps per round, and a clip bound near the size of an
    # honest update, keep the signal above central DP's noise (std z·C per weight).
    "semantic-hit": {
        "clients": 40,
        "rounds": 8,
        "training": ["--learning-rate", "0.05", "--local-epochs", "5", "--clip", "0.2"],
    },
    "cache-keep": {"clients": 100, "rounds": 15, "training": []},
    # Each developer is one installed package (the packages found on the machine that
    # trains: the record names them). DP's noise is per weight, whatever the clip: what
    # keeps common features above it is the number of developers per round.
    "bug-detector": {
        "clients": 320,
        "rounds": 5,
        "training": ["--learning-rate", "0.05", "--local-epochs", "3", "--clip", "5"],
    },
    # The model has 25,500 weights: central DP's noise (std z·C per weight on the
    # sum) is only outweighed by the clients' agreement when a round averages
    # many of them: 600 developers, each round a Poisson sample of half (the
    # sampling lets the accountant ask for z of about 2, not 8 with all of 60).
    # A client's sampled-softmax update touches about 40 rows; at 0.01 its norm
    # is about 1, the clip bound, so clipping keeps its signal.
    "library-recs": {
        "clients": 600,
        "rounds": 8,
        "training": ["--sample-rate", "0.5", "--learning-rate", "0.01", "--local-epochs", "2"],
    },
}
HELD_OUT = 10  # developers of the training population kept out of training, to set the threshold
TARGET = Path(__file__).resolve().parents[1] / "src" / "aicache" / "registry" / "shipped_models"


def serving_threshold(arrays: list[Any], seed: int, clients: int) -> dict[str, Any]:
    """The semantic-hit threshold by the documented rule, and what it gives on held-out pairs.

    Developers ``clients`` to ``clients + HELD_OUT - 1`` of the training
    population's seed took no part in training.
    """
    import numpy as np

    from aicache.tasks.semantic_hit.baseline import TARGET_PRECISION, threshold_for_precision
    from aicache.tasks.semantic_hit.model import probabilities
    from aicache.tasks.semantic_hit.pairs import PairSet
    from aicache.tasks.semantic_hit.sources import SyntheticPairs
    from aicache.tasks.semantic_hit.task import SemanticHitTask, decision_metrics

    task = SemanticHitTask()
    source = SyntheticPairs(seed, clients + HELD_OUT)
    held_out = PairSet.concatenate(
        [task.load_local(source.records(c)) for c in range(clients, clients + HELD_OUT)]
    )
    scores = probabilities(arrays, held_out.features)
    found = threshold_for_precision(scores, held_out.labels, TARGET_PRECISION)
    threshold = float(np.ceil(found * 100) / 100)  # two decimals, never below the rule's
    reached = decision_metrics(scores, held_out.labels, found)["precision"] >= TARGET_PRECISION
    return {
        "threshold": threshold,
        "threshold_rule": f"lowest probability with precision >= {TARGET_PRECISION} on "
        f"{len(held_out)} pairs of {HELD_OUT} held-out developers of seed {seed} "
        f"(developers {clients}-{clients + HELD_OUT - 1}), rounded up to two decimals"
        + ("" if reached else "; none reaches it, so the highest F0.5"),
        "threshold_held_out": decision_metrics(scores, held_out.labels, threshold),
    }


def finding_threshold(arrays: list[Any], seed: int, clients: int) -> dict[str, Any]:
    """The bug-detector threshold by the documented rule, and what it gives on held-out code.

    The held-out code is the packages the seed's population reserves: no
    simulated developer got them.
    """
    import numpy as np

    from aicache.tasks.bug_detector.detector import TARGET_FALSE_ALARMS
    from aicache.tasks.bug_detector.model import SiteSet
    from aicache.tasks.bug_detector.sources import HeldOutPackages
    from aicache.tasks.bug_detector.task import BugDetectorTask, planted_scores

    task = BugDetectorTask()
    source = HeldOutPackages(seed)
    names = source.names()
    held_out = SiteSet.concatenate([task.load_local(source.records(c)) for c in range(len(names))])
    clean, planted = planted_scores(np.asarray(arrays[0]), held_out)
    found = float(np.quantile(clean, 1.0 - TARGET_FALSE_ALARMS))
    threshold = float(np.ceil(found * 10) / 10)  # one decimal, never below the rule's
    return {
        "threshold": threshold,
        "threshold_rule": f"lowest score with at most {TARGET_FALSE_ALARMS:.1%} of the sites as "
        f"written above it, on {len(clean)} sites of the {len(names)} installed packages seed "
        f"{seed} holds out of training ({', '.join(names)}), rounded up to one decimal",
        "threshold_held_out": {
            "false_alarms": float(np.mean(clean > threshold)),
            "planted_found": float(np.mean(planted > threshold)),
        },
    }


def main() -> int:
    """Train, then write (or with --check, compare) the shipped model and its record."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--task", choices=sorted(RUNS), default="next-command")
    parser.add_argument("--clients", type=int, default=None)
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--target-epsilon", type=float, default=4.0)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    task = args.task
    run = RUNS[task]
    clients = run["clients"] if args.clients is None else args.clients
    rounds = run["rounds"] if args.rounds is None else args.rounds
    flags = [
        *([] if task == "next-command" else ["--task", task]),
        "--clients", str(clients),
        "--rounds", str(rounds),
        "--dp", "central",
        "--target-epsilon", str(args.target_epsilon),
        "--seed", str(args.seed),
        *run["training"],
    ]  # fmt: skip
    env = {**os.environ, "FLWR_TELEMETRY_ENABLED": "0", "FLWR_DISABLE_UPDATE_CHECK": "1"}
    with tempfile.TemporaryDirectory(prefix="aicache-shipped-") as scratch:
        work = Path(scratch)
        env["AICACHE_HOME"] = str(work / "home")
        command = [sys.executable, "-m", "aicache", "simulate", *flags]
        where = ["--registry", str(work / "registry"), "--out", str(work / "report")]
        subprocess.run([*command, *where], env=env, check=True)
        with ModelRegistry(work / "registry") as registry:
            version = registry.latest(task)
            if version is None:
                print("the simulation registered no model", file=sys.stderr)
                return 1
            registry_arrays = registry.load(version)
            data = encode_arrays(registry_arrays)
    digest = sha256_hex(data)
    extra: dict[str, Any] = {}
    if task == "bug-detector":
        # Its embedded default is real code: the Python packages installed here.
        from aicache.tasks.bug_detector.sources import InstalledPackages

        extra["population"] = (
            f"the embedded default: {clients} developers, each the Python files of one package "
            f"installed where it was trained (seed {args.seed}): "
            + ", ".join(n.split("#")[0] for n in InstalledPackages(args.seed, clients).names())
        )
    if task == "semantic-hit":
        extra = serving_threshold(registry_arrays, args.seed, clients)
    if task == "bug-detector":
        extra.update(finding_threshold(registry_arrays, args.seed, clients))
    rebuild = "python scripts/train_shipped_model.py"
    record: dict[str, Any] = {
        "task": task,
        "sha256": digest,
        "size": len(data),
        "trained_with": f"aicache simulate {' '.join(flags)}",
        "rebuild": rebuild if task == "next-command" else f"{rebuild} --task {task}",
        "population": f"the embedded synthetic population ({clients} developers, "
        f"seed {args.seed}); no real " + ("history" if task == "next-command" else "data"),
        "round": version.round,
        "strategy": version.strategy,
        "num_clients": version.num_clients,
        "metrics": version.metrics,
        "privacy": version.privacy,
        **extra,  # after the defaults: a task's own population text replaces theirs
    }
    (TARGET / f"{task}.npz").write_bytes(data)
    (TARGET / f"{task}.json").write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
    print(f"wrote {TARGET / f'{task}.npz'} ({len(data)} bytes), privacy {version.privacy}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
