"""aicache's ClientApp for Flower's deployment runtime (loaded by name from aicache's FAB).

It trains on the developer's own store (``$AICACHE_HOME`` of the SuperNode
that runs it), notes what each training reply sends off the machine, and
keeps models the server delivers in the node's inbox for ``aicache models
pull`` to verify. Flower starts a fresh process for every message, so this
module imports only what a client needs, and the examples extracted from
the store are cached on the node until the store changes.
"""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path

import numpy as np
from flwr.app import ConfigRecord, Context, Message, MessageType, RecordDict
from flwr.clientapp.typing import ClientAppCallable

from aicache.deploy.distribution import Delivery, Inbox
from aicache.federation.client_app import ClientData, make_client_app
from aicache.federation.privacy_view import dp_mode_of
from aicache.federation.validation import NUM_EXAMPLES
from aicache.local.paths import aicache_home, ensure_private_dir, federation_dir
from aicache.tasks.base import AnyTask
from aicache.tasks.spec import Examples, get_spec

INSTALL = "install"  # the query that hands a signed model to a node
TRAIN_FRACTION = 0.7


class StoreProvider:
    """A node's examples: its own store, split in time (earliest 70 % to train on).

    The store is read only through the task's own store reader (its spec's
    ``read_store``). Extracting examples from a long history takes about a
    second, and Flower starts a process per message, so the extracted
    examples are kept in the node's folder (owner-only ``.npz``, no pickles,
    written by the examples type's ``save``) under a key that changes
    whenever what the reader reads does (its spec's ``store_version``).
    """

    def __init__(self) -> None:
        self._memo: dict[str, ClientData] = {}

    def client_data(self, task: AnyTask, client: int) -> ClientData:
        """The examples of this machine's store for ``task`` (``client`` is unused)."""
        if task.name not in self._memo:
            examples = self._load(task)
            cut = int(len(examples) * TRAIN_FRACTION)
            self._memo[task.name] = ClientData(
                train=examples.slice(0, cut), test=examples.slice(cut, None)
            )
        return self._memo[task.name]

    def _load(self, task: AnyTask) -> Examples:
        from aicache import __version__

        spec = get_spec(task.name)
        if spec.read_store is None or spec.store_version is None:
            raise RuntimeError(f"task {task.name} cannot train on a node: it reads no store")
        home = aicache_home()
        key = f"{task.name}-{__version__}-{spec.store_version(home)}"
        cached = node_dir() / "examples" / f"{key}.npz"
        if cached.exists():
            try:
                return spec.examples.load(cached)
            except (OSError, ValueError, KeyError):
                cached.unlink(missing_ok=True)
        examples = spec.read_store(task, home)
        folder = ensure_private_dir(cached.parent)
        for old in folder.glob(f"{task.name}-*.npz"):
            old.unlink(missing_ok=True)
        temporary = folder / f"{key}.tmp.npz"
        examples.save(temporary)
        temporary.chmod(0o600)
        temporary.replace(cached)
        return examples


def node_dir() -> Path:
    """Where a joined node keeps its bundle, keys, inbox and status."""
    return federation_dir(aicache_home())


def _record_sent(message: Message, context: Context, call_next: ClientAppCallable) -> Message:
    """Note what a training reply sends off the machine (for ``aicache status``)."""
    reply = call_next(message, context)
    if message.metadata.message_type != MessageType.TRAIN or reply.has_error():
        return reply
    arrays = reply.content.array_records
    size = sum(int(np.asarray(a).nbytes) for r in arrays.values() for a in r.to_numpy_ndarrays())
    metrics = reply.content.metric_records.get("metrics")
    weight = metrics.get(NUM_EXAMPLES, 0.0) if metrics is not None else 0.0
    count = float(weight) if isinstance(weight, int | float) else 0.0
    config = message.content.config_records.get("config")
    round_number = None if config is None else config.get("server-round")
    entry = {
        "dp": dp_mode_of(config).value,
        "time": time.time(),
        "run": message.metadata.run_id,
        "round": round_number if isinstance(round_number, int) else 0,
        "task": str(config.get("task", "?")) if config is not None else "?",
        "bytes": size,
        "weight": count if math.isfinite(count) else 0.0,
    }
    folder = node_dir()
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(folder / "sent.jsonl", os.O_CREAT | os.O_WRONLY | os.O_APPEND, 0o600)
    with os.fdopen(fd, "a") as handle:
        handle.write(json.dumps(entry) + "\n")
    return reply


client_app = make_client_app(StoreProvider(), mods=[_record_sent])


@client_app.query(INSTALL)
def _install(message: Message, context: Context) -> Message:
    """Keep a delivered model in the inbox if it verifies; ``aicache models pull`` installs it.

    Only a delivery signed by the federation's key is written at all, so
    nothing unverified names a file on the developer's machine.
    """
    from aicache.security import signing

    record = message.content.config_records["delivery"]
    delivery = Delivery(
        manifest=str(record["manifest"]).encode(),
        signature=bytes.fromhex(str(record["signature"])),
        artifact=bytes.fromhex(str(record["artifact"])),
    )
    key = signing.load_public((node_dir() / "signing.pub").read_bytes())
    delivery.verify(key, what="a delivered model")  # raises: the reply carries the error
    Inbox(node_dir() / "inbox").put(delivery)
    return Message(RecordDict({"ok": ConfigRecord({"stored": 1})}), reply_to=message)
