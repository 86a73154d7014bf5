"""A crash while a round is being registered never leaves a released model unaccounted for.

``benchmarks/bench_kill_resume.py`` SIGKILLs real simulations at random
moments and during registry writes; this pins the order that makes it safe.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from flwr.app import ArrayRecord
from flwr.serverapp.strategy import FedAvg

from aicache.federation.plan import TrainingPlan
from aicache.federation.server_app import RunObserver
from aicache.federation.validation import ValidatedStrategy
from aicache.privacy.accounting import Sampling
from aicache.privacy.central import DpPlan
from aicache.registry import ModelRegistry
from aicache.tasks.base import get_task

TASK = "next-command"


def test_a_rounds_spend_is_in_the_ledger_before_its_model(tmp_path: Path) -> None:
    # Prepare: a DP run's observer, and an artifact store that cannot be written
    # (a file where its folder should be), so registering the model fails for real
    root = tmp_path / "registry"
    dp = DpPlan(
        mode="central",
        clip=1.0,
        noise_multiplier=1.0,
        sampling=Sampling("fixed", population=3, size=3),
    )
    plan = TrainingPlan(task=TASK, rounds=1, dp=dp)
    with ModelRegistry(root) as registry:
        run_id = registry.start_run(TASK, {"plan": plan.as_dict()})
    (root / "artifacts").write_text("not a folder")
    observer = RunObserver(registry_root=root, run_id=run_id, plan=plan, federation="f")
    observer.bind(ValidatedStrategy(FedAvg(), task=TASK, max_update_norm=100.0))
    model = ArrayRecord(get_task(TASK).init_params(0))
    # Execute: the last round's registration breaks off, as a crash would
    with pytest.raises(OSError):
        observer.after_round(1, model)
    # Assert: no model was released, and the round is already accounted for
    with ModelRegistry(root) as registry:
        assert registry.versions(TASK) == []
        ledger = registry.ledger(TASK)
    assert [row["rounds"] for row in ledger] == [1]
    assert ledger[0]["epsilon"] == pytest.approx(plan.dp.record(1)["epsilon"])
    assert np.isfinite(ledger[0]["epsilon"])
