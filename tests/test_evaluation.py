"""What ``aicache evaluate --json`` gives: the keys its consumers read, per task."""

from __future__ import annotations

from aicache.simulation.evaluation import evaluate_unseen, summary
from aicache.tasks import get_task
from aicache.tasks.next_command.sources import SyntheticSource


def test_next_command_rows_keep_the_keys_json_consumers_read() -> None:
    # Prepare: an untrained model on two small synthetic users.
    params = get_task("next-command").init_params(0)
    source = SyntheticSource(seed=4, clients=2, commands=60)
    # Execute
    result = summary(evaluate_unseen("next-command", params, source, cold_start=20))
    # Assert: each user's row names its records as the task does (``commands``),
    # with the same keys as the releases before the task seam.
    assert [row["commands"] for row in result["per_user"]] == [60, 60]
    assert set(result["per_user"][0]) == {
        "user",
        "commands",
        "top1",
        "top3",
        "cold_global_top1",
        "cold_global_top3",
        "cold_own_top1",
        "cold_own_top3",
    }
    assert "commands" not in result and "records" not in result
