"""``python -m aicache.deploy.supernode``: Flower's SuperNode, running only the federation's app,
with a shorter idle poll.

**Only the federation's app.** Before the SuperNode stores a run's Flower App
(FAB), which its ClientApp processes would then import, the app's SHA-256
must be signed with the federation's key (``--app-key``, the bundle's
model-verifying key) in the run's config (``aicache-app-signature``). A run
whose app fails is answered with Flower's own "invalid FAB" error reply,
exactly as Flower's trusted-entities check does, and its app is never stored,
so none of its code runs on the developer's machine. The check wraps
``_pull_and_store_message``: it sees the run (``get_run``) and the app
(``get_fab``) Flower fetched for the message, and nothing else changes.

**Shorter poll.** Flower 1.42's SuperNode waits a fixed 3 s after every poll that found no
message (and 0.5 s between checks for its ClientApp's reply); no flag or
variable changes it, and on loopback it dominates a round's latency. This
entry point caps those waits at ``AICACHE_NODE_POLL`` seconds (default 0.2)
and then runs Flower's own ``flower-supernode`` unchanged. The cap holds for
``HOT_SECONDS`` after the last message; an idle node goes back to polling
every ``IDLE_NODE_POLL`` seconds, so it costs little CPU between runs. The cap only
replaces the ``time`` module the SuperNode's loop sees; everything else is
Flower's. Checked against flwr 1.42 (the version aicache pins).

**Warm ClientApps.** Flower's subprocess isolation starts ``flower-superexec``,
which starts a fresh ``flwr-clientapp`` interpreter per message. This entry
point runs the SuperNode in Flower's ``--isolation process`` mode instead and
starts the SuperExec itself: ``python -m aicache.deploy.superexec``, Flower's
SuperExec whose executor forks each ClientApp from a process that already
imported Flower and aicache (see that module). The SuperExec gets the same
arguments Flower's subprocess mode gives it, is woken (SIGUSR1) when a
message arrives, and ends with the SuperNode. ``AICACHE_NODE_WARM=0`` keeps
Flower's own launch path (a ``flwr-clientapp`` process per message).
"""

from __future__ import annotations

import argparse
import importlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Any

from aicache.deploy.polling import HOT_SECONDS, IDLE_NODE_POLL, NODE_POLL, env_seconds
from aicache.deploy.superexec import warm_enabled
from aicache.security.app_signing import APP_SIGNATURE_KEY, AppRefused, check_app


class _CappedTime(ModuleType):
    """The ``time`` module, with ``sleep`` capped at ``limit`` seconds while the node is busy.

    Busy means a message arrived less than ``HOT_SECONDS`` ago (``busy()``
    marks it). Past that, only Flower's idle poll (3 s) is capped at
    ``IDLE_NODE_POLL``: an idle node costs little, and the first message after
    a quiet spell waits at most that long.
    """

    def __init__(self, limit: float) -> None:
        super().__init__("time")
        self._limit = limit
        self._last_message = -HOT_SECONDS

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)

    def busy(self) -> None:
        """A message just arrived: poll fast for a while."""
        self._last_message = time.monotonic()

    def sleep(self, seconds: float) -> None:
        """Sleep at most the cap (busy), or at most the idle poll (idle)."""
        hot = time.monotonic() - self._last_message < HOT_SECONDS
        time.sleep(min(seconds, self._limit if hot else max(self._limit, IDLE_NODE_POLL)))


def only_signed_apps(module: Any, app_key: bytes) -> None:
    """Make ``module._pull_and_store_message`` refuse runs whose app the federation did not sign."""
    from logging import ERROR

    from flwr.app import Error, Message
    from flwr.common.constant import ErrorCode
    from flwr.supercore import log

    original = module._pull_and_store_message

    def guarded(**kwargs: Any) -> int | None:
        runs: dict[int, Any] = {}
        pulled: list[Any] = []
        receive, get_run, get_fab = kwargs["receive"], kwargs["get_run"], kwargs["get_fab"]

        def receive_and_note() -> Any:
            got = receive()
            if got is not None:
                pulled.append(got[0])
            return got

        def get_and_note_run(run_id: int) -> Any:
            runs[run_id] = run = get_run(run_id)
            return run

        def get_checked_fab(fab_hash: str, run_id: int) -> Any:
            fab = get_fab(fab_hash, run_id)
            run = runs.get(run_id)
            config = {} if run is None else dict(run.override_config)
            check_app(fab.content, config.get(APP_SIGNATURE_KEY), app_key)
            return fab

        kwargs.update(receive=receive_and_note, get_run=get_and_note_run, get_fab=get_checked_fab)
        try:
            return original(**kwargs)  # type: ignore[no-any-return]
        except AppRefused as exc:
            message = pulled[-1]
            log(ERROR, "aicache: run %s refused: %s", message.metadata.run_id, exc)
            error = Error(ErrorCode.INVALID_FAB, f"aicache refused the run's app: {exc}")
            module._insert_message(
                Message(error, reply_to=message), kwargs["state"], kwargs["object_store"]
            )
            return int(message.metadata.run_id)

    module._pull_and_store_message = guarded


