"""Supervising a federation directory's SuperLink: start, stop, and ``flwr`` commands to it.

aicache starts Flower's SuperLink through its own entry point
(:mod:`aicache.deploy.superlink`): the Fleet API on the federation's address,
the Control and Runtime APIs only on loopback. Once it listens, the
operator's ``flwr`` commands are pointed at it through ``flower/config.toml``.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psutil

from aicache.deploy.processes import flower_env, wait_until
from aicache.deploy.superlink import OPERATOR_HOST
from aicache.errors import AicacheError
from aicache.security.federation_dir import SERVER_CERT, SERVER_KEY, SIGNING_PUB

if TYPE_CHECKING:
    from aicache.deploy.server import ServerDirectory

CONNECTION = "aicache"
START_TIMEOUT = 30.0


def _accepts(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind((OPERATOR_HOST, 0))
        return int(probe.getsockname()[1])


def write_flower_config(directory: ServerDirectory, insecure: bool, address: str) -> None:
    """Point the operator's ``flwr`` commands at the operator listener ``address``."""
    directory.flwr_home.mkdir(mode=0o700, exist_ok=True)
    connection = f'address = "{address}"\n'
    if insecure:
        connection += "insecure = true\n"
    else:
        connection += f"root-certificates = {json.dumps(str(directory.trusted_ca))}\n"
    (directory.flwr_home / "config.toml").write_text(
        f'[superlink]\ndefault = "{CONNECTION}"\n\n[superlink.{CONNECTION}]\n{connection}'
    )


def start(directory: ServerDirectory, *, insecure: bool = False, listen: str | None = None) -> int:
    """Start the SuperLink of ``directory`` in the background and wait until it listens.

    Returns
    -------
    int
        Its process id.

    Raises
    ------
    AicacheError
        If it is already running, or it exits before it listens (the log's
        last lines say why).
    """
    superlink = directory.superlink
    if superlink.running():
        raise AicacheError(
            f"the SuperLink of {directory.root} is already running",
            hint="Stop it first (`aicache server stop`) to change how it runs.",
        )
    host = listen or str(directory.config.get("federation", {}).get("listen", "127.0.0.1"))
    operator_port = _free_port()
    # aicache's entry point serves Flower's SuperLink app: the Fleet API on HOST:PORT,
    # the Control and Runtime APIs only on 127.0.0.1:operator_port (deploy/superlink.py).
    command = [
        sys.executable,
        "-m",
        "aicache.deploy.superlink",
        "--operator-port",
        str(operator_port),
        "--app-key",
        str(directory.path(SIGNING_PUB)),
        "--host",
        host,
        "--port",
        str(directory.port),
        "--database",
        str(directory.root / "state.db"),
        "--disable-runtime-dependency-installation",
    ]
    if insecure:
        command.append("--insecure")
    else:
        command += [
            "--ssl-ca-certfile",
            str(directory.trusted_ca),
            "--ssl-certfile",
            str(directory.path(SERVER_CERT)),
            "--ssl-keyfile",
            str(directory.path(SERVER_KEY)),
            "--enable-supernode-auth",
        ]
    wildcard = host in ("0.0.0.0", "::")  # noqa: S104 - the operator's choice, probed locally
    probe = "127.0.0.1" if wildcard else host
    if _accepts(probe, directory.port):
        raise AicacheError(
            f"port {directory.port} on {probe} is already in use by another program",
            hint="Stop it, or choose another port in the [federation] address.",
        )
    log_file = directory.log_file
    offset = log_file.stat().st_size if log_file.exists() else 0
    # The SuperLink, its SuperExec and every ServerApp work in a folder of their own,
    # which holds none of the operator's private keys.
    directory.workdir.mkdir(mode=0o700, exist_ok=True)
    # Flower's older gRPC Control API would listen beside the gate, unauthenticated.
    no_grpc = {"FLWR_INTERNAL_GRPC_CONTROL_API": "0", "FLWR_INTERNAL_GRPC_FLEET_API": "0"}
    process = superlink.start(
        command,
        env=flower_env(directory.flwr_home, no_grpc),
        log_file=log_file,
        cwd=directory.workdir,
    )

    def listening() -> bool:
        return _accepts(probe, directory.port) and _accepts(OPERATOR_HOST, operator_port)

    try:
        ready = wait_until(lambda: not superlink.running() or listening(), START_TIMEOUT, 0.2)
    except KeyboardInterrupt:
        superlink.stop()
        raise
    if not ready or not superlink.running():
        superlink.stop()
        reason = "exited while starting" if ready else f"did not listen in {START_TIMEOUT:g} s"
        raise AicacheError(
            f"the SuperLink {reason}: {log_tail(directory, offset)}",
            hint=f"Its log is {log_file}.",
        )
    # Only a SuperLink that runs decides how the operator's commands reach it.
    write_flower_config(directory, insecure, f"{OPERATOR_HOST}:{operator_port}")
    directory.runtime.write_text(
        json.dumps({"insecure": insecure, "host": host, "operator_port": operator_port})
    )
    return process.pid


