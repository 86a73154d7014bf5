"""What the operator's dashboard shows, read from the registry and the node book.

Every function returns JSON-ready data (the API's answers); the pages draw
them. Tasks are shown through their spec's declared headline metrics, so a
new task appears with no code here. Nothing about a developer is read that
the federation's privacy mode does not already release: versions carry the
aggregate's metrics, the node book names, ids and last rounds.
"""

from __future__ import annotations

import json
import math
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aicache.deploy.server import ServerDirectory
from aicache.errors import AicacheError
from aicache.registry import ModelRegistry, ModelVersion, RunRecord
from aicache.security.federation_dir import CA_CERT, SERVER_CERT, SIGNING_PUB
from aicache.tasks.spec import get_spec

API = "/api/v1"
"""The JSON API's versioned prefix."""
EXPIRY_WARNING_S = 30 * 86400  # certificates expiring sooner raise an alert


def finite(value: Any) -> float | str | None:
    """A number for JSON: infinity as ``"inf"`` (no DP: no finite ε), else the float."""
    if value is None or isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return "inf" if math.isinf(value) else None if math.isnan(value) else float(value)


def headline(task: str) -> list[dict[str, Any]]:
    """The task's headline metrics as the pages name them (``eval.`` keys in versions)."""
    try:
        metrics = get_spec(task).headline
    except KeyError:  # a task this installation does not know: show nothing per-task
        return []
    return [
        {"key": f"eval.{m.name}", "label": m.label, "higher_is_better": m.higher_is_better}
        for m in metrics
    ]


def _per_round(run: RunRecord) -> int | None:
    """How many clients each round of ``run`` asks, from its plan (``None`` if unknown)."""
    selection = run.spec.get("plan", {}).get("selection", {})
    try:
        population = int(selection.get("min_available", 0))
        fraction = float(selection.get("fraction", 1.0))
        least = int(selection.get("min_clients", 1))
    except (TypeError, ValueError):
        return None
    if population < 1:
        return None
    return min(population, max(int(population * fraction), least))


def _privacy_fields(privacy: dict[str, Any]) -> dict[str, Any]:
    return {
        "dp": privacy.get("dp", "off"),
        "epsilon": finite(privacy.get("epsilon")),
        "delta": finite(privacy.get("delta")),
        "mechanism": privacy.get("mechanism"),
        "z": finite(privacy.get("noise_multiplier")),
        "clip": finite(privacy.get("clip")),
        "federation": privacy.get("federation"),
        "federation_epsilon": finite(privacy.get("federation_epsilon")),
        "budget": finite(privacy.get("budget")),
    }


def _round_rows(run: RunRecord, versions: list[ModelVersion]) -> list[dict[str, Any]]:
    planned = _per_round(run)
    previous = run.started_at
    rows = []
    for version in versions:
        rows.append(
            {
                "round": version.round,
                "version": version.version,
                "sampled": planned,
                "accepted": version.num_clients,
                "not_accepted": None if planned is None else max(0, planned - version.num_clients),
                "seconds": round(version.created_at - previous, 3),
                "metrics": {
                    k: finite(v) for k, v in version.metrics.items() if k.startswith("eval.")
                },
                "epsilon": finite(version.privacy.get("epsilon")),
                "at": version.created_at,
            }
        )
        previous = version.created_at
    return rows


