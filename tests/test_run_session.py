"""One run session for simulation and deployment: begin, resume, observe, finish."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from flwr.app import ArrayRecord
from flwr.serverapp.strategy import FedAvg

from aicache.errors import AicacheError
from aicache.federation.plan import TrainingPlan
from aicache.federation.session import Ending, Resume, Resumption, RunEnded, RunSession
from aicache.federation.validation import ValidatedStrategy
from aicache.registry import ModelRegistry
from aicache.tasks.base import get_task

TASK = "next-command"
FEDERATION = "simulation: test"


def _begin(
    root: Path,
    *,
    task: str = TASK,
    resuming: Resumption | None = None,
    warm_start: bool = False,
    members: list[str] | None = None,
    noun: str = "the run",
) -> RunSession:
    return RunSession.begin(
        registry_root=root,
        plan=TrainingPlan(task=task, rounds=3),
        federation=FEDERATION,
        resuming=resuming,
        warm_start=warm_start,
        members=members,
        noun=noun,
    )


def _one_round(session: RunSession, task: str = TASK) -> list[np.ndarray]:
    """Register round 1 through the session's observer, as Flower's loop would."""
    observer = session.observe()
    observer.bind(ValidatedStrategy(FedAvg(), task=task, max_update_norm=100.0))
    model = [a + 0.5 for a in get_task(task).init_params(1)]
    observer.after_round(1, ArrayRecord(model))
    return model


def test_an_interrupted_run_resumes_after_its_last_round_on_its_own_federation(
    tmp_path: Path,
) -> None:
    # Prepare: a run that registered round 1 of 3, then its process died
    root = tmp_path / "registry"
    first = _begin(root, members=["a", "b"])
    model = _one_round(first)
    # Execute
    record = RunSession.resumable(
        registry_root=root, task=TASK, federation=FEDERATION, rule=Resume.INTERRUPTED
    )
    resumed = _begin(root, resuming=record)
    # Assert: the same run, after round 1, from round 1's model and version
    assert resumed.run_id == first.run_id and record.record.spec["members"] == ["a", "b"]
    assert resumed.plan.start_round == 1 and resumed.resumed_after == 1
    assert resumed.parent == 1
    assert all(np.array_equal(a, b) for a, b in zip(resumed.initial, model, strict=True))
    with pytest.raises(AicacheError, match="the interrupted run trained on 'simulation: test'"):
        RunSession.resumable(
            registry_root=root, task=TASK, federation="other", rule=Resume.INTERRUPTED
        )


def test_a_failed_deployed_run_is_reopened_and_a_simulation_does_not_resume_it(
    tmp_path: Path,
) -> None:
    # Prepare: a run that registered round 1, then failed
    root = tmp_path / "registry"
    first = _begin(root)
    _one_round(first)
    first.fail("the SuperLink refused the run")
    # Execute / Assert: only deployment's rule resumes a failed run, and reopens it
    with pytest.raises(AicacheError, match=f"no interrupted run of {TASK} to resume"):
        RunSession.resumable(
            registry_root=root, task=TASK, federation=FEDERATION, rule=Resume.INTERRUPTED
        )
    record = RunSession.resumable(
        registry_root=root, task=TASK, federation=FEDERATION, rule=Resume.UNFINISHED
    )
    resumed = _begin(root, resuming=record)
    assert resumed.run_id == first.run_id and resumed.resumed_after == 1
    assert resumed.plan.start_round == 0  # submitted as it was: the ServerApp attaches
    with ModelRegistry(root) as registry:
        assert registry.run(first.run_id).status == "running"
    attached = RunSession.attach(registry_root=root, run_id=first.run_id, federation=FEDERATION)
    assert attached.plan.start_round == 1 and attached.parent == 1


def test_a_warm_start_begins_from_the_newest_version(tmp_path: Path) -> None:
    root = tmp_path / "registry"
    first = _begin(root)
    model = _one_round(first)
    warm = _begin(root, warm_start=True)
    cold = _begin(root)
    assert warm.parent == 1 and cold.parent is None
    assert all(np.array_equal(a, b) for a, b in zip(warm.initial, model, strict=True))
    with ModelRegistry(root) as registry:
        assert registry.run(warm.run_id).spec["parent"] == 1
        assert "members" not in registry.run(warm.run_id).spec


def test_a_summed_task_starts_every_run_from_zero(tmp_path: Path) -> None:
    # Prepare: a released histogram of error patterns
    root = tmp_path / "registry"
    _one_round(_begin(root, task="error-patterns"), task="error-patterns")
    # Execute
    warm = _begin(root, task="error-patterns", warm_start=True)
    # Assert: the new run's counts do not add to the last run's
    fresh = get_task("error-patterns").init_params(0)
    assert warm.parent is None
    assert all(np.array_equal(a, b) for a, b in zip(warm.initial, fresh, strict=True))


@pytest.mark.parametrize(
    ("setup", "ending", "message"),
    [
        ("error", Ending.FAILED, "no valid aggregate"),
        ("early", Ending.ENDED_EARLY, "the simulation ended early"),
        ("no-round", Ending.NO_ROUND, "stopped before round 1"),
    ],
)
def test_a_run_that_did_not_finish_is_recorded_failed_with_one_typed_error(
    tmp_path: Path, setup: str, ending: Ending, message: str
) -> None:
    # Prepare
    root = tmp_path / "registry"
    session = _begin(root, noun="the simulation")
    if setup == "no-round":
        session.observe().stopped = "stopped before round 1"
    else:
        _one_round(session)
    if setup == "error":
        assert session.observer is not None
        session.observer.error = RuntimeError("no valid aggregate")
    # Execute
    with pytest.raises(RunEnded) as ended:
        session.finish()
    # Assert
    assert ended.value.ending is ending and ended.value.planned == 3
    with ModelRegistry(root) as registry:
        record = registry.run(session.run_id)
    assert record.status == "failed" and record.message == message


def test_a_deployed_run_the_budget_stopped_finishes_with_its_notes(tmp_path: Path) -> None:
    # Prepare: deployment lets a budget stop end the run as finished, with the delivery's notes
    root = tmp_path / "registry"
    session = _begin(root)
    session.observe().stopped = "stopped before round 1"
    # Execute
    versions = session.finish(deliver=lambda: ["version 4 sent to 2 node(s)"], no_round_fails=False)
    # Assert
    assert versions == []
    with ModelRegistry(root) as registry:
        record = registry.run(session.run_id)
    assert record.status == "finished"
    assert record.message == "stopped before round 1; version 4 sent to 2 node(s)"


def test_a_finished_run_returns_its_versions(tmp_path: Path) -> None:
    root = tmp_path / "registry"
    session = _begin(root)
    _one_round(session)
    assert session.observer is not None
    session.observer.stopped = "stopped before round 2: over the budget"
    versions = session.finish()
    assert [v.round for v in versions] == [1]
    with ModelRegistry(root) as registry:
        assert registry.run(session.run_id).message == "stopped before round 2: over the budget"