_superexecs: list[subprocess.Popen[bytes]] = []  # kept: it runs as long as this process


def on_message(module: Any, clock: _CappedTime) -> None:
    """After ``module._pull_and_store_message`` stored a message: poll fast, wake the SuperExec.

    The wake-up (SIGUSR1) lets aicache's SuperExec sleep between messages
    instead of asking the Runtime API ten times a second.
    """
    pull = module._pull_and_store_message

    def pulled(**kwargs: Any) -> int | None:
        run_id: int | None = pull(**kwargs)
        if run_id is not None:
            clock.busy()
            for superexec in _superexecs:
                if superexec.poll() is None:
                    os.kill(superexec.pid, signal.SIGUSR1)
        return run_id

    module._pull_and_store_message = pulled


def warm_superexec(module: Any) -> None:
    """Make ``module.start_client_internal`` start aicache's SuperExec and run in process mode.

    Only when the SuperNode would start Flower's own SuperExec (subprocess
    isolation); the command line is the one Flower's subprocess mode builds,
    with aicache's entry point in place of ``flower-superexec``.
    """
    from flwr.common.constant import ISOLATION_MODE_PROCESS, ISOLATION_MODE_SUBPROCESS
    from flwr.supercore.address import resolve_bind_address
    from flwr.supercore.tls import get_client_tls_args

    original = module.start_client_internal

    def start(**kwargs: Any) -> None:
        if kwargs.get("isolation", ISOLATION_MODE_SUBPROCESS) == ISOLATION_MODE_SUBPROCESS:
            command = [sys.executable, "-m", "aicache.deploy.superexec"]
            command += get_client_tls_args(
                insecure=kwargs.get("runtime_certificates") is None,
                root_certificates_path=kwargs.get("runtime_root_certificates_path"),
            )
            command += [
                "--runtime-api-address",
                resolve_bind_address(kwargs["runtime_api_address"]),
            ]
            command += ["--parent-pid", str(os.getpid())]
            if kwargs.get("runtime_dependency_install"):
                command += ["--allow-runtime-dependency-installation"]
            # Ignored until it is ready for it (an ignored signal stays ignored across exec,
            # a handled one does not): a wake-up can never end it while it starts.
            signal.signal(signal.SIGUSR1, signal.SIG_IGN)
            # It watches this pid and stops when the SuperNode does.
            _superexecs.append(subprocess.Popen(command))
            kwargs["isolation"] = ISOLATION_MODE_PROCESS
        original(**kwargs)

    module.start_client_internal = start


def main() -> None:
    """Run Flower's SuperNode: only the federation's app, with the capped idle poll, and
    ClientApps started by aicache's warm SuperExec."""
    parser = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    parser.add_argument("--app-key", type=Path, required=True)
    ours, flower_args = parser.parse_known_args()

    from flwr.supernode import start_client_internal

    # The module, not the function of the same name its package exports.
    cli = importlib.import_module("flwr.supernode.cli.flower_supernode")

    only_signed_apps(start_client_internal, ours.app_key.read_bytes())
    clock = _CappedTime(env_seconds("AICACHE_NODE_POLL", NODE_POLL))
    start_client_internal.time = clock  # type: ignore[attr-defined]
    on_message(start_client_internal, clock)
    if warm_enabled():
        warm_superexec(cli)
    sys.argv = ["flower-supernode", *flower_args]
    cli.flower_supernode()


if __name__ == "__main__":
    main()
