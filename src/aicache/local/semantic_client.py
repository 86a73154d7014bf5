"""The client of the warm semantic service: the miss path's lookup without loading a model.

A process of its own (:mod:`aicache.tasks.semantic_hit.service`) keeps the
embedder, the decision and the cached prompts' vectors loaded; ``aicache run``
asks it over a Unix socket in the aicache home, one JSON line per request and
one per reply, and starts it when it is not running (detached, in a session
of its own). The first miss waits for it at most :data:`START_WAIT_S`; past
that, or when it fails mid-request, the call answers exact repeats only with
one warning line. Set ``AICACHE_SEMANTIC_SERVICE=off`` to load the model in
the calling process instead.

Standard library only: this runs in the ``aicache run`` process.
"""

from __future__ import annotations

import base64
import binascii
import fcntl
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

from aicache.errors import AicacheError
from aicache.local.paths import aicache_home, ensure_private_dir
from aicache.local.semantic_index import FrameMatch
from aicache.local.semantic_store import SemanticCandidate

SOCKET_NAME = "semantic.sock"
PID_NAME = "semantic.pid"
LOG_NAME = "semantic-service.log"
SERVICE_VARIABLE = "AICACHE_SEMANTIC_SERVICE"
DAEMON_MODULE = "aicache.cli.semantic_daemon"
# How long a miss waits for a service it started to load its model.
START_WAIT_S = 8.0
# How long one request may take (the first shortlist loads the decision).
REQUEST_S = 10.0
_POLL_S = 0.02
# Seconds after which a start that bound no socket is tried again.
_RESTART_S = 1.5
# Longest path a Unix socket address takes (Linux: 108 bytes with the final NUL).
_SUN_PATH = 100
_QUIET = {"FLWR_TELEMETRY_ENABLED": "0", "FLWR_DISABLE_UPDATE_CHECK": "1"}


class ServiceError(RuntimeError):
    """The semantic service did not answer; the call goes on with exact repeats only."""


@dataclass(frozen=True, slots=True)
class ServiceStatus:
    """What ``aicache semantic service status`` shows of a running service.

    Attributes
    ----------
    pid
        Its process id.
    uptime_s
        Seconds since it started.
    served
        Lookups it answered.
    idle_s
        Seconds without a request after which it exits.
    vectors
        Cached prompts' vectors it holds in memory.
    available
        Whether its embedding model loaded (else it answers that semantic hits are off).
    """

    pid: int
    uptime_s: float
    served: int
    idle_s: float
    vectors: int
    available: bool


def socket_path(home: Path) -> Path:
    """Where the service of the aicache home ``home`` listens."""
    return home / SOCKET_NAME


def enabled() -> bool:
    """Whether lookups go through the service (``AICACHE_SEMANTIC_SERVICE`` is not ``off``)."""
    return os.environ.get(SERVICE_VARIABLE, "on").strip().lower() not in ("off", "0", "no")


def request(
    home: Path, payload: dict[str, object], *, timeout: float = REQUEST_S
) -> dict[str, object]:
    """Send one request to the running service and return its reply.

    Raises
    ------
    ConnectionError, FileNotFoundError
        When no service listens (nothing was sent).
    ServiceError
        When it fails or dies mid-request, or answers an error.
    AicacheError
        When it answers that the embedding model is unavailable.
    """
    with _address(socket_path(home)) as address, socket.socket(socket.AF_UNIX) as conn:
        conn.settimeout(timeout)
        conn.connect(address)  # ConnectionError / FileNotFoundError: nothing listens
        try:
            conn.sendall(json.dumps(payload).encode("utf-8") + b"\n")
            data = b""
            while not data.endswith(b"\n"):
                chunk = conn.recv(65536)
                if not chunk:
                    break
                data += chunk
        except OSError as exc:
            raise ServiceError(f"the semantic service stopped answering ({exc})") from exc
    return _reply(data)