def log_tail(directory: ServerDirectory, offset: int = 0, lines: int = 3) -> str:
    """The last lines the SuperLink logged after ``offset``."""
    try:
        with directory.log_file.open("rb") as handle:
            handle.seek(offset)
            text = handle.read().decode(errors="replace")
    except FileNotFoundError:
        return "(no log)"
    kept = [line.strip() for line in text.splitlines() if line.strip()]
    return " | ".join(kept[-lines:]) or "(nothing logged)"


def stop(directory: ServerDirectory) -> bool:
    """Stop the SuperLink and everything it started; ``False`` if it was not running."""
    stopped = directory.superlink.stop()
    directory.runtime.unlink(missing_ok=True)
    return stopped


def require_running(directory: ServerDirectory) -> None:
    """Raise a clear error if the SuperLink is not running."""
    if not directory.superlink.running():
        raise AicacheError(
            f"the SuperLink of {directory.root} is not running",
            hint=f"Start it with `aicache server start {directory.root} --detach`.",
        )


def flwr(directory: ServerDirectory, *args: str, timeout: float = 120.0) -> dict[str, Any]:
    """Run a ``flwr`` command against the SuperLink and return its JSON answer.

    Raises
    ------
    AicacheError
        With Flower's own message when the command fails.
    """
    require_running(directory)
    command = [str(Path(sys.executable).parent / "flwr"), *args, "--format", "json"]
    try:
        done = subprocess.run(
            command,
            env=flower_env(directory.flwr_home),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            cwd=directory.root,
        )
    except subprocess.TimeoutExpired as exc:
        raise AicacheError(f"`flwr {args[0]}` did not answer in {timeout:g} s") from exc
    try:
        answer = json.loads(done.stdout)
    except ValueError as exc:
        raise AicacheError(
            f"`flwr {' '.join(args[:2])}` failed: {(done.stderr or done.stdout).strip()[-400:]}"
        ) from exc
    if not isinstance(answer, dict) or not answer.get("success", False):
        detail = answer.get("error-message", answer) if isinstance(answer, dict) else answer
        message = " ".join(str(detail).split())
        raise AicacheError(f"the SuperLink refused `flwr {' '.join(args[:2])}`: {message}")
    return answer


def serverapp_running(directory: ServerDirectory) -> bool:
    """Whether a ServerApp process of the SuperLink is alive."""
    process = directory.superlink.process()
    if process is None:
        return False
    try:
        children = process.children(recursive=True)
    except psutil.Error:
        return False
    for child in children:
        try:
            alive = child.status() != psutil.STATUS_ZOMBIE
            if alive and "flwr-serverapp" in " ".join(child.cmdline()):
                return True
        except psutil.Error:
            continue
    return False


def active_runs(directory: ServerDirectory) -> list[int]:
    """Flower runs of the SuperLink that have not finished."""
    runs = flwr(directory, "list", CONNECTION).get("runs", [])
    return [
        int(run["run-id"]) for run in runs if not str(run.get("status", "")).startswith("finished")
    ]
