"""The developer's page (``aicache ui``): the cache, the models, what left, and actions.

Loopback only, and still behind a token printed at start: other users of
the same machine can reach a loopback port too.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import Body, FastAPI, HTTPException
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles

from aicache.web.auth import require_token
from aicache.web.developer_data import DeveloperData
from aicache.web.operator_data import API
from aicache.web.pages import page
from aicache.web.serve import STATIC, add_server_timing

PAGES = {"/cache": "Cache", "/models": "Models", "/privacy": "What left this machine"}
"""Each page's path and name, in the navigation's order."""
FORGET_WORD = "forget"
"""What the forget action's body must confirm with (the page asks first)."""


def developer_app(home: Path, token: str) -> FastAPI:
    """The page over the aicache home ``home``, open to holders of ``token``."""
    data = DeveloperData(home)
    app = FastAPI(
        title="aicache",
        version="1",
        docs_url=None,
        redoc_url=None,
        openapi_url=f"{API}/openapi.json",
    )
    add_server_timing(app)  # innermost: it times the answer, the token check wraps it
    require_token(app, token, secure_cookie=False)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/", include_in_schema=False)
    def home_page() -> RedirectResponse:
        return RedirectResponse("/cache", 303)

    def add_page(path: str) -> None:
        def show() -> HTMLResponse:
            return page("aicache", path.strip("/"), PAGES, "ui.js", live=False)

        app.get(path, include_in_schema=False, name=path.strip("/"))(show)

    for path in PAGES:
        add_page(path)

    @app.get(f"{API}/cache")
    def cache() -> dict[str, Any]:
        """Hits (exact, semantic), savings per tool and week, the largest and oldest entries."""
        return data.overview()

    @app.get(f"{API}/models")
    def models() -> dict[str, Any]:
        """The model each task uses, its version and origin; suggestions when there are any."""
        return data.models()

    @app.get(f"{API}/privacy")
    def privacy() -> dict[str, Any]:
        """What left this machine per task and run, with ε (``aicache privacy report``)."""
        return data.privacy()

    @app.post(f"{API}/actions/clear")
    def clear() -> dict[str, Any]:
        """Delete every cache entry (``aicache clear``)."""
        return data.clear()

    @app.post(f"{API}/actions/prune")
    def prune() -> dict[str, Any]:
        """Delete expired and old entries (``aicache prune``)."""
        return data.prune()

    @app.get(f"{API}/actions/export")
    def export() -> JSONResponse:
        """Everything kept about you as one JSON file (``aicache privacy export``)."""
        return JSONResponse(
            data.export(),
            headers={"Content-Disposition": 'attachment; filename="aicache-export.json"'},
        )

    @app.post(f"{API}/actions/forget")
    def forget_all(confirm: str = Body("", embed=True)) -> dict[str, Any]:
        """Erase everything kept about you (``aicache privacy forget``); needs
        ``{"confirm": "forget"}``."""
        if confirm != FORGET_WORD:
            raise HTTPException(400, f'confirm with {{"confirm": "{FORGET_WORD}"}}: nothing erased')
        return data.forget()

    @app.post(f"{API}/actions/leave")
    def leave() -> dict[str, Any]:
        """Stop this machine's federation node (``aicache leave``)."""
        return data.leave()

    return app