def _reply(data: bytes) -> dict[str, object]:
    if not data:
        raise ServiceError("the semantic service closed the connection without an answer")
    try:
        reply = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise ServiceError(f"the semantic service sent a garbled answer ({exc})") from exc
    if not isinstance(reply, dict):
        raise ServiceError("the semantic service sent a garbled answer")
    if reply.get("ok") is True:
        return reply
    if reply.get("error") == "unavailable":
        raise AicacheError(str(reply.get("message")), hint=str(reply.get("hint") or ""))
    raise ServiceError(f"the semantic service refused the lookup: {reply.get('message')}")


def start(home: Path) -> None:
    """Start the service of ``home`` in the background (a second start exits at once)."""
    ensure_private_dir(home)
    env = {**os.environ, **_QUIET}
    with (home / LOG_NAME).open("ab") as log:
        (home / LOG_NAME).chmod(0o600)
        launcher = subprocess.Popen(
            [sys.executable, "-m", DAEMON_MODULE, str(home)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=log,
            env=env,
            cwd=home,
            start_new_session=True,
            close_fds=True,
        )
    # The launcher forks the service and exits: nothing is left for this process to reap.
    launcher.wait()


def connect(home: Path, *, wait_s: float = START_WAIT_S) -> None:
    """Make sure the service of ``home`` runs and answers, starting it if needed.

    Raises
    ------
    ServiceError
        When it does not answer within ``wait_s`` seconds.
    AicacheError
        When it runs without its embedding model.
    """
    try:
        _ready(request(home, {"op": "ping"}, timeout=wait_s))
        return
    except (ConnectionError, FileNotFoundError):
        pass
    deadline = time.monotonic() + wait_s
    start(home)
    started = time.monotonic()
    while True:
        if not socket_path(home).exists() and time.monotonic() - started > _RESTART_S:
            # The one started found a departing service still holding the lock: again.
            start(home)
            started = time.monotonic()
        left = deadline - time.monotonic()
        if left <= 0:
            raise ServiceError(
                f"the semantic service did not start within {wait_s:g} s "
                f"(its log: {home / LOG_NAME})"
            )
        try:
            _ready(request(home, {"op": "ping"}, timeout=left))
            return
        except (ConnectionError, FileNotFoundError):
            time.sleep(_POLL_S)
        except TimeoutError as exc:
            raise ServiceError(
                f"the semantic service did not get ready within {wait_s:g} s "
                f"(its log: {home / LOG_NAME})"
            ) from exc


def _ready(pong: dict[str, object]) -> None:
    """Raise the service's reason when it runs without its embedding model."""
    if pong.get("available") is False:
        raise AicacheError(str(pong.get("message")), hint=str(pong.get("hint") or ""))


class ServiceLookup:
    """The cache's semantic lookup, answered by the warm service
    (:class:`aicache.local.semantic_index.FrameLookup`)."""

    def __init__(self, home: Path) -> None:
        self.home = home

    def vector(self, prompt: str) -> bytes:
        """The stored form of ``prompt``'s sentence vector."""
        return _vector(self._ask({"op": "vector", "prompt": prompt}))

    def nearest(self, frame: str, prompt: str, now: float) -> FrameMatch:
        """The vector of ``prompt`` and the cached prompt of ``frame`` to serve, if any."""
        reply = self._ask({"op": "lookup", "frame": frame, "prompt": prompt, "now": now})
        match = reply.get("match")
        if match is None:
            return FrameMatch(_vector(reply), None)
        if not isinstance(match, dict):
            raise ServiceError("the semantic service sent a garbled match")
        try:
            found = SemanticCandidate(str(match["key"]), str(match["prompt"]), b"")
            return FrameMatch(_vector(reply), found, float(match["score"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise ServiceError(f"the semantic service sent a garbled match ({exc})") from exc

    def choose(
        self, prompt: str, vector: bytes, candidates: Sequence[SemanticCandidate]
    ) -> tuple[int, float] | None:
        """The candidate to serve among ``candidates``, which need not be in the store."""
        reply = self._ask(
            {
                "op": "choose",
                "prompt": prompt,
                "vector": base64.b64encode(vector).decode(),
                "candidates": [[c.prompt, base64.b64encode(c.vector).decode()] for c in candidates],
            }
        )
        chosen = reply.get("chosen")
        if chosen is None:
            return None
        if not (isinstance(chosen, list) and len(chosen) == 2):
            raise ServiceError("the semantic service sent a garbled choice")
        return int(chosen[0]), float(chosen[1])

    def _ask(self, payload: dict[str, object]) -> dict[str, object]:
        try:
            return request(self.home, payload)
        except (ConnectionError, FileNotFoundError) as exc:
            raise ServiceError(f"the semantic service went away ({exc})") from exc
        except TimeoutError as exc:
            raise ServiceError(
                f"the semantic service did not answer within {REQUEST_S:g} s"
            ) from exc


def service_lookup(home: Path | None = None) -> ServiceLookup | None:
    """The lookup through the warm service of ``home``, started if needed; ``None`` when
    ``AICACHE_SEMANTIC_SERVICE=off`` asks for the model in this process.

    Raises
    ------
    ServiceError
        When the service does not get ready in time.
    AicacheError
        When it runs without its embedding model.
    """
    if not enabled():
        return None
    home = home or aicache_home()
    connect(home)
    return ServiceLookup(home)


def status(home: Path) -> ServiceStatus | None:
    """The running service's status, or ``None`` when none runs (a stale socket is removed)."""
    try:
        reply = request(home, {"op": "ping"}, timeout=REQUEST_S)
    except (ConnectionError, FileNotFoundError):
        _remove_stale(home)
        return None
    except TimeoutError as exc:
        raise ServiceError("the semantic service does not answer") from exc
    return ServiceStatus(
        pid=int(str(reply["pid"])),
        uptime_s=max(0.0, time.time() - float(str(reply["started"]))),
        served=int(str(reply["served"])),
        idle_s=float(str(reply["idle_s"])),
        vectors=int(str(reply["vectors"])),
        available=bool(reply["available"]),
    )


def stop(home: Path, *, wait_s: float = 5.0) -> int | None:
    """Ask the running service to exit and wait until it did; its pid, or ``None`` if none ran."""
    found = status(home)
    if found is None:
        return None
    try:
        request(home, {"op": "stop"})
    except (ConnectionError, FileNotFoundError):
        return found.pid  # it left by itself meanwhile
    deadline = time.monotonic() + wait_s
    while socket_path(home).exists() and time.monotonic() < deadline:
        time.sleep(_POLL_S)
    return found.pid


def running(home: Path) -> bool:
    """Whether a service of ``home`` holds its pid file's lock (it does while it lives)."""
    try:
        fd = os.open(home / PID_NAME, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def _remove_stale(home: Path) -> None:
    # Left by a service that was killed: nobody listens on it, nobody holds the lock.
    if running(home):
        return
    for name in (SOCKET_NAME, PID_NAME):
        with suppress(FileNotFoundError):
            (home / name).unlink()


def _vector(reply: dict[str, object]) -> bytes:
    try:
        return base64.b64decode(str(reply["vector"]), validate=True)
    except (KeyError, binascii.Error) as exc:
        raise ServiceError(f"the semantic service sent a garbled vector ({exc})") from exc


@contextmanager
def _address(path: Path) -> Iterator[str]:
    """``path`` as a socket address; a long one is reached through its folder's descriptor."""
    if len(os.fsencode(path)) < _SUN_PATH:
        yield str(path)
        return
    folder = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        yield f"/proc/self/fd/{folder}/{path.name}"
    finally:
        os.close(folder)


__all__ = [
    "LOG_NAME",
    "PID_NAME",
    "SERVICE_VARIABLE",
    "SOCKET_NAME",
    "START_WAIT_S",
    "ServiceError",
    "ServiceLookup",
    "ServiceStatus",
    "connect",
    "enabled",
    "request",
    "running",
    "service_lookup",
    "socket_path",
    "start",
    "status",
    "stop",
]
