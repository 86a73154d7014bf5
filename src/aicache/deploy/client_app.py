"""aicache's ClientApp for Flower's deployment runtime (loaded by name from aicache's FAB).

It trains on the developer's own store (``$AICACHE_HOME`` of the SuperNode
that runs it), notes what each training reply sends off the machine, and
keeps models the server delivers in the node's inbox for ``aicache models
pull`` to verify. Flower starts a fresh process for every message, so this
module imports only what a client needs, and the examples extracted from
the store are cached on the node until the store changes.

Secure aggregation: the run config names the run's secure mode, and a
training or evaluation message goes to that mode's ClientApp (the same ones
a simulation runs, from :data:`~aicache.federation.secure_apps.SECURE_APPS`):
SecAgg+'s legacy app behind ``secaggplus_mod``, or the Message-API app that
encrypts with the federation's secret CKKS context (``he.ckks`` in the node's
folder, installed by ``aicache join --he-key``). Queries (a delivered model,
a request to decrypt a CKKS sum) are the Message-API app's.
"""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path

import numpy as np
from flwr.app import ConfigRecord, Context, Message, MessageType, RecordDict
from flwr.clientapp import ClientApp
from flwr.clientapp.typing import ClientAppCallable

from aicache.deploy.distribution import Delivery, Inbox
from aicache.federation.client_app import ClientData, make_client_app
from aicache.federation.privacy_view import (
    SecureMode,
    dp_mode_of,
    secure_aggregation,
    secure_mode,
)
from aicache.federation.validation import ENCRYPTED, NUM_EXAMPLES
from aicache.local.paths import aicache_home, ensure_private_dir, federation_dir
from aicache.tasks.base import AnyTask
from aicache.tasks.spec import Examples, get_spec

INSTALL = "install"  # the query that hands a signed model to a node
TRAIN_FRACTION = 0.7
HE_KEY = "he.ckks"  # the federation's secret CKKS context, in the node's folder
SECURE_KEY = "aicache-secure"  # the run config's secure mode: messages are routed by it
# SecAgg+'s stage configs (flwr.common.secure_aggregation.secaggplus_constants).
SECAGG_CONFIGS, SECAGG_MASKED_STAGE = "secaggplus_configs", "collect_masked_vectors"


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


def _payload_bytes(content: RecordDict) -> int:
    """The bytes of the arrays and byte strings a reply carries."""
    size = sum(
        int(np.asarray(a).nbytes)
        for record in content.array_records.values()
        for a in record.to_numpy_ndarrays()
    )
    for record in content.config_records.values():
        for value in record.values():
            items = value if isinstance(value, list) else [value]
            size += sum(len(item) for item in items if isinstance(item, bytes))
    return size


def _secagg_stage(message: Message) -> str | None:
    """The SecAgg+ stage a message asks for (``None``: not a SecAgg+ message)."""
    configs = message.content.config_records.get(SECAGG_CONFIGS)
    stage = None if configs is None else configs.get("stage")
    return str(stage) if stage is not None else None


def _record_sent(message: Message, context: Context, call_next: ClientAppCallable) -> Message:
    """Note what a training reply sends off the machine, and how it went (in the clear,
    masked or encrypted), for ``aicache status`` and ``aicache privacy report``."""
    stage = _secagg_stage(message)  # read first: secaggplus_mod consumes its stage config
    reply = call_next(message, context)
    if message.metadata.message_type != MessageType.TRAIN or reply.has_error():
        return reply
    config: ConfigRecord | None
    if stage is not None:
        if stage != SECAGG_MASKED_STAGE:  # keys and shares, no update
            return reply
        from flwr.compat.common import recorddict_compat as compat

        secure = SecureMode.SECAGG
        config = ConfigRecord(dict(compat.recorddict_to_fitins(message.content, True).config))
    else:
        config = message.content.config_records.get("config")
        secure = SecureMode.HE if ENCRYPTED in reply.content.array_records else SecureMode.OFF
    size = _payload_bytes(reply.content)
    metrics = reply.content.metric_records.get("metrics")
    weight = metrics.get(NUM_EXAMPLES, 0.0) if metrics is not None else 0.0
    count = float(weight) if isinstance(weight, int | float) else 0.0
    round_number = None if config is None else config.get("server-round")
    entry = {
        "dp": dp_mode_of(config).value,
        "secure": secure.value,
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


_PROVIDER = StoreProvider()
_SECRET = node_dir() / HE_KEY
_MODE_APPS: dict[SecureMode, ClientApp] = {}


def _route(message: Message, context: Context, call_next: ClientAppCallable) -> Message:
    """Hand a training or evaluation message to the ClientApp of the run's secure mode."""
    if message.metadata.message_type not in (MessageType.TRAIN, MessageType.EVALUATE):
        return call_next(message, context)
    mode = secure_mode(str(context.run_config.get(SECURE_KEY, SecureMode.OFF.value)))
    if mode is SecureMode.OFF:
        return call_next(message, context)
    if secure_aggregation(mode).needs_keys and not _SECRET.exists():
        raise RuntimeError(
            f"the run asks for --secure {mode} and this node holds no CKKS key: rejoin "
            "with `aicache join BUNDLE --he-key FILE` (the key authority's node key)"
        )
    # Imported here: plain runs' ClientApp processes do not pay for the secure modes.
    from aicache.federation.secure_apps import SECURE_APPS, AppOptions

    apps = SECURE_APPS[mode]
    if apps.client is SECURE_APPS[SecureMode.OFF].client:
        return call_next(message, context)  # this app is that mode's ClientApp
    if mode not in _MODE_APPS:
        _MODE_APPS[mode] = apps.client(_PROVIDER, AppOptions(secret_context=_SECRET))
    return _MODE_APPS[mode](message, context)


client_app = make_client_app(_PROVIDER, secret_key_file=str(_SECRET), mods=[_record_sent, _route])


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
