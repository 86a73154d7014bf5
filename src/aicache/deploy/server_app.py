"""aicache's ServerApp for Flower's deployment runtime (loaded by name from aicache's FAB).

The run config names the federation's registry, its node list, its name and
the registry run: the plan, the starting model and the privacy ledger are
read from the registry, so a run that is submitted again after the server
went away resumes after its last registered round. The plan's secure mode
picks the ServerApp (:data:`~aicache.federation.secure_apps.SECURE_APPS`, as in
a simulation); under ``--secure he`` the run config names the federation's
public CKKS context, the only key this process is ever given. Each round's model is
registered here and signed by the operator's ``aicache server run``, which
follows the run: this process never holds the signing key, nor is it told
where the federation's private keys are. At the end, once the last version
is signed, it is sent to every connected node.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from flwr.app import ConfigRecord, Context, Message, MessageType, RecordDict
from flwr.serverapp import Grid, ServerApp
from flwr.supercore.run import Run

from aicache.deploy.client_app import INSTALL
from aicache.deploy.distribution import Delivery, delivery_for
from aicache.deploy.polling import SERVER_POLL, env_seconds
from aicache.federation.secure_apps import SECURE_APPS, AppOptions
from aicache.federation.session import Ending, RunEnded, RunSession
from aicache.registry import ModelRegistry

REGISTRY_KEY, NODES_KEY = "aicache-registry", "aicache-nodes"
FEDERATION_KEY, RUN_KEY = "aicache-federation", "aicache-run"
# Under --secure he: the federation's public CKKS context (a path on the server's host).
HE_CONTEXT_KEY = "aicache-he-context"
SIGNATURE_WAIT = 60.0  # seconds the end of a run waits for the operator to sign its last model


class PollingGrid(Grid):
    """Flower's grid, asking for replies every ``interval`` seconds instead of every 3 s,
    and noting which nodes replied to a training round."""

    def __init__(self, inner: Grid, interval: float, on_replies: Any = None) -> None:
        self._inner = inner
        self._interval = interval
        self._on_replies = on_replies

    def set_run(self, run: Run) -> None:
        self._inner.set_run(run)

    @property
    def run(self) -> Run:
        return self._inner.run

    def create_message(self, *args: Any, **kwargs: Any) -> Message:
        return self._inner.create_message(*args, **kwargs)

    def get_node_ids(self) -> Iterable[int]:
        return self._inner.get_node_ids()

    def push_messages(self, messages: Iterable[Message]) -> Iterable[str]:
        return self._inner.push_messages(messages)

    def pull_messages(self, message_ids: Iterable[str]) -> Iterable[Message]:
        return self._inner.pull_messages(message_ids)

    def send_and_receive(
        self, messages: Iterable[Message], *, timeout: float | None = None
    ) -> Iterable[Message]:
        """Push ``messages`` and collect the replies until all came or ``timeout`` passed."""
        messages = list(messages)
        pending = set(self.push_messages(messages))
        deadline = None if timeout is None else time.monotonic() + timeout
        replies: list[Message] = []
        while pending:
            got = list(self.pull_messages(pending))
            replies.extend(got)
            pending -= {m.metadata.reply_to_message_id for m in got}
            if not pending or (deadline is not None and time.monotonic() >= deadline):
                break
            time.sleep(self._interval)
        if self._on_replies is not None:
            self._on_replies(messages, replies)
        return replies


def server_round(messages: list[Message]) -> int | None:
    """The run's round a batch of messages belongs to (from the config strategies send:
    ``config`` on the Message API, ``fitins.config`` on the legacy one SecAgg+ uses)."""
    for message in messages:
        for config in message.content.config_records.values():
            value = config.get("server-round")
            if isinstance(value, int):
                return value
    return None


def _config(context: Context, key: str) -> str:
    value = context.run_config.get(key)
    if not isinstance(value, str) or not value:
        raise ValueError(f"the run config has no {key!r}: submit runs with `aicache server run`")
    return value


def _server_main(grid: Grid, context: Context) -> None:
    from aicache.deploy.node_book import NodeBook

    registry_root = Path(_config(context, REGISTRY_KEY))
    nodes_db = Path(_config(context, NODES_KEY))
    name = _config(context, FEDERATION_KEY)
    run_id = _config(context, RUN_KEY)
    federation = f"deployment: {name}"

    def on_replies(sent: list[Message], replies: list[Message]) -> None:
        trained = [m for m in replies if m.metadata.message_type == MessageType.TRAIN]
        round_number = server_round(sent)
        if trained and round_number is not None:
            with NodeBook(nodes_db) as book:
                nodes = [m.metadata.src_node_id for m in trained if not m.has_error()]
                book.took_part(nodes, run_id, round_number)

    grid = PollingGrid(grid, env_seconds("AICACHE_SERVER_POLL", SERVER_POLL), on_replies)
    session = RunSession.attach(registry_root=registry_root, run_id=run_id, federation=federation)
    plan = session.plan
    observer = session.observe()
    apps = SECURE_APPS[plan.secure_aggregation.mode]
    public = context.run_config.get(HE_CONTEXT_KEY)
    options = AppOptions(
        public_context=Path(public)
        if plan.secure_aggregation.needs_keys and isinstance(public, str) and public
        else None
    )
    apps.server(plan, session.initial, observer, options)(grid, context)

    def deliver() -> list[str]:
        newest = _newest_signed(registry_root, plan.task, plan.round_timeout)
        if newest is None:
            return ["no signed version to send: `aicache server run` signs them"]
        version, delivery, unsigned = newest
        notes = []
        if unsigned:
            notes.append(
                f"{unsigned} newer version(s) not signed yet (nobody followed the run); "
                "the next `aicache server run` signs them"
            )
        # The nodes get the model before the run is called finished, so whoever
        # follows the run can pull it as soon as it ends. A failed delivery does
        # not undo the run's training: it is reported, and the next run delivers.
        try:
            sent = publish(grid, delivery, timeout=min(plan.round_timeout, 60.0))
            notes.append(f"version {version} sent to {sent} node(s)")
        except Exception as exc:
            notes.append(f"the model could not be sent to the nodes: {exc}")
        return notes

    try:
        # A budget that allows no round ends a deployed run with that note, not failed.
        session.finish(deliver=deliver, no_round_fails=False)
    except RunEnded as ended:
        if ended.ending is Ending.FAILED:
            raise RuntimeError(f"the run failed: {ended.reason}") from ended.__cause__
        raise RuntimeError("the run ended early") from None


def _newest_signed(
    registry_root: Path, task: str, round_timeout: float
) -> tuple[int, Delivery, int] | None:
    """The task's newest signed version as a delivery, once the operator signed the newest
    version (or after a wait): its number, the delivery, and how many newer are unsigned."""
    deadline = time.monotonic() + min(round_timeout, SIGNATURE_WAIT)
    while True:
        with ModelRegistry(registry_root) as registry:
            versions = registry.versions(task)
            signed = [v for v in versions if registry.signature(v.task, v.version)]
            newest = signed[-1].version if signed else 0
            unsigned = sum(1 for v in versions if v.version > newest)
            if signed and (unsigned == 0 or time.monotonic() >= deadline):
                return signed[-1].version, delivery_for(registry, signed[-1]), unsigned
            if time.monotonic() >= deadline:
                return None
        time.sleep(0.2)


def publish(grid: Grid, delivery: Delivery, *, timeout: float) -> int:
    """Send ``delivery`` to every connected node; returns how many confirmed it."""
    content = RecordDict(
        {
            "delivery": ConfigRecord(
                {
                    "manifest": delivery.manifest.decode(),
                    "signature": delivery.signature.hex(),
                    "artifact": delivery.artifact.hex(),
                }
            )
        }
    )
    messages = [
        Message(content, message_type=f"{MessageType.QUERY}.{INSTALL}", dst_node_id=node)
        for node in grid.get_node_ids()
    ]
    replies = grid.send_and_receive(messages, timeout=timeout)
    return sum(1 for reply in replies if not reply.has_error())


server_app = ServerApp()
server_app.main()(_server_main)
