"""The simulation report: ``metrics.json``, PNG plots and an ``index.html`` that shows them."""

from __future__ import annotations

import html
import json
import math
from pathlib import Path
from typing import Any

from aicache.federation.privacy_view import PrivacyRecord, privacy_record
from aicache.simulation.runner import SimulationOutcome, arms
from aicache.tasks.spec import Comparison, Metric, get_spec

ARMS = ("federated", "personalized", "local_only", "centralized")
ARM_LABELS = {
    "federated": "federated (global model)",
    "personalized": "personalised (global, fine-tuned locally)",
    "local_only": "local only (each client alone)",
    "centralized": "centralized (pooled data, reference)",
}


def _finite(value: Any) -> Any:
    """``value`` with every NaN or infinity replaced by ``None`` (JSON has neither)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def metrics_document(outcome: SimulationOutcome) -> dict[str, Any]:
    """The content of ``metrics.json``."""
    plan = outcome.plan
    headline = get_spec(plan.task).headline
    document: dict[str, Any] = {
        "task": plan.task,
        "clients": len(outcome.names),
        "rounds": plan.rounds,
        "data": outcome.data,
        "run_id": outcome.run_id,
        "strategy": {"name": plan.strategy.name, **plan.strategy.resolved()},
        "selection": {
            "fraction": plan.selection.fraction,
            "min_clients": plan.selection.min_clients,
        },
        "training": {
            "learning_rate": plan.learning_rate,
            "local_epochs": plan.local_epochs,
            "batch_size": plan.batch_size,
            "seed": plan.seed,
        },
        "privacy": outcome.privacy,
        "stopped": outcome.stopped,
        "metrics": [
            {"name": m.name, "label": m.label, "higher_is_better": m.higher_is_better}
            for m in headline
        ],
        "untrained": {m.name: outcome.initial.get(m.name) for m in headline},
        "registry_versions": outcome.versions,
        "seconds": outcome.seconds,
    }
    document.update(arms(outcome))
    if outcome.comparison is not None:
        document["comparison"] = comparison_document(outcome.comparison)
    document["per_round"] = [
        {
            "round": r.round,
            **{m.name: r.evaluate_metrics.get(m.name) for m in headline},
            "loss": r.evaluate_metrics.get("loss"),
            "seconds": r.seconds,
            "accepted_updates": r.accepted,
            "rejected_updates": len(r.rejected),
            "version": r.version,
            "epsilon": r.epsilon,
        }
        for r in outcome.rounds
    ]
    return document


def comparison_document(comparison: Comparison) -> dict[str, Any]:
    """A task's comparison with its baseline as ``metrics.json`` keeps it."""
    return {
        "title": comparison.title,
        "x_label": comparison.x_label,
        "y_label": comparison.y_label,
        "baseline_label": comparison.baseline_label,
        "baseline": dict(comparison.baseline),
        "curves": [
            {
                "label": c.label,
                "xs": list(c.xs),
                "ys": list(c.ys),
                "point": None if c.point is None else list(c.point),
            }
            for c in comparison.curves
        ],
    }


