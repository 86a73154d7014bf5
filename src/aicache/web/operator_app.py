"""The operator's dashboard: pages, the JSON API (``/api/v1``) and ``/metrics``.

Every request needs the federation's dashboard token (:mod:`aicache.web.auth`).
The one thing the dashboard changes is which alerts are acknowledged.
Answers that read the registry run on the event loop's thread, which keeps
one registry open (see :meth:`OperatorData.registry`); the node list, which
may ask the SuperLink, runs in a worker thread.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import FastAPI, HTTPException, Query
from fastapi.responses import HTMLResponse, PlainTextResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles

from aicache.deploy.server import ServerDirectory
from aicache.web.auth import require_token
from aicache.web.operator_data import API, OperatorData
from aicache.web.pages import page
from aicache.web.prometheus import metrics_text
from aicache.web.serve import STATIC, add_server_timing

PAGES = {
    "/runs": "Runs",
    "/versions": "Model versions",
    "/privacy": "Privacy budget",
    "/nodes": "Nodes",
    "/alerts": "Alerts",
}
"""Each page's path and name, in the navigation's order."""
PAGE_VERSIONS = 100
"""How many versions of each task the versions page shows (``dashboard.js`` asks for them)."""


def operator_app(server: ServerDirectory, token: str, *, tls: bool = False) -> FastAPI:
    """The dashboard of the federation in ``server``, open to holders of ``token``."""
    data = OperatorData(server)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        # Read everything once before the first visitor: imports, the registry and
        # every signature check happen here, not in the first page load.
        data.runs()
        data.versions(PAGE_VERSIONS)
        data.privacy()
        data.alerts()
        yield
        data.close()  # the registry the event loop's thread held open

    app = FastAPI(
        lifespan=lifespan,
        title=f"aicache federation {server.name!r}",
        version="1",
        docs_url=None,
        redoc_url=None,
        openapi_url=f"{API}/openapi.json",
    )
    add_server_timing(app)  # innermost: it times the answer, the token check wraps it
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
    async def runs() -> list[dict[str, Any]]:
        """Every run, newest first: status, plan, and per round the clients asked and
        accepted, seconds, the task's headline metrics and ε."""
        return data.runs()

    @app.get(f"{API}/versions")
    async def versions(limit: Annotated[int, Query(ge=0)] = 0) -> list[dict[str, Any]]:
        """Per task: the newest ``limit`` versions (0: all), newest first, with lineage,
        metrics, signature status and privacy record; ``count`` is how many there are."""
        return data.versions(limit or None)

    @app.get(f"{API}/privacy")
    async def privacy() -> list[dict[str, Any]]:
        """Per task and federation: ε spent, its budget, and the ledger's history."""
        return data.privacy()

    @app.get(f"{API}/nodes")
    def nodes() -> dict[str, Any]:
        """Enrolled nodes (name, id, last round, revoked) and keys Flower knows that were not
        enrolled."""
        return data.nodes()

    @app.get(f"{API}/alerts")
    async def alerts() -> list[dict[str, Any]]:
        """Failed or halted runs, updates not accepted, unknown nodes, expiring certificates."""
        return data.alerts()

    @app.post(f"{API}/alerts/{{alert_id:path}}/ack")
    async def acknowledge(alert_id: str) -> dict[str, Any]:
        """Acknowledge an alert (the one change the dashboard makes)."""
        if not data.acknowledge(alert_id):
            raise HTTPException(404, f"no current alert {alert_id!r}")
        return {"acknowledged": alert_id}

    @app.get("/metrics", response_class=PlainTextResponse)
    async def metrics() -> PlainTextResponse:
        """Prometheus' text format."""
        return PlainTextResponse(metrics_text(data), media_type="text/plain; version=0.0.4")

    return app
