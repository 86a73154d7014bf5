"""The dashboard's figures in Prometheus' text format (``/metrics``)."""

from __future__ import annotations

from typing import Any

from aicache.web.operator_data import OperatorData


def _label(value: object) -> str:
    text = str(value).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')
    return f'"{text}"'


def _number(value: Any) -> str:
    if value == "inf":
        return "+Inf"
    return repr(float(value))


class _Family:
    def __init__(self, name: str, help_text: str, kind: str = "gauge") -> None:
        self.lines = [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]
        self.name = name

    def add(self, value: Any, **labels: object) -> None:
        inside = ",".join(f"{k}={_label(v)}" for k, v in labels.items())
        braces = f"{{{inside}}}" if inside else ""
        self.lines.append(f"{self.name}{braces} {_number(value)}")


def metrics_text(data: OperatorData) -> str:
    """Rounds, accepted and not-accepted updates, privacy spent and budgets, open alerts."""
    runs = data.runs()
    round_now = _Family("aicache_run_round", "Newest registered round of each run.")
    planned = _Family("aicache_run_rounds_planned", "Rounds each run was planned for.")
    accepted = _Family(
        "aicache_run_updates_accepted_total",
        "Client updates accepted into the run's models.",
        "counter",
    )
    refused = _Family(
        "aicache_run_updates_not_accepted_total",
        "Client updates asked for but not accepted (rejected, failed or late).",
        "counter",
    )
    for run in runs:
        labels = {"run": run["run_id"], "task": run["task"], "status": run["status"]}
        rows = run["rounds"]
        round_now.add(max((r["round"] for r in rows), default=0), **labels)
        if run["rounds_planned"] is not None:
            planned.add(run["rounds_planned"], **labels)
        accepted.add(sum(r["accepted"] for r in rows), **labels)
        refused.add(sum(r["not_accepted"] or 0 for r in rows), **labels)
    epsilon = _Family("aicache_privacy_epsilon", "ε spent on a federation's data per task.")
    budget = _Family("aicache_privacy_budget", "The ε budget runs stop at.")
    for row in data.privacy():
        labels = {"task": row["task"], "federation": row["federation"]}
        if row["epsilon"] is not None:
            epsilon.add(row["epsilon"], **labels)
        if row["budget"] is not None:
            budget.add(row["budget"], **labels)
    alerts = data.alerts()
    open_alerts = _Family("aicache_alerts_open", "Alerts not acknowledged.")
    open_alerts.add(sum(1 for a in alerts if not a["acknowledged"]))
    families = (round_now, planned, accepted, refused, epsilon, budget, open_alerts)
    return "\n".join(line for family in families for line in family.lines) + "\n"
