"""library-recs runs through ``aicache simulate`` with its report arms and both baselines."""

from __future__ import annotations

import pytest

from tests.conftest import Cli

pytestmark = pytest.mark.needs_extra("simulation")


@pytest.mark.e2e
def test_library_recs_simulates_with_its_arms_and_count_baselines(cli: Cli) -> None:
    # Execute: a lean run (3 developers, 1 round) on the embedded synthetic population
    metrics, _ = cli.simulate("--task library-recs --clients 3 --rounds 1 --seed 1", timeout=600)
    # Assert: the task's metrics in every arm, and the comparison with both baselines
    assert metrics["task"] == "library-recs"
    assert [m["name"] for m in metrics["metrics"]] == ["recall10", "recall1"]
    for arm in ("federated", "personalized", "local_only", "centralized"):
        assert 0.0 <= metrics[arm]["recall10"] <= 1.0
    comparison = metrics["comparison"]
    assert [c["label"] for c in comparison["curves"]] == [
        "learned co-use model",
        "co-occurrence counts (baseline)",
        "popularity (baseline)",
    ]
    assert 0.0 < comparison["baseline"]["recall10"] <= 1.0
    assert "popularity: recall@10" in comparison["baseline_label"]
