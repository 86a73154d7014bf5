"""The operator's side: the SuperLink of a federation directory, its nodes and runs.

The directory made by ``aicache server init`` also holds, once used:

- ``flower/``: the ``FLWR_HOME`` of every Flower process and command started
  for this federation (its ``config.toml`` names the SuperLink connection);
- ``state.db``: the SuperLink's persistent state; ``superlink.log`` its log;
- ``nodes.db``: enrolled nodes by name, their Flower node ids and public keys,
  when each was revoked and the last round it took part in;
- ``nodes/``: the nodes' key pairs (owner-only);
- ``registry/``: the federation's model registry (versions, signatures, the
  privacy ledger);
- ``he-public.ckks``: for ``--secure he``, the key authority's public CKKS
  context (``aicache server he-key``); the secret one is never here.

:class:`ServerDirectory` is the one object the commands hold; the work lives
beside it: the node book (:mod:`~aicache.deploy.node_book`), SuperLink
supervision (:mod:`~aicache.deploy.superlink_control`), enrolment
(:mod:`~aicache.deploy.enrolment`) and certificate rotation
(:mod:`~aicache.deploy.ca_rotation`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from aicache.deploy import ca_rotation, enrolment, superlink_control
from aicache.deploy.bundle import Bundle
from aicache.deploy.ca_rotation import CA_BUNDLE
from aicache.deploy.node_book import NodeBook, NodeRecord
from aicache.deploy.processes import Supervised
from aicache.deploy.superlink_control import CONNECTION
from aicache.errors import AicacheError
from aicache.security.federation_dir import (
    CA_CERT,
    CONFIG,
    DEFAULT_PORT,
    SIGNING_KEY,
    FederationFiles,
)

__all__ = ["CONNECTION", "HE_PUBLIC", "NodeBook", "NodeRecord", "ServerDirectory"]

HE_PUBLIC = "he-public.ckks"  # the key authority's public CKKS context (--secure he)


class ServerDirectory:
    """A federation directory and the SuperLink it runs."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self.files = FederationFiles(self.root)
        self.config = self.files.read_config()
        self.files.keep_keys_apart()
        federation = self.config.get("federation", {})
        self.name = str(federation.get("name", "aicache"))
        self.address = str(federation.get("address", f"localhost:{DEFAULT_PORT}"))
        try:
            self.port = int(self.address.rsplit(":", 1)[1])
        except (IndexError, ValueError) as exc:
            raise AicacheError(
                f"the federation address {self.address!r} in {self.files.path(CONFIG)} has no port",
                hint='Write it as "host:port", e.g. "fl.example.internal:9092".',
            ) from exc
        self.flwr_home = self.root / "flower"
        self.registry = self.root / "registry"
        self.log_file = self.root / "superlink.log"
        self.superlink = Supervised(self.root / "superlink.pid")
        self.runtime = self.root / "superlink.json"
        self.workdir = self.root / "superlink"
        self.he_public = self.root / HE_PUBLIC

    # Files ----------------------------------------------------------------

    def path(self, name: str) -> Path:
        """A file of the directory."""
        return self.files.path(name)

    @property
    def trusted_ca(self) -> Path:
        """The CA certificates clients trust: both CAs during a CA roll, else the CA."""
        bundle = self.path(CA_BUNDLE)
        return bundle if bundle.exists() else self.path(CA_CERT)

    def nodes(self) -> NodeBook:
        """The enrolled nodes."""
        return NodeBook(self.root / "nodes.db")

    def insecure(self) -> bool:
        """Whether the running SuperLink was started without TLS."""
        try:
            return bool(json.loads(self.runtime.read_text()).get("insecure", False))
        except (FileNotFoundError, ValueError):
            return False

    def signing_key_path(self) -> Path:
        """The model-signing key."""
        return self.path(SIGNING_KEY)

    # The SuperLink (deploy/superlink_control.py) ---------------------------

    def start(self, *, insecure: bool = False, listen: str | None = None) -> int:
        """Start the SuperLink in the background and wait until it accepts connections.

        Returns its process id; raises :class:`~aicache.errors.AicacheError` if it
        is already running or exits before it listens (the log's last lines say why).
        """
        return superlink_control.start(self, insecure=insecure, listen=listen)

    def log_tail(self, offset: int = 0, lines: int = 3) -> str:
        """The last lines the SuperLink logged after ``offset``."""
        return superlink_control.log_tail(self, offset, lines)

    def stop(self) -> bool:
        """Stop the SuperLink and everything it started; ``False`` if it was not running."""
        return superlink_control.stop(self)

    def require_running(self) -> None:
        """Raise a clear error if the SuperLink is not running."""
        superlink_control.require_running(self)

    def flwr(self, *args: str, timeout: float = 120.0) -> dict[str, Any]:
        """Run a ``flwr`` command against this SuperLink and return its JSON answer."""
        return superlink_control.flwr(self, *args, timeout=timeout)

    def serverapp_running(self) -> bool:
        """Whether a ServerApp process of this SuperLink is alive."""
        return superlink_control.serverapp_running(self)

    def active_runs(self) -> list[int]:
        """Flower runs of this SuperLink that have not finished."""
        return superlink_control.active_runs(self)

    # Nodes (deploy/enrolment.py) -------------------------------------------

    def enroll(self, name: str, output: Path) -> Bundle:
        """Create ``name``'s key pair, register it, and write its bundle to ``output``."""
        return enrolment.enroll(self, name, output)

    def node_list(self) -> list[dict[str, Any]]:
        """Every node Flower knows and every enrolled one: name, id, Flower's status, last round."""
        return enrolment.node_list(self)

    def revoke(self, name: str) -> NodeRecord | int:
        """Unregister ``name`` (or an unknown node's id): it is refused at its next connection."""
        return enrolment.revoke(self, name)

    # Certificates (deploy/ca_rotation.py) -----------------------------------

    def rotate(
        self, *, days: int, roll_ca: bool = False, end_overlap: bool = False, force: bool = False
    ) -> list[str]:
        """Issue a new server certificate (and with ``roll_ca`` a new CA); restart if running."""
        return ca_rotation.rotate(
            self, days=days, roll_ca=roll_ca, end_overlap=end_overlap, force=force
        )
