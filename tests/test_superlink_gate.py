"""The SuperLink's gate, driven with ASGI scopes, and its connection-owner check on a table."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest
from flwr.proto.control_pb2 import StartRunRequest
from flwr.proto.fab_pb2 import Fab
from flwr.proto.transport_pb2 import Scalar

from aicache.deploy.superlink import (
    OPERATOR_RUNTIME,
    Message,
    OperatorGate,
    Receive,
    Scope,
    Send,
    _same_account,
)
from aicache.security import signing
from aicache.security.app_signing import APP_SIGNATURE_KEY, sign_app

OPERATOR_PORT = 9443
# The public listener binds --listen, loopback by default.
PUBLIC = ("127.0.0.1", 9092)
OPERATOR = ("127.0.0.1", OPERATOR_PORT)
KEY = signing.new_signing_key()


@dataclass
class Inner:
    """The app behind the gate: records what reached it and answers 200."""

    paths: list[str] = field(default_factory=list)
    bodies: list[bytes] = field(default_factory=list)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.paths.append(str(scope.get("path", scope["type"])))
        if scope["type"] != "http":
            return
        self.bodies.append((await receive()).get("body", b""))
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})


@dataclass
class Answer:
    inner: Inner
    sent: list[Message]

    @property
    def status(self) -> int | None:
        return next((int(m["status"]) for m in self.sent if "status" in m), None)

    @property
    def detail(self) -> str:
        body = b"".join(m.get("body", b"") for m in self.sent if m["type"] == "http.response.body")
        return str(json.loads(body)["detail"]) if self.status == 403 else ""


def _call(raw_path: str, server: tuple[str, int], body: bytes = b"", kind: str = "http") -> Answer:
    """Send one request through the gate; ``raw_path`` is decoded as uvicorn decodes it."""
    inner = Inner()
    gate = OperatorGate(inner, operator_port=OPERATOR_PORT, app_key=signing.public_pem(KEY))
    scope: Scope = {
        "type": kind,
        "path": unquote(raw_path),
        "raw_path": raw_path.encode(),
        "server": server,
        "client": ("127.0.0.1", 50000),
        "method": "POST",
        "headers": [],
    }
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    asyncio.run(gate(scope, receive, send))
    return Answer(inner, sent)


def _start_run(fab: bytes, config: dict[str, Scalar]) -> bytes:
    request = StartRunRequest(fab=Fab(content=fab))
    for key, value in config.items():
        request.override_config[key].CopyFrom(value)
    return bytes(request.SerializeToString())


@pytest.mark.parametrize(
    "path",
    [
        "/v1/fleet/%2e%2e/control/start-run",
        "/v1/fleet/%2E%2E/control/list-runs",
        "/v1/fleet/../control/x",
        "/v1/fleet/./../runtime/create-task",
        "/v1/fleet/%252e%252e/control/list-runs",
        "/v1/fleet//control/list-runs",
        "/V1/FLEET/pull-messages",
        "/v1/control/list-runs",
        "/v1/runtime/acquire-task",
        "/",
    ],
)
def test_the_public_listener_refuses_everything_but_plain_fleet_paths(path: str) -> None:
    answer = _call(path, PUBLIC)
    assert answer.status == 403 and answer.inner.paths == []


def test_the_public_listener_passes_fleet_routes_and_lifespan() -> None:
    answer = _call("/v1/fleet/pull-messages", PUBLIC, b"request")
    assert answer.status == 200 and answer.inner.bodies == [b"request"]
    assert _call("", PUBLIC, kind="lifespan").inner.paths == [""]


@pytest.mark.parametrize(
    "path",
    [
        "/v1/runtime/start-automation",
        "/v1/runtime/create-task",
        "/v1/runtime/push-task-message",
        "/v1/runtime/get-connector",
        "/v1/runtime/responses",
        "/V1/RUNTIME/START-AUTOMATION",
        "/v1/Runtime/start-automation",
        "/v1/runtime/acquire-task/",
        "/v1/control/start-automation",
        "/v1/control/add-app",
        "/V1/CONTROL/ADD-APP",
        "/v1/control/list-runs/",
        "/v1/control/start-run/",
        "/v1/runtime/%2e%2e/control/add-app",
        "/v1/fleet/../control/add-app",
        "/v1/control/list-runs/..",
    ],
)
def test_the_operator_listener_refuses_routes_a_federation_does_not_use(path: str) -> None:
    answer = _call(path, OPERATOR)
    assert answer.status == 403 and answer.inner.paths == []


@pytest.mark.parametrize("path", [*sorted(OPERATOR_RUNTIME), "/v1/control/list-runs", "/health"])
def test_the_operator_listener_passes_the_routes_serverapps_and_the_cli_use(path: str) -> None:
    answer = _call(path, OPERATOR, b"request")
    assert answer.status == 200 and answer.inner.bodies == [b"request"]


def test_the_same_port_on_another_address_is_not_the_operator_listener() -> None:
    assert _call("/v1/control/list-runs", ("192.0.2.10", OPERATOR_PORT)).status == 403


def test_a_refused_websocket_is_closed_as_a_policy_violation() -> None:
    for path, server in (("/v1/control/list-runs", PUBLIC), ("/v1/runtime/create-task", OPERATOR)):
        answer = _call(path, server, kind="websocket")
        assert answer.sent == [{"type": "websocket.close", "code": 1008}]
        assert answer.inner.paths == []


def test_a_start_run_passes_only_with_the_federations_signature() -> None:
    fab = b"the federation's app"
    signed = _start_run(fab, {APP_SIGNATURE_KEY: Scalar(string=sign_app(fab, KEY))})
    forged = sign_app(fab, signing.new_signing_key())
    # Execute
    answer = _call("/v1/control/start-run", OPERATOR, signed)
    unsigned = _call("/v1/control/start-run", OPERATOR, _start_run(fab, {}))
    other = _call(
        "/v1/control/start-run",
        OPERATOR,
        _start_run(fab, {APP_SIGNATURE_KEY: Scalar(string=forged)}),
    )
    # Assert: the app gets the body the gate read, byte for byte
    assert answer.status == 200 and answer.inner.bodies == [signed]
    assert unsigned.status == 403 and "is not signed by the federation" in unsigned.detail
    assert other.status == 403 and "does not match the federation's signature" in other.detail
    assert unsigned.inner.paths == other.inner.paths == []


def test_a_start_run_with_an_unreadable_config_value_is_refused_not_an_error() -> None:
    fab = b"the federation's app"
    config = {APP_SIGNATURE_KEY: Scalar(string=sign_app(fab, KEY)), "rounds": Scalar()}
    answer = _call("/v1/control/start-run", OPERATOR, _start_run(fab, config))
    assert answer.status == 403 and "the run config could not be read" in answer.detail
    assert answer.inner.paths == []
    garbage = _call("/v1/control/start-run", OPERATOR, b"\xff\xff\xff")
    assert garbage.status == 403 and "could not be read" in garbage.detail


def _row(client: tuple[str, int], server: tuple[str, int], uid: int) -> str:
    def address(host: str, port: int) -> str:
        (packed,) = struct.unpack("<I", socket.inet_aton(host))
        return f"{packed:08X}:{port:04X}"

    return (
        f"   1: {address(*client)} {address(*server)} 01 00000000:00000000 00:00000000 "
        f"00000000 {uid:>5}        0 123456 1 0000000000000000 20 4 30 10 -1"
    )


HEADER = (
    "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt"
    "   uid  timeout inode"
)


def test_the_connection_owner_is_read_from_the_tcp_table(tmp_path: Path) -> None:
    client, server, other = ("127.0.0.1", 50123), OPERATOR, ("127.0.0.1", 50124)
    table = tmp_path / "tcp"

    def owner_ok(*rows: str, peer: Any = client) -> bool:
        table.write_text("\n".join((HEADER, *rows)) + "\n")
        return _same_account(peer, server, table)

    mine, stranger = os.getuid(), os.getuid() + 1
    # The server end's own row (server -> client) is not the client's
    assert owner_ok(_row(server, client, stranger), _row(client, server, mine))
    assert not owner_ok(_row(server, client, mine), _row(client, server, stranger))
    # A connection whose row is missing, or an address that is not IPv4, is refused
    assert not owner_ok(_row(other, server, mine))
    assert not owner_ok(_row(client, server, mine), peer=("::1", 50123, 0, 0))
    # Without the table (not Linux) a local peer is let through
    assert _same_account(client, server, tmp_path / "absent")
