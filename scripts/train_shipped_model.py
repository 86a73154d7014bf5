"""Rebuild a model shipped with aicache (next-command, cache-keep), from the project's own data.

The model that lets ``aicache suggest`` answer on a fresh install is trained
here, never by hand: a federated simulation over the embedded synthetic
population (no real person's history), with central differential privacy,
in a throw-away registry. Its last version is written as package data with a
record of how it was made: the command, the population, the metrics, the
privacy spent (ε and δ from the accountant) and the SHA-256 the package
checks before using it.

    python scripts/train_shipped_model.py
    python scripts/train_shipped_model.py --task cache-keep --clients 100

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

TARGET = Path(__file__).resolve().parents[1] / "src" / "aicache" / "registry" / "shipped_models"


def main() -> int:
    """Train, then write (or with --check, compare) the shipped model and its record."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--task", default="next-command")
    parser.add_argument("--clients", type=int, default=60)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--target-epsilon", type=float, default=4.0)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    task = args.task
    flags = [
        "--task", task,
        "--clients", str(args.clients),
        "--rounds", str(args.rounds),
        "--dp", "central",
        "--target-epsilon", str(args.target_epsilon),
        "--seed", str(args.seed),
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
            data = encode_arrays(registry.load(version))
    digest = sha256_hex(data)
    record: dict[str, Any] = {
        "task": task,
        "sha256": digest,
        "size": len(data),
        "trained_with": f"aicache simulate {' '.join(flags)}",
        "rebuild": f"python scripts/train_shipped_model.py --task {task} "
        f"--clients {args.clients} --rounds {args.rounds}",
        "population": f"the embedded synthetic population of {task} ({args.clients} developers, "
        f"seed {args.seed}); no real history",
        "round": version.round,
        "strategy": version.strategy,
        "num_clients": version.num_clients,
        "metrics": version.metrics,
        "privacy": version.privacy,
    }
    (TARGET / f"{task}.npz").write_bytes(data)
    (TARGET / f"{task}.json").write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
    print(f"wrote {TARGET / f'{task}.npz'} ({len(data)} bytes), privacy {version.privacy}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
