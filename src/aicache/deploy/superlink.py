"""``python -m aicache.deploy.superlink``: Flower's SuperLink, with the operator's APIs kept apart.

Flower 1.42 serves the Fleet API (SuperNodes), the Control API (``flwr``
commands: runs, node registration) and the Runtime API (the SuperExec and
ServerApp processes) from one FastAPI app on one port, and its Control API
has no user authentication outside Flower Enterprise. This entry point builds
that same app with Flower's own ``create_app`` and serves it on two listeners
of one uvicorn server, both with the federation's TLS certificate:

- the public listener (``--host``/``--port``), which developers' SuperNodes
  reach: it answers the Fleet API and nothing else;
- the operator listener, ``127.0.0.1:OPERATOR_PORT``: it answers the Control
  and Runtime routes a federation uses, to processes of the operator's own
  account (on Linux the account behind a new connection is read from
  ``/proc/net/tcp`` and a stranger's connection is closed; elsewhere any
  local process is let through).
  aicache's ``server`` commands, Flower's SuperExec and the ServerApp use it.

A gate in front of the app decides by the listener a request arrived on
(the ASGI ``server`` address), not by the client's address, so it holds
whatever the network looks like. On the operator listener it also refuses a
run whose Flower App (FAB) is not signed with the federation's model-signing
key (``aicache-app-signature`` in the run config), before Flower stores it.

Options of its own (``--operator-port``, ``--app-key``) come first; the rest
are ``flower-superlink``'s, parsed by Flower itself. Checked against flwr 1.42.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import socket
import struct
import sys
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

from aicache.security.app_signing import APP_SIGNATURE_KEY, AppRefused, check_app

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

OPERATOR_HOST = "127.0.0.1"
FLEET_PREFIX = "/v1/fleet/"
START_RUN = "/v1/control/start-run"
# The Control routes a federation needs (`aicache server` and `flwr ls|run|stop|log|supernode`).
# Others (automations that start runs later, stored and hub apps, federations, connectors,
# invitations) are refused even to the operator: each is a way around the app check.
CONTROL_PREFIX = "/v1/control/"
OPERATOR_CONTROL = frozenset(
    f"{CONTROL_PREFIX}{route}"
    for route in (
        "start-run",
        "list-runs",
        "stop-run",
        "stream-logs",
        "register-node",
        "unregister-node",
        "list-nodes",
    )
)
# The Runtime routes the SuperExec and ServerApp processes call (flwr's RuntimeHttpClient as
# used by the SuperExec and the ServerApp's grid). The others serve Flower's agent, model and
# connector tasks; among them create-task and start-automation create tasks and runs (a
# start-automation carries a whole start-run request, app included) without the app check.
RUNTIME_PREFIX = "/v1/runtime/"
OPERATOR_RUNTIME = frozenset(
    f"{RUNTIME_PREFIX}{route}"
    for route in (
        "acquire-task",
        "send-task-heartbeat",
        "pull-task-input",
        "push-task-output",
        "push-object",
        "pull-object",
        "confirm-message-received",
        "push-messages",
        "pull-messages",
        "push-logs",
        "get-nodes",
    )
)
# Path segments no route of Flower's has: a gate that let them through would depend on how the
# router (or a proxy in front of it) resolves them.
_UNCANONICAL = ("/./", "/../", "//", "%", "\\")
PROC_TCP = Path("/proc/net/tcp")
_NO_PERMISSIONS = 9  # flwr.supercore.error.ApiErrorCode.NO_PERMISSIONS


class OperatorGate:
    """Route requests by the listener they arrived on; check every run's app.

    On the operator listener, the Runtime API and the Control routes a
    federation needs pass (a start-run only with a signed app); on any other
    listener only Fleet routes pass.
    """

    def __init__(self, app: ASGIApp, *, operator_port: int, app_key: bytes) -> None:
        self.app = app
        self.operator_port = operator_port
        self.app_key = app_key

    def _on_operator_listener(self, scope: Scope) -> bool:
        server = scope.get("server")
        return (
            isinstance(server, tuple | list)
            and len(server) == 2
            and server[0] == OPERATOR_HOST
            and server[1] == self.operator_port
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass, refuse, or check the request."""
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)  # lifespan
            return
        path = str(scope.get("path", ""))
        refusal = _path_refusal(path, operator=self._on_operator_listener(scope))
        if refusal is not None:
            await _refuse(scope, send, refusal)
            return
        if path != START_RUN:
            await self.app(scope, receive, send)
            return
        body = await _read_body(receive)
        try:
            _check_start_run(body, self.app_key)
        except AppRefused as exc:
            await _refuse(scope, send, str(exc))
            return
        await self.app(scope, _replay(body, receive), send)


def _path_refusal(path: str, *, operator: bool) -> str | None:
    """Why a request for ``path`` is refused on its listener, or None when it may pass.

    Flower's routes are lower case and exact, so the API a path belongs to is
    read case-blind and its route must then match exactly: ``/V1/CONTROL/…``
    or a trailing slash is refused rather than left to the router.
    """
    if path.endswith(("/.", "/..")) or any(part in path for part in _UNCANONICAL):
        return f"{path} is not a canonical path: refused"
    folded = path.lower()
    if not operator:
        if path.startswith(FLEET_PREFIX):
            return None
        return (
            "this port serves SuperNodes only (the Fleet API); the Control API is "
            "reserved to the federation's operator on the server itself"
        )
    for prefix, allowed in ((CONTROL_PREFIX, OPERATOR_CONTROL), (RUNTIME_PREFIX, OPERATOR_RUNTIME)):
        if folded.startswith(prefix) and path not in allowed:
            return f"{path} is not used by an aicache federation: refused"
    return None


