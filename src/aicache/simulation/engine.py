"""Running a ServerApp and ClientApp under Flower's Simulation Engine, and cleaning up.

Flower's pitfalls are handled here: telemetry and update checks off, a
private FLWR_HOME, Ray kept on loopback with its usage reporting off, the
deprecation notice of the Python entry point muted, and the process
environment restored afterwards.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from aicache.federation.environment import QUIET_ENVIRONMENT

if TYPE_CHECKING:
    from flwr.clientapp import ClientApp
    from flwr.common import Context, Message
    from flwr.serverapp import Grid, ServerApp


class _DropDeprecationNotice(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "DEPRECATED FEATURE" not in record.getMessage()


@contextmanager
def flower_environment(*, verbose: bool = False) -> Iterator[None]:
    """Set up the process for Flower and undo every change on exit."""
    saved = dict(os.environ)
    with tempfile.TemporaryDirectory(prefix="aicache-flwr-") as flwr_home:
        os.environ.update(QUIET_ENVIRONMENT)
        os.environ["FLWR_HOME"] = flwr_home
        logger = logging.getLogger("flwr")
        level = logger.level
        notice = _DropDeprecationNotice()
        logger.addFilter(notice)
        if not verbose:
            logger.setLevel(logging.WARNING)
        try:
            yield
        finally:
            logger.removeFilter(notice)
            logger.setLevel(level)
            os.environ.clear()
            os.environ.update(saved)


class SimulationInterrupted(Exception):
    """Ctrl-C ended the simulation; Flower's threads and Ray are stopped."""


class _Stopped(Exception):
    """Raised in the ServerApp's thread once the simulation is told to stop."""


POLL_SECONDS = 0.1
# Ctrl-C must end the command within 5 s: ClientApp tasks still running this
# long after it are ended with their Ray workers.
WORKERS_GRACE_SECONDS = 2.0
STOP_SECONDS = 4.0
PR_SET_CHILD_SUBREAPER = 36


def stoppable_grid(grid: Grid, stop: threading.Event) -> Grid:
    """``grid``, but every call raises once ``stop`` is set.

    Flower's in-memory grid waits for replies until the round's timeout, and the
    Simulation Engine never tells the ServerApp's thread to end: after Ctrl-C
    the process would wait on that thread for as long as the timeout.
    """
    from flwr.serverapp import Grid

    class _StoppableGrid(Grid):
        def _check(self) -> None:
            if stop.is_set():
                raise _Stopped("the simulation was interrupted")

        def set_run(self, run: Any) -> None:
            grid.set_run(run)

        @property
        def run(self) -> Any:
            return grid.run

        def create_message(self, *args: Any, **kwargs: Any) -> Message:
            return grid.create_message(*args, **kwargs)

        def get_node_ids(self) -> Iterable[int]:
            self._check()
            return grid.get_node_ids()

        def push_messages(self, messages: Iterable[Message]) -> Iterable[str]:
            self._check()
            return grid.push_messages(messages)

        def pull_messages(self, message_ids: Iterable[str]) -> Iterable[Message]:
            self._check()
            return grid.pull_messages(message_ids)

        def send_and_receive(
            self, messages: Iterable[Message], *, timeout: float | None = None
        ) -> Iterable[Message]:
            # Flower's own loop, with the stop checked at every poll.
            waiting = set(self.push_messages(messages))
            end = None if timeout is None else time.monotonic() + timeout
            replies: list[Message] = []
            while waiting and (end is None or time.monotonic() < end):
                pulled = list(self.pull_messages(waiting))
                replies.extend(pulled)
                waiting.difference_update(m.metadata.reply_to_message_id for m in pulled)
                if waiting:
                    stop.wait(POLL_SECONDS)
            return replies

    return _StoppableGrid()


def _stoppable(server_app: ServerApp, stop: threading.Event) -> ServerApp:
    """A ServerApp that runs ``server_app`` on a grid that ends when ``stop`` is set."""
    from flwr.serverapp import ServerApp

    app = ServerApp()

    @app.main()
    def main(grid: Grid, context: Context) -> None:
        try:
            server_app(stoppable_grid(grid, stop), context)
        except _Stopped:
            return

    return app


def _adopt_orphans() -> None:
    """Become the parent of our descendants whose parent dies (Linux' child subreaper).

    Ray's raylet ends on the terminal's Ctrl-C too; its workers then lose their
    parent, and only as our children can they still be found and ended.
    """
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


def _ray_workers_ended(after: float, ended: threading.Event) -> None:
    """If the engine has not ended ``after`` seconds past Ctrl-C, end Ray's worker processes.

    The engine's threads wait for the ClientApp task each of them runs; a long
    one would keep Ctrl-C waiting. Ray reports a worker that died to whoever
    waits on it, so ending them (our own descendants, by id) frees those threads.
    """
    import psutil

    if ended.wait(after):
        return
    for child in psutil.Process().children(recursive=True):
        try:
            if child.cmdline()[:1] and child.cmdline()[0].startswith("ray::"):
                child.kill()
        except psutil.Error:
            continue


def _descendants_ended(deadline: float) -> None:
    """Wait until ``deadline`` for every process the simulation started to end; kill the rest."""
    import psutil

    children = psutil.Process().children(recursive=True)
    _, alive = psutil.wait_procs(children, timeout=max(0.0, deadline - time.monotonic()))
    for process in alive:
        with contextlib.suppress(psutil.Error):
            process.kill()
    psutil.wait_procs(alive, timeout=1.0)


def simulate(
    server_app: ServerApp, client_app: ClientApp, *, clients: int, cpus: int, verbose: bool = False
) -> None:
    """Run the apps with ``clients`` virtual SuperNodes on ``cpus`` Ray workers.

    Ctrl-C stops the ServerApp at its next exchange with the clients; the
    engine then ends as after a last round (its threads, then Ray). A second
    Ctrl-C changes nothing: stopping is already under way.

    Raises
    ------
    SimulationInterrupted
        After Ctrl-C, once Flower's threads and Ray have ended.
    """
    stop, ended = threading.Event(), threading.Event()
    interrupted_at: list[float] = []

    def on_interrupt(signum: int, frame: object) -> None:
        if stop.is_set():
            return
        interrupted_at.append(time.monotonic())
        stop.set()
        if not verbose:  # Flower's complaints about the missing replies are noise now
            logging.getLogger("flwr").setLevel(logging.CRITICAL + 1)
        threading.Thread(
            target=_ray_workers_ended, args=(WORKERS_GRACE_SECONDS, ended), daemon=True
        ).start()

    with flower_environment(verbose=verbose):
        import ray
        from flwr.simulation import run_simulation

        in_main = threading.current_thread() is threading.main_thread()
        previous = signal.signal(signal.SIGINT, on_interrupt) if in_main else None
        if in_main:
            _adopt_orphans()
        try:
            run_simulation(
                server_app=_stoppable(server_app, stop),
                client_app=client_app,
                num_supernodes=clients,
                backend_config={
                    "client_resources": {"num_cpus": 1, "num_gpus": 0.0},
                    "init_args": {
                        "num_cpus": cpus,
                        "num_gpus": 0,
                        "include_dashboard": False,
                        "logging_level": "ERROR",
                        "log_to_driver": verbose,
                    },
                },
                verbose_logging=verbose,
            )
        finally:
            ended.set()
            if ray.is_initialized():
                ray.shutdown()
            if stop.is_set():
                _descendants_ended(interrupted_at[0] + STOP_SECONDS)
            if previous is not None:
                signal.signal(signal.SIGINT, previous)
    if stop.is_set():
        raise SimulationInterrupted("interrupted")
