"""``python -m aicache.deploy.superexec``: Flower's SuperExec, starting each ClientApp warm.

Flower's SuperExec starts one ``flwr-clientapp`` process per message: a new
interpreter that imports Flower and aicache again every time (about 1.4 s
of a round on a 2-core machine). This entry point is Flower's own
``flower-superexec`` (same arguments, same loop, same Runtime API and
tokens) with one change: its *executor*, Flower's seam for how a task's
process is started. Before the loop starts, this process imports what a
ClientApp needs (Flower's ClientApp runtime, aicache's ClientApp, the task
modules); for each ClientApp task it then forks a child that runs Flower's
``run_clientapp`` with the task's token, exactly what ``flwr-clientapp``
would run, and exits. The child is a fresh process (a message's state
never outlives it), started in milliseconds with nothing to import.

The SuperNode (``aicache.deploy.supernode``) starts this process itself
and runs Flower's SuperNode in ``--isolation process`` mode, Flower's mode
for a SuperExec managed outside the SuperNode. It wakes this process
(SIGUSR1) when a message arrives, so the loop sleeps between messages
instead of asking the Runtime API for work ten times a second (a fallback
poll every ``IDLE_SUPEREXEC_POLL`` seconds remains). Other task types, and
platforms without ``fork`` (or with ``AICACHE_NODE_WARM=0``), use Flower's
own subprocess executor unchanged. Checked against flwr 1.42.
"""

from __future__ import annotations

import gc
import importlib
import os
import select
import signal
import sys
import threading
import time
import traceback
from logging import INFO, WARNING
from types import ModuleType
from typing import Any

from aicache.deploy.polling import IDLE_SUPEREXEC_POLL
from aicache.local.settings import parse_switch

WARM_VARIABLE = "AICACHE_NODE_WARM"


def warm_enabled() -> bool:
    """Whether ClientApps are forked from a warm process (``AICACHE_NODE_WARM``, default on).

    Only where ``fork`` is safe to rely on: Linux. Elsewhere Flower's own
    process per message is used.
    """
    try:
        if not parse_switch(os.environ.get(WARM_VARIABLE, "on")):
            return False
    except ValueError:
        pass  # a word that is not a switch leaves the default
    return sys.platform.startswith("linux") and hasattr(os, "fork")


def preload() -> None:
    """Import what every ClientApp process would import, once, before any fork."""
    import flwr.clientapp.utils
    import flwr.supernode.runtime.run_clientapp  # noqa: F401

    import aicache.deploy.client_app  # noqa: F401
    from aicache.tasks.spec import load_task_modules

    load_task_modules()


class ForkExecutor:
    """Flower's executor protocol: ClientApp tasks run in children forked from this process.

    Anything else goes to ``fallback`` (Flower's subprocess executor).
    """

    def __init__(self, fallback: Any) -> None:
        self._fallback = fallback
        self._children: set[int] = set()

    def get_eligible_capacity(
        self,
        supported_task_types: set[Any],
        *,
        insecure: bool = False,
        root_certificates_path: str | None = None,
    ) -> tuple[set[Any], set[str]]:
        """Every task type can start without waiting, as with Flower's subprocess executor."""
        return self._fallback.get_eligible_capacity(  # type: ignore[no-any-return]
            supported_task_types, insecure=insecure, root_certificates_path=root_certificates_path
        )

    def wait_for_capacity(self, task_type: Any = None, **kwargs: Any) -> None:
        """Forking has no capacity gate."""
        self._fallback.wait_for_capacity(task_type, **kwargs)

    def launch(self, spec: Any) -> Any:
        """Fork a child that runs the ClientApp task ``spec`` describes."""
        from flwr.supercore import log
        from flwr.supercore.constant import TaskType
        from flwr.supercore.superexec.executor import LaunchResult

        if spec.task_type != TaskType.CLIENT_APP:
            return self._fallback.launch(spec)
        # Buffered output would otherwise be written twice, once by each process.
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:  # the child never returns from here
            _run_child(spec)
        self._children.add(pid)
        log(
            INFO,
            "aicache: ClientApp task started in pid %s, forked from warm pid %s",
            pid,
            os.getpid(),
        )
        return LaunchResult.accepted()

    def reconcile(self) -> None:
        """Reap the children that finished (the SuperExec's loop calls this every poll)."""
        for pid in list(self._children):
            try:
                done, _ = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                done = pid
            if done:
                self._children.discard(pid)
        self._fallback.reconcile()

    def close(self) -> None:
        """End the children still running (they would also stop on their own: they watch
        this process's pid)."""
        for pid in self._children:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                continue
        self._fallback.close()


