"""`models list` shows each task's own headline metric, read from the task's spec."""

from __future__ import annotations

from pathlib import Path

from aicache.registry import ModelRegistry
from aicache.tasks.base import get_task
from tests.conftest import Cli


def _register(registry: ModelRegistry, task: str, metrics: dict[str, float]) -> None:
    run_id = registry.start_run(task, {"plan": {}})
    registry.register(
        task,
        get_task("next-command").init_params(0),
        run_id=run_id,
        round=1,
        parent=None,
        strategy="fedavg",
        strategy_config={},
        num_clients=3,
        metrics=metrics,
        privacy={"dp": "off"},
    )


def test_the_list_names_each_tasks_headline_metric_and_no_other_tasks(
    cli: Cli, tmp_path: Path
) -> None:
    # Prepare: a next-command version, and one of a task this install does not know
    # (registered by a plugin that is not installed here), both with an eval.top1
    root = tmp_path / "registry"
    with ModelRegistry(root) as registry:
        _register(registry, "next-command", {"eval.top1": 0.412})
        _register(registry, "plugin-task", {"eval.top1": 0.9})
    # Execute
    listed = cli.run("models", "list", "--registry", str(root))
    # Assert: next-command's table shows its top-1; the unknown task's does not borrow it
    assert listed.returncode == 0, listed.stderr.decode()
    text = listed.stdout.decode()
    ours, _, theirs = text.partition("plugin-task")
    assert "top-1" in ours and "0.412" in ours
    assert "metric" in theirs and "top-1" not in theirs and "0.900" not in theirs
