"""Clients that vanish mid-round in real simulations: exact survivors' aggregate, or a loud stop.

SecAgg+'s dropouts (within and beyond the reconstruction threshold) are in
``test_secagg_e2e.py``; these cover a plain round. ``benchmarks/bench_dropouts.py``
runs both modes at 10 %, 30 % and 50 %.
"""

from __future__ import annotations

import numpy as np
import pytest
from benchmarks.bench_dropouts import survivors_mean

from aicache.registry import ModelRegistry
from tests.conftest import Cli

pytestmark = pytest.mark.e2e
CLIENTS = 6


def test_clients_that_vanish_mid_round_leave_the_survivors_exact_mean(cli: Cli) -> None:
    # Execute: 2 of 6 clients train, then fail before they reply
    metrics, _ = cli.simulate(
        f"--clients {CLIENTS} --rounds 1 --adversarial 2 --attack vanish", timeout=300
    )
    # Assert: the round completed with the 4 survivors, and its model is their FedAvg
    round_one = metrics["per_round"][0]
    assert (round_one["accepted_updates"], round_one["rejected_updates"]) == (4, 2)
    expected, _ = survivors_mean(CLIENTS, [2, 3, 4, 5])
    with ModelRegistry(cli.home / "simulations") as registry:
        model = registry.load(registry.resolve("next-command", "1"))
    for got, want in zip(model, expected, strict=True):  # equal but for float rounding
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-9)


def test_a_round_where_every_client_vanishes_stops_loudly_and_registers_nothing(cli: Cli) -> None:
    # Execute: all 3 clients vanish mid-round
    result = cli.run(
        "simulate", *"--clients 3 --rounds 2 --adversarial 3 --attack vanish".split(), timeout=300
    )
    # Assert: a clear error naming the dropouts, exit 1, and no version
    assert result.returncode == 1, result.stderr
    stderr = result.stderr.replace(b"\n", b" ")
    assert b"none of 3 replies could be aggregated" in stderr
    assert b"dropped out" in stderr
    assert cli.versions() == []
