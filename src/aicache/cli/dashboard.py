"""``aicache server dashboard``: the operator's web dashboard of a federation directory."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from aicache.cli.console import out
from aicache.errors import AicacheError


def dashboard(
    directory: Annotated[
        Path | None,
        typer.Argument(
            help="The federation directory (default: current directory).", show_default=False
        ),
    ] = None,
    dir_option: Annotated[
        Path | None, typer.Option("--dir", help="The federation directory (same as DIR).")
    ] = None,
    listen: Annotated[
        str,
        typer.Option(
            "--listen",
            help="Address to listen on; beyond loopback it serves TLS with the server certificate.",
        ),
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="The dashboard's port.")] = 8080,
    token_file: Annotated[
        Path | None,
        typer.Option(
            "--token-file", help="The access token's file (default: DIR/dashboard.token)."
        ),
    ] = None,
) -> None:
    """Serve the federation's dashboard: runs, versions, privacy budget, nodes, alerts."""
    from aicache.cli.server import _server
    from aicache.security.federation_dir import SERVER_CERT, SERVER_KEY
    from aicache.web.auth import TOKEN_FILE, read_token
    from aicache.web.operator_app import operator_app
    from aicache.web.serve import Tls, check_free, check_port, is_loopback, serve, url

    check_port(port)
    server = _server(directory, dir_option)
    token = read_token(token_file or server.root / TOKEN_FILE)
    tls = None
    if not is_loopback(listen):
        # Beyond this machine the token must not travel in the clear.
        tls = Tls(server.path(SERVER_CERT), server.path(SERVER_KEY))
        for path in (tls.certificate, tls.key):
            if not path.exists():
                raise AicacheError(
                    f"--listen {listen} needs TLS, but {path} is missing",
                    hint="Listen on 127.0.0.1, or restore the federation's server certificate.",
                )
    check_free(listen, port)
    app = operator_app(server, token, tls=tls is not None)
    address = url(listen, port, tls=tls is not None)
    out.print(f"Dashboard of {server.name!r} at {address}/ (Ctrl-C stops it).")
    out.print(f"Open: {address}/?token={token}", soft_wrap=True, highlight=False)
    if tls is not None:
        out.print(f"TLS with {tls.certificate}; browsers trust it through {server.trusted_ca}.")
    serve(app, listen, port, tls)


def register(server_app: typer.Typer) -> None:
    """Add ``dashboard`` to the ``server`` command group."""
    server_app.command("dashboard")(dashboard)
