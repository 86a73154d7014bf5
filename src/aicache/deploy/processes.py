"""Starting and ending the Flower processes aicache supervises.

Every process gets the quiet environment (no telemetry, no update check), a
private ``FLWR_HOME`` and this interpreter's ``bin`` first on ``PATH``: Flower
starts its helpers (``flower-superexec``, ``flwr-serverapp``,
``flwr-clientapp``) by name, and they must come from the same installation.
A started process is remembered in a pid file (JSON: pid, start time,
command); stopping ends the whole tree, including the helpers Flower moves
into sessions of their own.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import psutil

from aicache.errors import AicacheError
from aicache.federation.environment import QUIET_ENVIRONMENT

# The SuperExec's wait between asks for new work (Flower's default is 1 s).
TASK_POLL_SECONDS = 0.1


def flower_env(flwr_home: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of a Flower process started by aicache."""
    env = dict(os.environ)
    env.update(QUIET_ENVIRONMENT)
    env["FLWR_HOME"] = str(flwr_home)
    env.setdefault("FLWR_SUPEREXEC_TASK_POLL_INTERVAL", str(TASK_POLL_SECONDS))
    bin_dir = str(Path(sys.executable).parent)
    env["PATH"] = os.pathsep.join([bin_dir, env.get("PATH", "")])
    env.update(extra or {})
    return env


@dataclass(frozen=True, slots=True)
class Supervised:
    """A process aicache started and may have to end, known by its pid file."""

    pid_file: Path

    def record(self) -> dict[str, object] | None:
        """The pid file's content, or ``None`` when there is none (or it is unreadable)."""
        try:
            data = json.loads(self.pid_file.read_text())
        except (FileNotFoundError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    def process(self) -> psutil.Process | None:
        """The running process, if the pid file names one that is still ours."""
        data = self.record()
        if data is None:
            return None
        try:
            process = psutil.Process(int(str(data["pid"])))
            # A recycled pid belongs to another process: its start time differs.
            if abs(process.create_time() - float(str(data["created"]))) > 1.0:
                return None
            if process.status() == psutil.STATUS_ZOMBIE:
                return None
        except (psutil.Error, KeyError, ValueError):
            return None
        return process

    def running(self) -> bool:
        """Whether the process is alive."""
        return self.process() is not None

    def start(
        self,
        command: Sequence[str],
        *,
        env: dict[str, str],
        log_file: Path,
        cwd: Path | None = None,
    ) -> psutil.Process:
        """Start ``command`` in a session of its own, output appended to ``log_file``."""
        if self.running():
            raise AicacheError(
                f"already running (pid file {self.pid_file})",
                hint="Stop it first, or use it as it is.",
            )
        log_file.parent.mkdir(parents=True, exist_ok=True)
        with log_file.open("ab") as log:
            child = subprocess.Popen(
                list(command),
                env=env,
                cwd=cwd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        process = psutil.Process(child.pid)
        self.pid_file.parent.mkdir(parents=True, exist_ok=True)
        self.pid_file.write_text(
            json.dumps({"pid": child.pid, "created": process.create_time(), "command": command})
        )
        return process

    def stop(self, timeout: float = 10.0) -> bool:
        """End the process and everything it started; ``False`` if it was not running."""
        process = self.process()
        self.pid_file.unlink(missing_ok=True)
        if process is None:
            return False
        end_tree(process, timeout)
        return True


def end_tree(process: psutil.Process, timeout: float = 10.0) -> None:
    """SIGTERM ``process`` and its descendants, then SIGKILL whatever is left."""
    try:
        tree = [process, *process.children(recursive=True)]
    except psutil.NoSuchProcess:
        return
    for member in tree:
        try:
            member.send_signal(signal.SIGTERM)
        except psutil.NoSuchProcess:
            continue
    _, alive = psutil.wait_procs(tree, timeout=timeout)
    for member in alive:
        try:
            member.kill()
        except psutil.NoSuchProcess:
            continue
    psutil.wait_procs(alive, timeout=timeout)


def wait_until(condition: Callable[[], bool], timeout: float, interval: float = 0.1) -> bool:
    """Poll ``condition()`` until it is true or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(interval)
    return condition()
