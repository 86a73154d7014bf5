"""The simulation report: ``metrics.json``, PNG plots and an ``index.html`` that shows them."""

from __future__ import annotations

import html
import json
import math
from pathlib import Path
from typing import Any

from aicache.privacy.accounting import SamplingKind
from aicache.privacy.record import PrivacyRecord
from aicache.simulation.runner import SimulationOutcome, arms

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
        "untrained": {"top1": outcome.initial.get("top1"), "top3": outcome.initial.get("top3")},
        "registry_versions": outcome.versions,
        "seconds": outcome.seconds,
    }
    document.update(arms(outcome))
    document["per_round"] = [
        {
            "round": r.round,
            "top1": r.evaluate_metrics.get("top1"),
            "top3": r.evaluate_metrics.get("top3"),
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


def _plots(document: dict[str, Any], out: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = []
    rounds = document["per_round"]
    fig, ax = plt.subplots(figsize=(7, 4))
    untrained = document.get("untrained") or {}
    start = [] if untrained.get("top1") is None else [(0, untrained)]  # round 0: the initial model
    points = [*start, *((r["round"], r) for r in rounds)]
    xs = [x for x, _ in points]
    for metric, style in (("top1", "-o"), ("top3", "-s")):
        ax.plot(xs, [p[metric] for _, p in points], style, label=f"federated {metric}")
        ax.axhline(document["centralized"][metric], linestyle="--", linewidth=1, color="grey")
    ax.set_xlabel("round")
    ax.set_ylabel("accuracy on clients' test splits (macro)")
    ax.set_title(f"{document['task']}: learning curve (dashed: centralized)")
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
        values = {p["client"]: p["top1"] for p in document[arm]["per_client"]}
        xs_arm = [i + (index - 1.5) * width for i in range(len(clients))]
        ax.bar(xs_arm, [values.get(c) or 0 for c in clients], width, label=ARM_LABELS[arm])
    ax.set_xticks(range(len(clients)), clients, rotation=60, ha="right", fontsize=8)
    ax.set_ylabel("top-1 on the client's test split")
    ax.set_title("per client, by arm")
    ax.set_ylim(0, 1)
    ax.legend(fontsize=7, loc="upper left", ncol=2)
    fig.tight_layout()
    fig.savefig(out / "clients.png", dpi=110)
    plt.close(fig)
    names.append("clients.png")
    return names


def privacy_text(privacy: dict[str, Any] | PrivacyRecord) -> str:
    """One line on the run's differential privacy (its stored or typed record)."""
    record = privacy if isinstance(privacy, PrivacyRecord) else PrivacyRecord.from_dict(privacy)
    if not record.enabled:
        return "no differential privacy in this run"
    sampling = dict(record.sampling or {})
    sampled = (
        f"each of {sampling['population']} clients with chance {sampling['rate']:g} a round"
        if SamplingKind(sampling["kind"]) is SamplingKind.POISSON
        else f"{sampling['size']} of {sampling['population']} clients a round"
    )
    overall = record.federation_epsilon
    return (
        f"{record.dp} DP, Gaussian noise z = {record.noise_multiplier:.3f}, clip "
        f"C = {record.clip:g}, {sampled}: "
        f"ε = {record.epsilon:.3f} at δ = {record.delta:g} ({record.accountant})"
        + (
            f"; ε on this federation over all runs: {overall:.3f}"
            if overall is not None and overall != record.epsilon
            else ""
        )
    )


_STYLE = "body{font-family:sans-serif;max-width:60em;margin:2em auto}td,th{padding:.3em 1em}"


def _html(document: dict[str, Any], images: list[str]) -> str:
    rows = "".join(
        f"<tr><td>{html.escape(ARM_LABELS[arm])}</td>"
        f"<td>{document[arm]['top1']:.3f}</td><td>{document[arm]['top3']:.3f}</td></tr>"
        for arm in ARMS
    )
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
<table><tr><th>arm</th><th>top-1</th><th>top-3</th></tr>{rows}</table>
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