@dataclass
class OperatorData:
    """The dashboard's reads of one federation directory.

    Answers are kept until the registry changes: a page load then costs
    nothing, and a live run's new round is read once for every page. A
    version's signature is checked once (versions and their signatures never
    change).

    Parameters
    ----------
    server
        The federation directory (its registry, node book and certificates).
    flower_ttl
        Seconds a list of Flower's nodes is reused: asking the SuperLink takes a
        ``flwr`` process, too slow for every page load.
    """

    server: ServerDirectory
    flower_ttl: float = 15.0
    _flower: tuple[float, list[dict[str, Any]]] | None = field(default=None, repr=False)
    _answers: dict[str, tuple[tuple[Any, ...], Any]] = field(default_factory=dict, repr=False)
    _checked: dict[tuple[Any, ...], str] = field(default_factory=dict, repr=False)
    _threads: threading.local = field(default_factory=threading.local, repr=False)

    @property
    def acks_file(self) -> Path:
        """Where acknowledged alerts are kept (the one state the dashboard changes)."""
        return self.server.root / "dashboard-acks.json"

    def registry(self) -> ModelRegistry:
        """The federation's registry, open for the life of the calling thread.

        Opening a registry writes to it (its schema and identity are checked and
        set), which would count as a change: each of the server's threads opens
        it once and keeps it.
        """
        kept: ModelRegistry | None = getattr(self._threads, "registry", None)
        if kept is None:
            kept = ModelRegistry(self.server.registry)
            self._threads.registry = kept
        return kept

    def close(self) -> None:
        """Close the registry the calling thread holds open, if any."""
        kept: ModelRegistry | None = getattr(self._threads, "registry", None)
        if kept is not None:
            kept.close()
            self._threads.registry = None

    def _state(self) -> tuple[Any, ...]:
        """What changes whenever the registry does: its database file and its WAL.

        Every commit appends to the write-ahead log (a checkpoint rewrites the
        database), so their sizes and times differ after any write.
        """
        state: list[Any] = []
        for name in ("registry.db", "registry.db-wal"):
            try:
                found = (self.server.registry / name).stat()
            except FileNotFoundError:
                state.append(None)
                continue
            state.append((found.st_ino, found.st_size, found.st_mtime_ns))
        return tuple(state)

    def _kept(self, name: str, compute: Any) -> Any:
        state = self._state()
        kept = self._answers.get(name)
        if kept is not None and kept[0] == state:
            return kept[1]
        answer = compute()
        self._answers[name] = (state, answer)
        return answer

    def _all(self) -> tuple[list[RunRecord], list[ModelVersion]]:
        def read() -> tuple[list[RunRecord], list[ModelVersion]]:
            registry = self.registry()
            return registry.all_runs(), registry.versions()

        found: tuple[list[RunRecord], list[ModelVersion]] = self._kept("all", read)
        return found

    # Runs ------------------------------------------------------------------

    def runs(self) -> list[dict[str, Any]]:
        """Every run, newest first, each with its rounds and the task's headline metrics."""
        found: list[dict[str, Any]] = self._kept("runs", self._runs)
        return found

    def _runs(self) -> list[dict[str, Any]]:
        records, versions = self._all()
        by_run: dict[str, list[ModelVersion]] = {}
        for version in versions:
            by_run.setdefault(version.run_id, []).append(version)
        answer = []
        for run in records:
            ordered = sorted(by_run.get(run.run_id, []), key=lambda v: v.version)
            plan = run.spec.get("plan", {})
            answer.append(
                {
                    "run_id": run.run_id,
                    "task": run.task,
                    "status": run.status,
                    "message": run.message,
                    "started_at": run.started_at,
                    "finished_at": run.finished_at,
                    "federation": run.spec.get("federation"),
                    "rounds_planned": plan.get("rounds"),
                    "strategy": plan.get("strategy", {}).get("name"),
                    "headline": headline(run.task),
                    "rounds": _round_rows(run, ordered),
                }
            )
        return answer

    # Versions ---------------------------------------------------------------

    def versions(self, limit: int | None = None) -> list[dict[str, Any]]:
        """Per task: its newest ``limit`` versions (all: ``None``), newest first, with
        lineage, metrics, signature status and privacy record."""
        found: list[dict[str, Any]] = self._kept(f"versions:{limit}", lambda: self._versions(limit))
        return found

    def _versions(self, limit: int | None) -> list[dict[str, Any]]:
        key = self._verifying_key()
        _, versions = self._all()
        tasks = sorted({v.task for v in versions})
        shown = {task: [v for v in reversed(versions) if v.task == task][:limit] for task in tasks}
        registry = self.registry()
        pinned = {task: registry.pinned(task) for task in tasks}
        status = {
            (v.task, v.version): self._signature(registry, v, key)
            for rows in shown.values()
            for v in rows
        }
        answer = []
        for task in tasks:
            rows = shown[task]
            serving = pinned[task] or rows[0]
            answer.append(
                {
                    "task": task,
                    "headline": headline(task),
                    "count": sum(1 for v in versions if v.task == task),
                    "serving": serving.version,
                    "pinned": pinned[task] is not None,
                    "versions": [
                        {
                            "version": v.version,
                            "parent": v.parent,
                            "round": v.round,
                            "run_id": v.run_id,
                            "created_at": v.created_at,
                            "strategy": v.strategy,
                            "clients": v.num_clients,
                            "metrics": {
                                k: finite(x) for k, x in v.metrics.items() if k.startswith("eval.")
                            },
                            "signature": status[(v.task, v.version)],
                            "privacy": _privacy_fields(v.privacy),
                            "note": v.note,
                        }
                        for v in rows
                    ],
                }
            )
        return answer

    def _signature(self, registry: ModelRegistry, version: ModelVersion, key: Any) -> str:
        signed = registry.signature(version.task, version.version)
        if signed is None or key is None:
            return _signature_status(version, signed, key)
        remembered = (version.task, version.version, version.sha256, *signed)
        if remembered not in self._checked:
            self._checked[remembered] = _signature_status(version, signed, key)
        return self._checked[remembered]

    def _verifying_key(self) -> Any:
        from aicache.security import signing

        path = self.server.path(SIGNING_PUB)
        try:
            return signing.load_public(path.read_bytes())
        except (OSError, ValueError, signing.SignatureError):
            return None

    # Privacy ----------------------------------------------------------------

    def privacy(self) -> list[dict[str, Any]]:
        """Per task and federation: ε spent against the budget, and the ledger's history."""
        found: list[dict[str, Any]] = self._kept("privacy", self._privacy)
        return found

    def _privacy(self) -> list[dict[str, Any]]:
        _, versions = self._all()
        tasks = sorted({v.task for v in versions})
        registry = self.registry()
        ledgers = {task: registry.ledger(task) for task in tasks}
        answer = []
        for task in tasks:
            federations = sorted({str(row["federation"]) for row in ledgers[task]})
            for federation in federations:
                rows = [row for row in ledgers[task] if row["federation"] == federation]
                runs = {row["run_id"] for row in rows}
                released = [
                    v
                    for v in versions
                    if v.task == task
                    and v.run_id in runs
                    and v.privacy.get("federation", federation) == federation
                ]
                answer.append(_budget_row(task, federation, rows, released))
        return answer

    # Nodes ------------------------------------------------------------------

    def nodes(self) -> dict[str, Any]:
        """Enrolled nodes and, while the SuperLink runs, keys Flower knows that were not."""
        flower = self._flower_nodes()
        if flower is not None:
            return {"checked_with_flower": True, "nodes": flower}
        with self.server.nodes() as book:
            records = book.all()
        return {
            "checked_with_flower": False,
            "nodes": [
                {
                    "name": r.name,
                    "node_id": r.node_id,
                    "unknown": False,
                    "status": "revoked" if r.revoked_at else "enrolled",
                    "enrolled_at": r.enrolled_at,
                    "revoked_at": r.revoked_at,
                    "last_round": r.last_round,
                    "last_run": r.last_run,
                    "last_seen": r.last_seen,
                }
                for r in records
            ],
        }

    def _flower_nodes(self) -> list[dict[str, Any]] | None:
        if self.server.superlink.running() is None:
            return None
        now = time.monotonic()
        if self._flower is not None and now - self._flower[0] < self.flower_ttl:
            return self._flower[1]
        try:
            rows = self.server.node_list()
        except AicacheError:
            return None
        self._flower = (now, rows)
        return rows

    # Alerts -----------------------------------------------------------------

    def alerts(self) -> list[dict[str, Any]]:
        """Failed or halted runs, rounds with updates not accepted, unknown nodes, expiring
        certificates; each with an id and whether it was acknowledged."""
        found: list[dict[str, Any]] = []
        for run in self.runs():
            if run["status"] == "failed":
                found.append(
                    _alert(
                        "run-failed",
                        run["run_id"],
                        f"run {run['run_id']} of "
                        f"{run['task']} failed: {run['message'] or 'no message'}",
                        run["finished_at"],
                    )
                )
            elif run["message"] and "stopped" in run["message"]:
                found.append(
                    _alert(
                        "run-halted",
                        run["run_id"],
                        f"run {run['run_id']} of {run['task']} halted: {run['message']}",
                        run["finished_at"],
                    )
                )
            for row in run["rounds"]:
                if row["not_accepted"]:
                    found.append(
                        _alert(
                            "updates-not-accepted",
                            f"{run['run_id']}/{row['round']}",
                            f"round {row['round']} of run {run['run_id']}: {row['not_accepted']} "
                            f"of {row['sampled']} asked update(s) not accepted (rejected by "
                            "validation, failed or late)",
                            row["at"],
                        )
                    )
        for node in self.nodes()["nodes"]:
            if node["unknown"]:
                found.append(
                    _alert(
                        "unknown-node",
                        str(node["node_id"]),
                        f"node key {node['node_id']} is registered with Flower but "
                        "was not enrolled by aicache",
                        None,
                    )
                )
        found.extend(self._certificate_alerts())
        acked = self.acknowledged()
        for alert in found:
            alert["acknowledged"] = alert["id"] in acked
        return found

    def _certificate_alerts(self) -> list[dict[str, Any]]:
        from cryptography import x509

        alerts = []
        for name in (SERVER_CERT, CA_CERT):
            try:
                certificate = x509.load_pem_x509_certificate(self.server.path(name).read_bytes())
            except (OSError, ValueError):
                continue
            ends = certificate.not_valid_after_utc.timestamp()
            left = ends - time.time()
            if left < EXPIRY_WARNING_S:
                said = "has expired" if left < 0 else f"expires in {left / 86400:.0f} day(s)"
                alerts.append(
                    _alert(
                        "certificate",
                        name,
                        f"the certificate {name} {said}: "
                        "`aicache server rotate-certs` issues a new one",
                        ends,
                    )
                )
        return alerts

    def acknowledged(self) -> set[str]:
        """The ids of acknowledged alerts."""
        try:
            value = json.loads(self.acks_file.read_text())
        except (OSError, ValueError):
            return set()
        return {str(each) for each in value} if isinstance(value, list) else set()

    def acknowledge(self, alert_id: str) -> bool:
        """Acknowledge one current alert; ``False`` if there is no such alert."""
        if alert_id not in {alert["id"] for alert in self.alerts()}:
            return False
        acked = sorted(self.acknowledged() | {alert_id})
        self.acks_file.write_text(json.dumps(acked) + "\n")
        return True


