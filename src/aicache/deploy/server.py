"""The operator's side: the SuperLink of a federation directory, its nodes and runs.

The directory made by ``aicache server init`` also holds, once used:

- ``flower/``: the ``FLWR_HOME`` of every Flower process and command started
  for this federation (its ``config.toml`` names the SuperLink connection);
- ``state.db``: the SuperLink's persistent state; ``superlink.log`` its log;
- ``nodes.db``: enrolled nodes by name, their Flower node ids and public keys,
  when each was revoked and the last round it took part in;
- ``nodes/``: the nodes' key pairs (owner-only);
- ``registry/``: the federation's model registry (versions, signatures, the
  privacy ledger).
"""

from __future__ import annotations

import json
import socket
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from aicache.deploy.bundle import Bundle, check_name, write_private_text
from aicache.deploy.processes import Supervised, flower_env, wait_until
from aicache.deploy.superlink import OPERATOR_HOST
from aicache.errors import AicacheError
from aicache.security.federation_dir import (
    CA_CERT,
    CA_KEY,
    CONFIG,
    DEFAULT_PORT,
    SERVER_CERT,
    SERVER_KEY,
    SIGNING_KEY,
    SIGNING_PUB,
    FederationFiles,
)
from aicache.security.node_keys import new_node_key

CONNECTION = "aicache"
CA_BUNDLE = "ca-bundle.pem"  # during a CA roll: the new CA and the old one
CA_BRIDGE = "ca-bridge.pem"  # during a CA roll: the new CA certified by the old one
CA_PREVIOUS_CERT = "ca-previous.pem"  # the old CA's certificate (its key is not kept)
START_TIMEOUT = 30.0
UNREGISTERED = "unregistered"  # Flower's status of a node whose key was unregistered

_NODES_SCHEMA = """
CREATE TABLE IF NOT EXISTS nodes (
    name TEXT PRIMARY KEY,
    node_id TEXT NOT NULL,  -- Flower's ids are unsigned 64-bit: beyond SQLite's INTEGER
    public_key TEXT NOT NULL,
    enrolled_at REAL NOT NULL,
    revoked_at REAL,
    last_round INTEGER,
    last_run TEXT,
    last_seen REAL
)
"""


@dataclass(frozen=True, slots=True)
class NodeRecord:
    """An enrolled node as the server remembers it."""

    name: str
    node_id: int
    public_key: str
    enrolled_at: float
    revoked_at: float | None
    last_round: int | None
    last_run: str | None
    last_seen: float | None


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


def _record(row: tuple[Any, ...]) -> NodeRecord:
    return NodeRecord(row[0], int(row[1]), *row[2:])