def _run_child(spec: Any) -> None:
    """In the forked child: run Flower's ClientApp runtime for one task, then exit."""
    from flwr.supercore import log

    code = 1
    started = time.monotonic()
    try:
        from flwr.supercore.exit import exit_handler
        from flwr.supercore.tls import validate_and_resolve_root_certificates
        from flwr.supernode.runtime.run_clientapp import run_clientapp

        # The SuperExec's exit handlers (close its client, its executor) are not the child's.
        exit_handler._lock_handlers = threading.Lock()
        exit_handler.registered_exit_handlers.clear()
        signal.set_wakeup_fd(-1)  # the SuperExec's wake-up pipe is not the child's
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, signal.SIG_DFL)
        sys.argv = ["flwr-clientapp"]  # what Flower's exit path reads to name the process
        run_clientapp(
            runtime_api_address=spec.runtime_api_address,
            token=spec.token,
            insecure=spec.insecure,
            certificates=validate_and_resolve_root_certificates(
                spec.root_certificates_path, spec.insecure
            ),
            parent_pid=spec.parent_pid,
            runtime_dependency_install=spec.runtime_dependency_install,
        )
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:
        traceback.print_exc()
    finally:
        log(
            INFO,
            "aicache: ClientApp task in pid %s ended in %.3f s",
            os.getpid(),
            time.monotonic() - started,
        )
        sys.stdout.flush()
        sys.stderr.flush()
        # Not sys.exit: the parent's atexit work and threads are not the child's.
        os._exit(code)


class _WakeableTime(ModuleType):
    """The ``time`` module, whose ``sleep`` lasts until the SuperNode's wake-up (SIGUSR1).

    The signal writes a byte to a pipe (``signal.set_wakeup_fd``), so a
    wake-up sent while the loop is busy is not lost: the next sleep returns
    at once. Without one, a sleep lasts ``IDLE_SUPEREXEC_POLL`` seconds at most.
    """

    def __init__(self) -> None:
        super().__init__("time")
        self._read, self._write = os.pipe()
        os.set_blocking(self._read, False)
        os.set_blocking(self._write, False)
        signal.set_wakeup_fd(self._write)
        signal.signal(signal.SIGUSR1, lambda _signum, _frame: None)

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)

    def sleep(self, seconds: float) -> bool:
        """Wait for a wake-up, or ``IDLE_SUPEREXEC_POLL`` seconds (``seconds`` is Flower's poll).

        Returns whether a wake-up ended the wait (Flower ignores it).
        """
        ready, _, _ = select.select([self._read], [], [], max(seconds, IDLE_SUPEREXEC_POLL))
        if ready:
            try:
                while os.read(self._read, 512):
                    pass
            except BlockingIOError:
                pass
        return bool(ready)

    def close(self) -> None:
        """Stop listening for wake-ups and close the pipe."""
        signal.set_wakeup_fd(-1)
        os.close(self._read)
        os.close(self._write)


def main() -> None:
    """Run Flower's ``flower-superexec`` with the forking executor, after the preload."""
    from flwr.supercore import log
    from flwr.supercore.constant import ExecutorType

    # The modules, not the functions of the same names their packages may export.
    cli = importlib.import_module("flwr.supercore.cli.flower_superexec")
    loop: Any = importlib.import_module("flwr.supercore.superexec.run_superexec")

    original = loop.get_executor
    warm = warm_enabled()
    if warm:
        preload()
        # Out of the collector's reach: it no longer walks these objects on every poll,
        # and forked children do not copy the pages it would have touched.
        gc.freeze()
    else:
        log(WARNING, "aicache: ClientApps start as fresh processes (%s is off)", WARM_VARIABLE)
    loop.time = _WakeableTime()

    def get_executor(executor_type: Any, executor_config: Any = None, **kwargs: Any) -> Any:
        executor = original(executor_type, executor_config, **kwargs)
        if warm and executor_type == ExecutorType.SUBPROCESS:
            return ForkExecutor(executor)
        return executor

    loop.get_executor = get_executor
    sys.argv = ["flower-superexec", *sys.argv[1:]]
    cli.flower_superexec()


if __name__ == "__main__":
    main()
