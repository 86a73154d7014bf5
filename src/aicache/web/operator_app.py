"""The operator's dashboard: pages, the JSON API (``/api/v1``) and ``/metrics``.

Every request needs the federation's dashboard token (:mod:`aicache.web.auth`).
The one thing the dashboard changes is which alerts are acknowledged.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, HTTPException
from fastapi.responses import HTMLResponse, PlainTextResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles

from aicache.deploy.server import ServerDirectory
from aicache.web.auth import require_token
from aicache.web.operator_data import API, OperatorData
from aicache.web.pages import page
from aicache.web.prometheus import metrics_text
from aicache.web.serve import STATIC

PAGES = {
    "/runs": "Runs",
    "/versions": "Model versions",
    "/privacy": "Privacy budget",
    "/nodes": "Nodes",
    "/alerts": "Alerts",
}
"""Each page's path and name, in the navigation's order."""


def operator_app(server: ServerDirectory, token: str, *, tls: bool = False) -> FastAPI:
    """The dashboard of the federation in ``server``, open to holders of ``token``."""
    data = OperatorData(server)
    app = FastAPI(
        title=f"aicache federation {server.name!r}",
        version="1",
        docs_url=None,
        redoc_url=None,
        openapi_url=f"{API}/openapi.json",
    )
    require_token(app, token, secure_cookie=tls)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    title = f"aicache · {server.name}"

    @app.get("/", include_in_schema=False)
    def home() -> RedirectResponse:
        return RedirectResponse("/runs", 303)

    def add_page(path: str) -> None:
        def show() -> HTMLResponse:
            return page(title, path.strip("/"), PAGES, "dashboard.js", live=True)

        app.get(path, include_in_schema=False, name=path.strip("/"))(show)

    for path in PAGES:
        add_page(path)

    @app.get(f"{API}/runs")
    def runs() -> list[dict[str, Any]]:
        """Every run, newest first: status, plan, and per round the clients asked and
        accepted, seconds, the task's headline metrics and ε."""
        return data.runs()

    @app.get(f"{API}/versions")
    def versions() -> list[dict[str, Any]]:
        """Per task: versions newest first with lineage, metrics, signature and privacy."""
        return data.versions()

    @app.get(f"{API}/privacy")
    def privacy() -> list[dict[str, Any]]:
        """Per task and federation: ε spent, its budget, and the ledger's history."""
        return data.privacy()

    @app.get(f"{API}/nodes")
    def nodes() -> dict[str, Any]:
        """Enrolled nodes (name, id, last round, revoked) and keys Flower knows that were not
        enrolled."""
        return data.nodes()

    @app.get(f"{API}/alerts")
    def alerts() -> list[dict[str, Any]]:
        """Failed or halted runs, updates not accepted, unknown nodes, expiring certificates."""
        return data.alerts()

    @app.post(f"{API}/alerts/{{alert_id:path}}/ack")
    def acknowledge(alert_id: str) -> dict[str, Any]:
        """Acknowledge an alert (the one change the dashboard makes)."""
        if not data.acknowledge(alert_id):
            raise HTTPException(404, f"no current alert {alert_id!r}")
        return {"acknowledged": alert_id}

    @app.get("/metrics", response_class=PlainTextResponse)
    def metrics() -> PlainTextResponse:
        """Prometheus' text format."""
        return PlainTextResponse(metrics_text(data), media_type="text/plain; version=0.0.4")

    return app