class NodeBook:
    """``nodes.db``: which name is which Flower node, and when each last took part."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self._conn = sqlite3.connect(path, timeout=30, isolation_level=None)
        except sqlite3.DatabaseError as exc:
            raise AicacheError(f"the node list {path} cannot be opened: {exc}") from exc
        try:
            self._conn.execute(_NODES_SCHEMA)
        except sqlite3.DatabaseError as exc:
            self._conn.close()
            raise AicacheError(
                f"the node list {path} cannot be used: {exc}",
                hint="Move it aside; enrolled nodes must then be enrolled again.",
            ) from exc
        path.chmod(0o600)

    def close(self) -> None:
        """Close the database."""
        self._conn.close()

    def __enter__(self) -> NodeBook:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def get(self, name: str) -> NodeRecord | None:
        """The node called ``name``."""
        row = self._conn.execute("SELECT * FROM nodes WHERE name = ?", (name,)).fetchone()
        return None if row is None else _record(row)

    def all(self) -> list[NodeRecord]:
        """Every node ever enrolled, by name."""
        rows = self._conn.execute("SELECT * FROM nodes ORDER BY name").fetchall()
        return [_record(row) for row in rows]

    def add(self, name: str, node_id: int, public_key: str) -> None:
        """Record an enrolment (replacing a revoked one of the same name)."""
        self._conn.execute(
            "INSERT OR REPLACE INTO nodes (name, node_id, public_key, enrolled_at) "
            "VALUES (?, ?, ?, ?)",
            (name, str(node_id), public_key, time.time()),
        )

    def revoke(self, name: str) -> None:
        """Mark ``name`` revoked."""
        self._conn.execute("UPDATE nodes SET revoked_at = ? WHERE name = ?", (time.time(), name))

    def took_part(self, node_ids: list[int], run: str, round: int) -> None:
        """Record that ``node_ids`` replied in ``round`` of ``run``."""
        now = time.time()
        self._conn.executemany(
            "UPDATE nodes SET last_round = ?, last_run = ?, last_seen = ? WHERE node_id = ?",
            [(round, run, now, str(node)) for node in node_ids],
        )


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

    def _write_flower_config(self, insecure: bool, address: str) -> None:
        """Point the operator's ``flwr`` commands at the operator listener ``address``."""
        self.flwr_home.mkdir(mode=0o700, exist_ok=True)
        connection = f'address = "{address}"\n'
        if insecure:
            connection += "insecure = true\n"
        else:
            connection += f"root-certificates = {json.dumps(str(self.trusted_ca))}\n"
        (self.flwr_home / "config.toml").write_text(
            f'[superlink]\ndefault = "{CONNECTION}"\n\n[superlink.{CONNECTION}]\n{connection}'
        )

    # The SuperLink --------------------------------------------------------

    def start(self, *, insecure: bool = False, listen: str | None = None) -> int:
        """Start the SuperLink in the background and wait until it accepts connections.

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
        if self.superlink.running():
            raise AicacheError(
                f"the SuperLink of {self.root} is already running",
                hint="Stop it first (`aicache server stop`) to change how it runs.",
            )
        host = listen or str(self.config.get("federation", {}).get("listen", "127.0.0.1"))
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
            str(self.path(SIGNING_PUB)),
            "--host",
            host,
            "--port",
            str(self.port),
            "--database",
            str(self.root / "state.db"),
            "--disable-runtime-dependency-installation",
        ]
        if insecure:
            command.append("--insecure")
        else:
            command += [
                "--ssl-ca-certfile",
                str(self.trusted_ca),
                "--ssl-certfile",
                str(self.path(SERVER_CERT)),
                "--ssl-keyfile",
                str(self.path(SERVER_KEY)),
                "--enable-supernode-auth",
            ]
        wildcard = host in ("0.0.0.0", "::")  # noqa: S104 - the operator's choice, probed locally
        probe = "127.0.0.1" if wildcard else host
        if _accepts(probe, self.port):
            raise AicacheError(
                f"port {self.port} on {probe} is already in use by another program",
                hint="Stop it, or choose another port in the [federation] address.",
            )
        offset = self.log_file.stat().st_size if self.log_file.exists() else 0
        # The SuperLink, its SuperExec and every ServerApp work in a folder of their own,
        # which holds none of the operator's private keys.
        self.workdir.mkdir(mode=0o700, exist_ok=True)
        # Flower's older gRPC Control API would listen beside the gate, unauthenticated.
        no_grpc = {"FLWR_INTERNAL_GRPC_CONTROL_API": "0", "FLWR_INTERNAL_GRPC_FLEET_API": "0"}
        process = self.superlink.start(
            command,
            env=flower_env(self.flwr_home, no_grpc),
            log_file=self.log_file,
            cwd=self.workdir,
        )

        def listening() -> bool:
            return _accepts(probe, self.port) and _accepts(OPERATOR_HOST, operator_port)

        try:
            ready = wait_until(
                lambda: not self.superlink.running() or listening(), START_TIMEOUT, 0.2
            )
        except KeyboardInterrupt:
            self.superlink.stop()
            raise
        if not ready or not self.superlink.running():
            self.superlink.stop()
            reason = "exited while starting" if ready else f"did not listen in {START_TIMEOUT:g} s"
            raise AicacheError(
                f"the SuperLink {reason}: {self.log_tail(offset)}",
                hint=f"Its log is {self.log_file}.",
            )
        # Only a SuperLink that runs decides how the operator's commands reach it.
        self._write_flower_config(insecure, f"{OPERATOR_HOST}:{operator_port}")
        self.runtime.write_text(
            json.dumps({"insecure": insecure, "host": host, "operator_port": operator_port})
        )
        return process.pid

    def log_tail(self, offset: int = 0, lines: int = 3) -> str:
        """The last lines the SuperLink logged after ``offset``."""
        try:
            with self.log_file.open("rb") as handle:
                handle.seek(offset)
                text = handle.read().decode(errors="replace")
        except FileNotFoundError:
            return "(no log)"
        kept = [line.strip() for line in text.splitlines() if line.strip()]
        return " | ".join(kept[-lines:]) or "(nothing logged)"

    def stop(self) -> bool:
        """Stop the SuperLink and everything it started; ``False`` if it was not running."""
        stopped = self.superlink.stop()
        self.runtime.unlink(missing_ok=True)
        return stopped

    def require_running(self) -> None:
        """Raise a clear error if the SuperLink is not running."""
        if not self.superlink.running():
            raise AicacheError(
                f"the SuperLink of {self.root} is not running",
                hint=f"Start it with `aicache server start {self.root} --detach`.",
            )

    # Flower's control commands ---------------------------------------------

    def flwr(self, *args: str, timeout: float = 120.0) -> dict[str, Any]:
        """Run a ``flwr`` command against this SuperLink and return its JSON answer.

        Raises
        ------
        AicacheError
            With Flower's own message when the command fails.
        """
        self.require_running()
        command = [str(Path(sys.executable).parent / "flwr"), *args, "--format", "json"]
        try:
            done = subprocess.run(
                command,
                env=flower_env(self.flwr_home),
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
                cwd=self.root,
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

    def serverapp_running(self) -> bool:
        """Whether a ServerApp process of this SuperLink is alive."""
        process = self.superlink.process()
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

    def active_runs(self) -> list[int]:
        """Flower runs of this SuperLink that have not finished."""
        runs = self.flwr("list", CONNECTION).get("runs", [])
        return [
            int(run["run-id"])
            for run in runs
            if not str(run.get("status", "")).startswith("finished")
        ]

    # Nodes ----------------------------------------------------------------

    def enroll(self, name: str, output: Path) -> Bundle:
        """Create (or reuse) ``name``'s key pair, register it, and write its bundle to ``output``.

        Raises
        ------
        AicacheError
            If the name is taken by an enrolled node, or the SuperLink refuses.
        """
        check_name(name)
        self.require_running()
        keys = self.root / "nodes"
        keys.mkdir(mode=0o700, exist_ok=True)
        private_path = keys / f"{name}.key"
        with self.nodes() as book:
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
            answer = self.flwr(
                "supernode", "register", str(public_path), CONNECTION, "--name", name
            )
            node_id = int(answer["node-id"])
            bundle = Bundle(
                federation=self.name,
                name=name,
                node_id=node_id,
                address=self.address,
                ca_pem=self.trusted_ca.read_text(),
                signing_public_pem=self.path(SIGNING_PUB).read_text(),
                node_private_key=private.decode(),
                insecure=self.insecure(),
            )
            try:
                bundle.write(output)
            except OSError as exc:  # no half-enrolled node: take the key back
                self.flwr("supernode", "unregister", str(node_id), CONNECTION)
                raise AicacheError(
                    f"cannot write the bundle {output}: {exc.strerror or exc}",
                    hint="Choose a writable place with -o; the node was not enrolled.",
                ) from exc
            book.add(name, node_id, public.decode())
        return bundle

    def node_list(self) -> list[dict[str, Any]]:
        """Every node Flower knows and every enrolled one: name, id, Flower's status, last round.

        A key registered with Flower other than by ``enroll`` (there is no such way
        from the network, but ``flwr`` on the server itself can) is listed with
        ``unknown`` set and no name, until it is revoked.
        """
        flower = {
            int(node["node-id"]): node
            for node in self.flwr("supernode", "list", CONNECTION).get("nodes", [])
        }
        rows = []
        with self.nodes() as book:
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

    def revoke(self, name: str) -> NodeRecord | int:
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
        with self.nodes() as book:
            record = book.get(name)
            if record is not None and record.revoked_at is None:
                self.flwr("supernode", "unregister", str(record.node_id), CONNECTION)
                book.revoke(name)
                return record
            unknown = {row["node_id"] for row in self.node_list() if row["unknown"]}
            if name.isdigit() and int(name) in unknown:
                self.flwr("supernode", "unregister", name, CONNECTION)
                return int(name)
        raise AicacheError(
            f"no enrolled node called {name!r}, and no unknown node with that id",
            hint="`aicache server nodes` lists them.",
        )

    # Certificates -----------------------------------------------------------

    def rotate(
        self, *, days: int, roll_ca: bool = False, end_overlap: bool = False, force: bool = False
    ) -> list[str]:
        """Issue a new server certificate (and with ``roll_ca`` a new CA); restart if running.

        Rolling the CA keeps the old one trusted: the server presents its new
        certificate with a bridge (the new CA certified by the old), so
        bundles carrying only the old CA keep working, and bundles issued
        from now on carry both CAs. ``end_overlap`` drops the bridge and the
        old CA: bundles issued before the roll stop working.

        Returns
        -------
        list[str]
            What was done, one line each.

        Raises
        ------
        AicacheError
            On a contradictory request, or when there is no roll to end.
        """
        from aicache.security import certificates as certs

        if roll_ca and end_overlap:
            raise AicacheError("--ca and --end-overlap are separate steps: run them one at a time")
        if self.superlink.running() and not force and (active := self.active_runs()):
            raise AicacheError(
                f"a run is going on (Flower run {active[0]}): restarting the SuperLink with the "
                "new certificate would end it",
                hint="Rotate after it ends, or pass --force (then `server run --resume`).",
            )
        done: list[str] = []
        try:
            current = certs.load_issued(self.path(SERVER_KEY), self.path(SERVER_CERT))
            ca = certs.load_issued(self.path(CA_KEY), self.path(CA_CERT))
        except (OSError, ValueError) as exc:
            raise AicacheError(
                f"cannot read the federation's CA or server key in {self.root}: {exc}",
                hint="rotate-certs needs keys/ca.key and server.key in the directory (bring an "
                "offline CA key back for the rotation).",
            ) from exc
        names = certs.certificate_names(current.certificate)
        if roll_ca:
            if self.path(CA_BRIDGE).exists():
                raise AicacheError(
                    "a CA roll is still in its overlap window",
                    hint="End it first with `aicache server rotate-certs --end-overlap`.",
                )
            if certs.path_length(ca.certificate) == 0:
                raise AicacheError(
                    "this federation's CA may not certify another CA (path length 0), so no "
                    "bridge can keep old bundles working through a roll",
                    hint="Renew only the server certificate, or make a new federation "
                    "(`server init --force`) and enrol the nodes again.",
                )
            new_ca = certs.create_ca(f"{self.name} CA {time.strftime('%Y-%m-%d')}")
            self.path(CA_PREVIOUS_CERT).write_bytes(certs.certificate_pem(ca.certificate))
            bridge = certs.cross_certify(new_ca, ca, days=days)
            self.path(CA_BRIDGE).write_bytes(certs.certificate_pem(bridge))
            certs.write_private(self.path(CA_KEY), certs.key_pem(new_ca.key))
            self.path(CA_CERT).write_bytes(certs.certificate_pem(new_ca.certificate))
            self.path(CA_BUNDLE).write_bytes(
                certs.certificate_pem(new_ca.certificate) + certs.certificate_pem(ca.certificate)
            )
            ca = new_ca
            done.append("new CA created; old bundles stay valid through a bridge certificate")
        if end_overlap:
            if not self.path(CA_BRIDGE).exists():
                raise AicacheError("there is no CA roll to end (no overlap window is open)")
            for name in (CA_BRIDGE, CA_BUNDLE, CA_PREVIOUS_CERT):
                self.path(name).unlink(missing_ok=True)
            done.append("overlap ended: only bundles carrying the new CA work now")
        server = certs.issue_server_certificate(ca, names, days=days)
        chain = certs.certificate_pem(server.certificate)
        if self.path(CA_BRIDGE).exists():
            chain += self.path(CA_BRIDGE).read_bytes()
        certs.write_private(self.path(SERVER_KEY), certs.key_pem(server.key))
        self.path(SERVER_CERT).write_bytes(chain)
        done.append(f"new server certificate for {', '.join(names)}, valid {days} days")
        if self.superlink.running():
            try:
                settings = json.loads(self.runtime.read_text())
            except (FileNotFoundError, ValueError):
                settings = {}
            self.stop()
            self.start(insecure=bool(settings.get("insecure")), listen=settings.get("host"))
            done.append("SuperLink restarted with it (nodes reconnect on their own)")
        return done

    def signing_key_path(self) -> Path:
        """The model-signing key."""
        return self.path(SIGNING_KEY)
