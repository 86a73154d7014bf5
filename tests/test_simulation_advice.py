"""What simulate and evaluate tell the user: budget suggestions that work, and a warning
when a model is scored on the users it was trained on."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.conftest import Cli

pytestmark = pytest.mark.e2e


def test_a_budget_that_allows_no_round_suggests_flags_that_fit(cli: Cli, tmp_path: Path) -> None:
    from aicache.privacy.accounting import Sampling, epsilon

    # Prepare: noise far too low for the budget.
    flags = ["--clients", "3", "--rounds", "4", "--dp", "central", "--budget", "2"]
    # Execute
    refused = cli.run("simulate", *flags, "--noise-multiplier", "0.3", timeout=300)
    # Assert: refused before any round, with a noise multiplier computed to fit.
    message = " ".join(refused.stderr.decode().split())
    assert refused.returncode == 2, message
    assert "allows no round" in message
    found = re.search(r"--noise-multiplier ([0-9.]+) --budget 2 for all 4 rounds", message)
    assert found, message
    suggested = float(found.group(1))
    # The suggestion runs: every round happens and the budget holds.
    metrics, _ = cli.simulate(" ".join([*flags, "--noise-multiplier", str(suggested)]))
    assert [r["round"] for r in metrics["per_round"]] == [1, 2, 3, 4]
    assert metrics["stopped"] is None
    assert metrics["privacy"]["epsilon"] <= 2
    # And it is close to the least that fits: a tenth less noise would not.
    sampling = Sampling("fixed", population=3, size=3)
    assert epsilon(suggested - 0.1, sampling, 4, metrics["privacy"]["delta"], "rdp") > 2


def test_evaluating_on_the_training_users_warns(cli: Cli) -> None:
    # Prepare: a model trained on the synthetic population of seed 0.
    cli.simulate("--clients 3 --rounds 1")
    # Execute
    same = cli.run("evaluate", "--clients", "3", "--seed", "0", timeout=300)
    other = cli.run("evaluate", "--clients", "3", "--seed", "5", timeout=300)
    # Assert
    assert same.returncode == other.returncode == 0, same.stderr
    warning = " ".join(same.stderr.decode().split())
    assert "warning: 3 of the 3 users evaluated on trained v1" in warning
    assert "not on unseen users" in warning
    assert b"warning" not in other.stderr