def _alert(kind: str, subject: str, text: str, at: float | None) -> dict[str, Any]:
    return {"id": f"{kind}:{subject}", "kind": kind, "text": text, "at": at}


def _budget_row(
    task: str, federation: str, rows: list[dict[str, Any]], released: list[ModelVersion]
) -> dict[str, Any]:
    """The federation's ε for ``task`` (the newest released version's composed ε)."""
    newest = max(released, key=lambda v: v.created_at, default=None)
    privacy = {} if newest is None else newest.privacy
    without_dp = any(math.isinf(float(row["epsilon"])) for row in rows)
    spent = math.inf if without_dp else privacy.get("federation_epsilon", privacy.get("epsilon"))
    return {
        "task": task,
        "federation": federation,
        "epsilon": finite(spent),
        "delta": finite(privacy.get("delta")),
        "budget": finite(privacy.get("budget")),
        "history": [
            {
                "run_id": row["run_id"],
                "rounds": row["rounds"],
                "epsilon": finite(row["epsilon"]),
                "delta": finite(row["delta"]),
                "mechanism": row["spend"].get("mode"),
                "at": row["updated_at"],
            }
            for row in rows
        ],
        "curve": [
            {
                "at": v.created_at,
                "epsilon": finite(v.privacy.get("federation_epsilon", v.privacy.get("epsilon"))),
            }
            for v in sorted(released, key=lambda v: v.created_at)
        ],
    }


def _signature_status(version: ModelVersion, signed: tuple[bytes, bytes] | None, key: Any) -> str:
    """``valid``, ``invalid`` (altered, or by another key) or ``unsigned``."""
    if signed is None:
        return "unsigned"
    if key is None:
        return "not checked"
    manifest, signature = signed
    from cryptography.exceptions import InvalidSignature

    try:
        key.verify(signature, manifest)
        vouched = json.loads(manifest)
    except (InvalidSignature, ValueError):
        return "invalid"
    if not isinstance(vouched, dict):
        return "invalid"
    matches = vouched.get("sha256") == version.sha256 and vouched.get("task") == version.task
    return "valid" if matches else "invalid"
