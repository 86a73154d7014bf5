"""The bug-detector task in ``aicache simulate``: real code of installed packages, one run."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import Cli


@pytest.mark.e2e
@pytest.mark.needs_extra("simulation")
def test_simulate_bug_detector_on_installed_packages(cli: Cli, tmp_path: Path) -> None:
    # Execute
    metrics, output = cli.simulate(
        "--task bug-detector --clients 2 --rounds 1 --seed 1", out=tmp_path / "report"
    )
    # Assert: each developer is a package; every arm detects planted slips in unseen files
    assert metrics["task"] == "bug-detector"
    assert [m["name"] for m in metrics["metrics"]] == ["detection_auc", "recall", "false_alarms"]
    clients = [c["client"] for c in metrics["federated"]["per_client"]]
    assert len(clients) == 2 and clients[0] != clients[1]
    for arm in ("federated", "local_only", "centralized"):
        assert 0.6 < metrics[arm]["detection_auc"] <= 1.0, arm
    assert metrics["untrained"]["detection_auc"] == pytest.approx(0.5)
    assert b"installed Python packages" in output
