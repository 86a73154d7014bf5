"""Running a web application: uvicorn on an address, with TLS beyond loopback."""

from __future__ import annotations

import ipaddress
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from fastapi import FastAPI, Request, Response

from aicache.errors import AicacheError

STATIC = Path(__file__).parent / "static"
"""The pages, scripts, style and the vendored chart library."""


@dataclass(frozen=True, slots=True)
class Tls:
    """The certificate and key a server presents."""

    certificate: Path
    key: Path


def add_server_timing(app: FastAPI) -> None:
    """Give every answer a ``Server-Timing`` header: the milliseconds the server spent on it.

    Browsers' developer tools show it, and the page-load benchmark reads it.
    """

    @app.middleware("http")
    async def timed(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        started = time.perf_counter()
        response = await call_next(request)
        spent = (time.perf_counter() - started) * 1000
        response.headers["Server-Timing"] = f"app;dur={spent:.2f}"
        return response


def is_loopback(host: str) -> bool:
    """Whether ``host`` (an address or ``localhost``) only reaches this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_port(port: int) -> None:
    """Raise a usage error unless ``port`` is a TCP port number."""
    if not 1 <= port <= 65535:
        raise AicacheError(f"--port {port} is not a TCP port (1 to 65535)", exit_code=2)


def check_free(host: str, port: int) -> None:
    """Raise a clear error if ``host:port`` cannot be listened on (taken, or no such address)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise AicacheError(
                f"cannot listen on {host}:{port}: {exc.strerror or exc}",
                hint="Choose another --port (or --listen address).",
            ) from exc


def url(host: str, port: int, *, tls: bool) -> str:
    """The address a browser opens."""
    shown = f"[{host}]" if ":" in host else host
    return f"{'https' if tls else 'http'}://{shown}:{port}"


def serve(app: FastAPI, host: str, port: int, tls: Tls | None = None) -> None:
    """Serve ``app`` until interrupted (Ctrl-C or SIGTERM end it cleanly)."""
    import uvicorn

    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
        ssl_certfile=None if tls is None else str(tls.certificate),
        ssl_keyfile=None if tls is None else str(tls.key),
        lifespan="on",  # the dashboard closes its registry on the way out
        ws="none",  # no websockets: and uvicorn's would import a deprecated module
    )
    uvicorn.Server(config).run()
