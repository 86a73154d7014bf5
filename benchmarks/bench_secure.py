"""Overhead of secure aggregation against plain aggregation, as ratios.

Usage::

    python benchmarks/bench_secure.py [--out FILE]

CKKS (TenSEAL, as ``--secure he`` uses it), in this process: for P parameters
and N clients, each client's encryption, the server's sum of N ciphertexts and
one decryption, against numpy's sum of the same N plaintext vectors.
SecAgg+ and CKKS end to end: seconds per round of a real simulation (the
next-command model, 916 parameters) with ``--secure secagg`` / ``he`` against
the same run without, later rounds' median.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from aicache.federation.environment import QUIET_ENVIRONMENT
from aicache.federation.plan import TrainingPlan
from aicache.federation.strategies import Selection
from aicache.privacy import ckks
from aicache.simulation.runner import run
from aicache.simulation.sources import SyntheticSource


def ckks_costs(parameters: int, clients: int) -> dict[str, Any]:
    """CKKS encryption, sum and decryption against a plaintext sum, in seconds."""
    secret, public = ckks.make_keys()
    server, owner = ckks.load_context(public), ckks.load_context(secret)
    rng = np.random.default_rng(0)
    vector = rng.normal(0, 0.01, parameters)
    started = time.perf_counter()
    one = ckks.encrypt(server, vector)
    encrypt_s = time.perf_counter() - started
    ciphertexts = [one] * clients  # the same ciphertext: the sum costs the same
    started = time.perf_counter()
    total = ckks.add(server, ciphertexts)
    sum_s = time.perf_counter() - started
    started = time.perf_counter()
    plain = ckks.decrypt(owner, total)
    decrypt_s = time.perf_counter() - started
    vectors = np.stack([vector] * clients)
    started = time.perf_counter()
    reference = vectors.sum(axis=0)
    numpy_s = time.perf_counter() - started
    return {
        "parameters": parameters,
        "clients": clients,
        "encrypt_per_client_s": encrypt_s,
        "server_sum_s": sum_s,
        "decrypt_s": decrypt_s,
        "numpy_sum_s": numpy_s,
        "server_ratio": (sum_s + decrypt_s) / numpy_s,
        "ciphertext_mib": sum(len(p) for p in one) / 2**20,
        "max_error": float(np.abs(plain - reference).max()),
    }


def round_seconds(secure: str, clients: int, rounds: int) -> float:
    """Median seconds of the later rounds of a simulation."""
    plan = TrainingPlan(
        task="next-command",
        rounds=rounds,
        selection=Selection(1.0, 2, min_available=clients),
        secure=secure,
        final_evaluation=False,
    )
    with tempfile.TemporaryDirectory() as tmp:
        outcome = run(plan, SyntheticSource(0, clients), registry_root=Path(tmp) / "r")
    return statistics.median(r.seconds for r in outcome.rounds[1:])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path)
    parser.add_argument("--rounds", type=int, default=4)
    args = parser.parse_args()
    os.environ.update(QUIET_ENVIRONMENT)
    logging.getLogger("flwr").setLevel(logging.WARNING)
    console = Console()
    results: dict[str, list[dict[str, Any]]] = {"ckks": [], "rounds": []}
    for parameters, clients in ((10_000, 10), (10_000, 100), (1_000_000, 10), (1_000_000, 100)):
        console.print(f"CKKS: {parameters} parameters, {clients} clients ...")
        results["ckks"].append(ckks_costs(parameters, clients))
    for clients in (10, 30):
        plain = round_seconds("off", clients, args.rounds)
        for secure in ("secagg", "he"):
            console.print(f"simulating {clients} clients with --secure {secure} ...")
            seconds = round_seconds(secure, clients, args.rounds)
            results["rounds"].append(
                {
                    "clients": clients,
                    "secure": secure,
                    "plain_s": plain,
                    "secure_s": seconds,
                    "ratio": seconds / plain,
                }
            )
    table = Table(
        "parameters",
        "clients",
        "encrypt/client s",
        "server sum s",
        "decrypt s",
        "numpy sum s",
        "server ratio",
        "ciphertext MiB",
        "max error",
    )
    for row in results["ckks"]:
        table.add_row(
            f"{row['parameters']:,}",
            str(row["clients"]),
            f"{row['encrypt_per_client_s']:.3f}",
            f"{row['server_sum_s']:.3f}",
            f"{row['decrypt_s']:.3f}",
            f"{row['numpy_sum_s']:.5f}",
            f"{row['server_ratio']:.0f}",
            f"{row['ciphertext_mib']:.2f}",
            f"{row['max_error']:.1e}",
        )
    console.print(table)
    table = Table("clients", "mode", "plain s/round", "secure s/round", "ratio")
    for row in results["rounds"]:
        table.add_row(
            str(row["clients"]),
            row["secure"],
            f"{row['plain_s']:.2f}",
            f"{row['secure_s']:.2f}",
            f"{row['ratio']:.2f}",
        )
    console.print(table)
    if args.out:
        args.out.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
