"""``aicache simulate --task semantic-hit`` end to end (real Ray), on the embedded default
and on both real data sets, with the baseline measured in the same run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Cli, shared_data

pytestmark = [pytest.mark.e2e, pytest.mark.needs_extra("semantic", "simulation")]

HEADLINE = ("f05", "precision", "recall")


def _check_report(metrics: dict[str, Any], report: Path, clients: int) -> None:
    assert metrics["task"] == "semantic-hit"
    assert [m["name"] for m in metrics["metrics"]] == list(HEADLINE)
    for arm in ("federated", "local_only", "centralized", "personalized"):
        assert len(metrics[arm]["per_client"]) == clients
        assert all(0.0 <= metrics[arm][name] <= 1.0 for name in HEADLINE)
    comparison = metrics["comparison"]
    assert "MiniLM cosine" in comparison["baseline_label"]
    assert set(HEADLINE) <= set(comparison["baseline"])
    learned, baseline = comparison["curves"]
    for curve in (learned, baseline):
        assert len(curve["xs"]) == len(curve["ys"]) >= 5
        assert all(0.0 <= v <= 1.0 for v in curve["xs"] + curve["ys"])
        assert curve["point"] is not None
    assert (report / "comparison.png").stat().st_size > 0
    page = (report / "index.html").read_text()
    assert "comparison.png" in page and "baseline: MiniLM cosine" in page


def test_simulate_semantic_hit_on_the_embedded_population(cli: Cli, tmp_path: Path) -> None:
    # Execute
    report = tmp_path / "report"
    metrics, _ = cli.simulate(
        "--task semantic-hit --clients 3 --rounds 2 --learning-rate 0.1 --local-epochs 5",
        out=report,
        timeout=900,
    )
    # Assert: it learns, and beats the untrained decision (which serves nothing)
    _check_report(metrics, report, 3)
    assert metrics["untrained"]["f05"] == 0.0
    assert metrics["federated"]["f05"] > 0.5
    assert [v["task"] for v in cli.versions()] == ["semantic-hit", "semantic-hit"]


@pytest.mark.parametrize("name", ["nl2bash", "stsb"])
def test_simulate_semantic_hit_on_real_data(cli: Cli, tmp_path: Path, name: str) -> None:
    # Prepare
    data = shared_data(name)
    report = tmp_path / "report"
    # Execute
    metrics, _ = cli.simulate(
        f"--task semantic-hit --data {data} --format {name} --rounds 1", out=report, timeout=1500
    )
    # Assert
    _check_report(metrics, report, metrics["clients"])
    assert metrics["clients"] >= 5
    assert {"nl2bash": "NL2Bash", "stsb": "STS Benchmark"}[name] in metrics["data"]
