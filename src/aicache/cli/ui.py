"""``aicache ui``: the developer's own page in the browser, on loopback only."""

from __future__ import annotations

from typing import Annotated

import typer

from aicache.cli.console import out

LOOPBACK = "127.0.0.1"


def ui(
    port: Annotated[int, typer.Option("--port", help="The page's port (on 127.0.0.1).")] = 8081,
) -> None:
    """Your cache, models and privacy report in the browser; clear, prune, export, forget."""
    from aicache.local.paths import aicache_home
    from aicache.web.auth import new_token
    from aicache.web.developer_app import developer_app
    from aicache.web.serve import check_free, check_port, serve, url

    check_port(port)
    check_free(LOOPBACK, port)
    # A fresh token each time: other users of this machine can reach loopback ports too.
    token = new_token()
    app = developer_app(aicache_home(), token)
    address = url(LOOPBACK, port, tls=False)
    out.print(f"Your aicache page (this machine only; Ctrl-C stops it): {address}/")
    out.print(f"Open: {address}/?token={token}", soft_wrap=True, highlight=False)
    serve(app, LOOPBACK, port)