def _comparison_plot(comparison: dict[str, Any], out: Path) -> str:
    """Draw the task's comparison (its curves, operating points marked) into ``comparison.png``."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 5))
    for curve in comparison["curves"]:
        (line,) = ax.plot(curve["xs"], curve["ys"], "-", label=curve["label"])
        if curve["point"] is not None:
            ax.plot(*curve["point"], "o", color=line.get_color(), markersize=8)
    ax.set_xlabel(comparison["x_label"])
    ax.set_ylabel(comparison["y_label"])
    ax.set_title(comparison["title"] + " (dots: the decisions taken)")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.legend(fontsize=8, loc="lower left")
    fig.tight_layout()
    fig.savefig(out / "comparison.png", dpi=110)
    plt.close(fig)
    return "comparison.png"


def _better(metric: Metric) -> str:
    return "higher is better" if metric.higher_is_better else "lower is better"


def _plots(document: dict[str, Any], out: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    headline = get_spec(document["task"]).headline
    first = headline[0]
    names = []
    rounds = document["per_round"]
    fig, ax = plt.subplots(figsize=(7, 4))
    untrained = document.get("untrained") or {}
    # round 0: the initial model
    start = [] if untrained.get(first.name) is None else [(0, untrained)]
    points = [*start, *((r["round"], r) for r in rounds)]
    xs = [x for x, _ in points]
    markers = ("-o", "-s", "-^", "-v", "-d")
    for metric, style in zip(headline, markers * len(headline), strict=False):
        ys = [math.nan if p[metric.name] is None else p[metric.name] for _, p in points]
        ax.plot(xs, ys, style, label=f"federated {metric.label}")
        reference = document["centralized"][metric.name]
        if reference is not None and math.isfinite(reference):
            ax.axhline(reference, linestyle="--", linewidth=1, color="grey")
    ax.set_xlabel("round")
    ax.set_ylabel(
        "; ".join(f"{m.label} ({_better(m)})" for m in headline) + " on clients' test splits"
    )
    ax.set_title(f"{document['task']}: learning curve (dashed: centralized)")
    if all(m.bounded for m in headline):
        ax.set_ylim(0, 1)
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "learning_curve.png", dpi=110)
    plt.close(fig)
    names.append("learning_curve.png")

    clients = [p["client"] for p in document["federated"]["per_client"]]
    fig, ax = plt.subplots(figsize=(max(7, 0.45 * len(clients) + 3), 4))
    width = 0.2
    for index, arm in enumerate(ARMS):
        values = {p["client"]: p[first.name] for p in document[arm]["per_client"]}
        xs_arm = [i + (index - 1.5) * width for i in range(len(clients))]
        heights = [_finite(values.get(c)) or 0 for c in clients]
        ax.bar(xs_arm, heights, width, label=ARM_LABELS[arm])
    ax.set_xticks(range(len(clients)), clients, rotation=60, ha="right", fontsize=8)
    ax.set_ylabel(f"{first.label} on the client's test split ({_better(first)})")
    ax.set_title("per client, by arm")
    if first.bounded:
        ax.set_ylim(0, 1)
    ax.legend(fontsize=7, loc="upper left", ncol=2)
    fig.tight_layout()
    fig.savefig(out / "clients.png", dpi=110)
    plt.close(fig)
    names.append("clients.png")
    if "comparison" in document:
        names.append(_comparison_plot(document["comparison"], out))
    return names


def privacy_text(privacy: dict[str, Any] | PrivacyRecord) -> str:
    """One line on the run's differential privacy (its stored or typed record)."""
    return privacy_record(privacy).describe()


_STYLE = "body{font-family:sans-serif;max-width:60em;margin:2em auto}td,th{padding:.3em 1em}"


def _cell(value: Any) -> str:
    return "–" if value is None or not math.isfinite(value) else f"{value:.3f}"


def _html(document: dict[str, Any], images: list[str]) -> str:
    headline = get_spec(document["task"]).headline
    rows = "".join(
        f"<tr><td>{html.escape(ARM_LABELS[arm])}</td>"
        + "".join(f"<td>{_cell(document[arm][m.name])}</td>" for m in headline)
        + "</tr>"
        for arm in ARMS
    )
    if "comparison" in document:  # the task's baseline, measured in the same run
        baseline = document["comparison"]
        rows += (
            f"<tr><td>baseline: {html.escape(baseline['baseline_label'])}</td>"
            + "".join(f"<td>{_cell(baseline['baseline'].get(m.name))}</td>" for m in headline)
            + "</tr>"
        )
    header = "".join(f'<th title="{_better(m)}">{html.escape(m.label)}</th>' for m in headline)
    pictures = "".join(f'<p><img src="{name}" alt="{name}"></p>' for name in images)
    title = html.escape(document["task"])
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>aicache simulation: {title}</title>
<style>{_STYLE}</style>
</head><body>
<h1>{html.escape(document["task"])}: {document["clients"]} clients, {document["rounds"]} rounds</h1>
<p>{html.escape(document["data"])}; strategy {html.escape(document["strategy"]["name"])};
privacy: {html.escape(privacy_text(document["privacy"]))}.</p>
<table><tr><th>arm</th>{header}</tr>{rows}</table>
{pictures}
<p>Every number comes from <a href="metrics.json">metrics.json</a>.</p>
</body></html>
"""


def write_report(outcome: SimulationOutcome, out: Path) -> dict[str, Any]:
    """Write ``metrics.json``, the plots and ``index.html`` into ``out``; return the metrics."""
    out.mkdir(parents=True, exist_ok=True)
    document = metrics_document(outcome)
    text = json.dumps(_finite(document), indent=2, allow_nan=False)
    (out / "metrics.json").write_text(text + "\n")
    images = _plots(document, out)
    (out / "index.html").write_text(_html(document, images))
    return document