def _proc_address(address: Any) -> str | None:
    """``ip:port`` as ``/proc/net/tcp`` writes an IPv4 socket address."""
    try:
        host, port = address
        (packed,) = struct.unpack("<I", socket.inet_aton(str(host)))
        return f"{packed:08X}:{int(port):04X}"
    except (TypeError, ValueError, OSError, struct.error):
        return None


def _same_account(client: Any, server: Any, table: Path = PROC_TCP) -> bool:
    """Whether the loopback peer ``client`` of ``server`` runs as this process's account.

    The client end of the connection is a row of ``/proc/net/tcp`` with its
    owner's uid. Without that file (not Linux) every local peer is accepted;
    with it, a connection whose row is missing is refused.
    """
    try:
        rows = table.read_text().splitlines()[1:]
    except OSError:
        return True
    local, remote = _proc_address(client), _proc_address(server)
    if local is None or remote is None:
        return False
    for row in rows:
        fields = row.split()
        if len(fields) > 7 and fields[1] == local and fields[2] == remote:
            return fields[7] == str(os.getuid())
    return False


def _account_checked(base: type[asyncio.Protocol], operator_port: int) -> type[asyncio.Protocol]:
    """``base`` (uvicorn's HTTP protocol), closing operator-listener connections of other accounts.

    The owner of a connection is read once, when it is accepted (a few
    milliseconds from ``/proc/net/tcp``), not for every request on it.
    """

    class AccountChecked(base):  # type: ignore[valid-type, misc]
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            super().connection_made(transport)
            local = transport.get_extra_info("sockname")
            on_operator = tuple(local or ())[:2] == (OPERATOR_HOST, operator_port)
            peer = transport.get_extra_info("peername")
            if on_operator and not _same_account(peer, local):
                print(
                    f"aicache: refused a connection from {peer} to the operator's port: it "
                    "belongs to another account than the federation operator's",
                    flush=True,
                )
                transport.close()

    return AccountChecked


def _check_start_run(body: bytes, app_key: bytes) -> None:
    """Refuse a start-run whose FAB is not the app the federation signed."""
    from flwr.common.serde import user_config_from_proto
    from flwr.proto.control_pb2 import StartRunRequest

    request = StartRunRequest()
    try:
        request.ParseFromString(body)
    except Exception as exc:  # protobuf's DecodeError: a malformed request
        raise AppRefused(f"the run request could not be read: {exc}") from exc
    if request.app_spec or not request.fab.content:
        raise AppRefused("only the federation's own app runs here, sent with the run")
    try:
        config = user_config_from_proto(request.override_config)
    except (TypeError, ValueError, AttributeError) as exc:
        # A value with no type set (flwr reads it with getattr(msg, None)) or of an unknown one.
        raise AppRefused(f"the run config could not be read ({exc}): refused") from exc
    check_app(request.fab.content, config.get(APP_SIGNATURE_KEY), app_key)


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that hands the app the body already read, then defers to the server."""
    sent = False

    async def replayed() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replayed


async def _refuse(scope: Scope, send: Send, detail: str) -> None:
    """Answer 403 in Flower's error format, which the ``flwr`` CLI prints."""
    if scope["type"] == "websocket":
        await send({"type": "websocket.close", "code": 1008})
        return
    payload = json.dumps({"code": _NO_PERMISSIONS, "detail": detail}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 403,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})


def _listener(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host.strip("[]"), port))
    sock.set_inheritable(False)
    return sock


def main() -> None:
    """Serve Flower's SuperLink app on the public and the operator listener."""
    parser = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    parser.add_argument("--operator-port", type=int, required=True)
    parser.add_argument("--app-key", type=Path, required=True)
    ours, flower_args = parser.parse_known_args()
    app_key = ours.app_key.read_bytes()

    import uvicorn
    from flwr.supercore.http_logging import configure_uvicorn_logging, get_uvicorn_log_config
    from flwr.supercore.logger import console_handler
    from flwr.superlink.cli.flower_superlink import (
        SuperLinkLifespan,
        _parse_superlink_lifespan_config,
    )
    from flwr.superlink.main import create_app

    sys.argv = ["flower-superlink", *flower_args]
    config = _parse_superlink_lifespan_config()
    public = (config.host, config.port)
    # Flower's SuperExec (and through it every ServerApp) reaches the Runtime API at
    # config.host:config.port: point it at the operator listener.
    config = dataclasses.replace(config, host=OPERATOR_HOST, port=ours.operator_port)
    configure_uvicorn_logging()
    app = create_app(config, SuperLinkLifespan)
    gate = OperatorGate(app, operator_port=ours.operator_port, app_key=app_key)
    sockets = [_listener(*public), _listener(OPERATOR_HOST, ours.operator_port)]
    settings = uvicorn.Config(
        app=gate,
        reload=False,
        access_log=True,
        log_config=get_uvicorn_log_config(console_handler.level),
        ssl_keyfile=config.ssl_keyfile,
        ssl_certfile=config.ssl_certfile,
        workers=1,
    )
    settings.load()
    settings.http_protocol_class = _account_checked(
        settings.http_protocol_class, ours.operator_port
    )
    server = uvicorn.Server(settings)
    print(
        f"aicache: Fleet API on {public[0]}:{public[1]}, operator APIs on "
        f"{OPERATOR_HOST}:{ours.operator_port}",
        flush=True,
    )
    server.run(sockets=sockets)


if __name__ == "__main__":
    main()
