"""Enrolling, listing and revoking the nodes of a federation.

Each enrolment gets a fresh key pair, registered with the SuperLink under the
node's name, and a bundle the developer joins with; revoking unregisters the
key, so the node is refused at its next connection.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from aicache.deploy.bundle import Bundle, check_name, write_private_text
from aicache.deploy.node_book import NodeRecord
from aicache.deploy.superlink_control import CONNECTION
from aicache.errors import AicacheError
from aicache.security.federation_dir import SIGNING_PUB
from aicache.security.node_keys import new_node_key

if TYPE_CHECKING:
    from aicache.deploy.server import ServerDirectory

UNREGISTERED = "unregistered"  # Flower's status of a node whose key was unregistered


def enroll(directory: ServerDirectory, name: str, output: Path) -> Bundle:
    """Create ``name``'s key pair, register it, and write its bundle to ``output``.

    Raises
    ------
    AicacheError
        If the name is taken by an enrolled node, or the SuperLink refuses.
    """
    check_name(name)
    directory.require_running()
    keys = directory.root / "nodes"
    keys.mkdir(mode=0o700, exist_ok=True)
    private_path = keys / f"{name}.key"
    with directory.nodes() as book:
        known = book.get(name)
        if known is not None and known.revoked_at is None:
            raise AicacheError(
                f"a node called {name!r} is already enrolled (node {known.node_id})",
                hint="Revoke it first (`aicache server revoke NAME`), or choose another name.",
            )
        # Every enrolment gets a fresh key: a key left from an enrolment that
        # failed half-way may already be registered, and a revoked one stays refused.
        private, public = new_node_key()
        write_private_text(private_path, private.decode())
        public_path = keys / f"{name}.pub"
        public_path.write_bytes(public + b"\n")
        answer = directory.flwr(
            "supernode", "register", str(public_path), CONNECTION, "--name", name
        )
        node_id = int(answer["node-id"])
        bundle = Bundle(
            federation=directory.name,
            name=name,
            node_id=node_id,
            address=directory.address,
            ca_pem=directory.trusted_ca.read_text(),
            signing_public_pem=directory.path(SIGNING_PUB).read_text(),
            node_private_key=private.decode(),
            insecure=directory.insecure(),
        )
        try:
            bundle.write(output)
        except OSError as exc:  # no half-enrolled node: take the key back
            directory.flwr("supernode", "unregister", str(node_id), CONNECTION)
            raise AicacheError(
                f"cannot write the bundle {output}: {exc.strerror or exc}",
                hint="Choose a writable place with -o; the node was not enrolled.",
            ) from exc
        book.add(name, node_id, public.decode())
    return bundle


def node_list(directory: ServerDirectory) -> list[dict[str, Any]]:
    """Every node Flower knows and every enrolled one: name, id, Flower's status, last round.

    A key registered with Flower other than by :func:`enroll` (there is no
    such way from the network, but ``flwr`` on the server itself can) is
    listed with ``unknown`` set and no name, until it is revoked.
    """
    flower = {
        int(node["node-id"]): node
        for node in directory.flwr("supernode", "list", CONNECTION).get("nodes", [])
    }
    rows = []
    with directory.nodes() as book:
        records = book.all()
    for record in records:
        status = flower.pop(record.node_id, {})
        rows.append(
            {
                "name": record.name,
                "node_id": record.node_id,
                "unknown": False,
                "status": "revoked" if record.revoked_at else status.get("status", "?"),
                "online_at": status.get("online-at"),
                "enrolled_at": record.enrolled_at,
                "revoked_at": record.revoked_at,
                "last_round": record.last_round,
                "last_run": record.last_run,
                "last_seen": record.last_seen,
            }
        )
    for node_id, status in sorted(flower.items()):
        if status.get("status") == UNREGISTERED:
            continue  # revoked: Flower refuses it
        rows.append(
            {
                "name": None,
                "node_id": node_id,
                "unknown": True,
                "status": status.get("status", "?"),
                "online_at": status.get("online-at"),
                "enrolled_at": None,
                "revoked_at": None,
                "last_round": None,
                "last_run": None,
                "last_seen": None,
            }
        )
    return rows


def revoke(directory: ServerDirectory, name: str) -> NodeRecord | int:
    """Unregister ``name`` from the SuperLink: it is refused at its next connection.

    ``name`` is an enrolled node's name, or the id of a node Flower knows that
    was not enrolled (``server nodes`` lists it as unknown).

    Returns
    -------
    NodeRecord | int
        The enrolled node revoked, or the id of the unknown node removed.

    Raises
    ------
    AicacheError
        If no such node is enrolled or known to Flower.
    """
    with directory.nodes() as book:
        record = book.get(name)
        if record is not None and record.revoked_at is None:
            directory.flwr("supernode", "unregister", str(record.node_id), CONNECTION)
            book.revoke(name)
            return record
        unknown = {row["node_id"] for row in node_list(directory) if row["unknown"]}
        if name.isdigit() and int(name) in unknown:
            directory.flwr("supernode", "unregister", name, CONNECTION)
            return int(name)
    raise AicacheError(
        f"no enrolled node called {name!r}, and no unknown node with that id",
        hint="`aicache server nodes` lists them.",
    )
