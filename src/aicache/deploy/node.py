"""The developer's side: joining a federation with a bundle, leaving it, and its status.

A joined machine keeps, under ``$AICACHE_HOME/federation`` (owner-only):
the bundle, the node's key, the CA and the model-signing key taken from it,
the SuperNode's pid file and log, ``sent.jsonl`` (one line per training
reply that left the machine: run, round, task, bytes) and the inbox of
signed models delivered by the server.
"""

from __future__ import annotations

import json
import re
import socket
import ssl
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from aicache.deploy.bundle import Bundle, write_private_text
from aicache.deploy.processes import Supervised, flower_env, wait_until
from aicache.errors import AicacheError
from aicache.federation.privacy_view import PrivacyRecord, dp_applied, privacy_record
from aicache.local.paths import aicache_home, ensure_private_dir, federation_dir
from aicache.security import signing

JOIN_TIMEOUT = 30.0

# What the SuperNode logs when it is refused, and what it means for the developer.
_REFUSALS = (
    (
        re.compile(r"code: 2004|Failed to activate", re.I),
        "the server refused this node's key: it was never registered, or it was revoked",
        "Ask the operator for a new bundle (`aicache server enroll NAME`).",
    ),
    (
        re.compile(r"code: 2001|authentication is enabled", re.I),
        "the server requires node authentication and this node offered no key",
        "Join with a bundle from `aicache server enroll NAME`.",
    ),
    (
        re.compile(r"certificate has expired", re.I),
        "the server's TLS certificate has expired",
        "Ask the operator to rotate it (`aicache server rotate-certs`).",
    ),
    (
        re.compile(r"CERTIFICATE_VERIFY_FAILED|certificate verify failed|unknown ca", re.I),
        "the server's TLS certificate is not signed by the CA in the bundle",
        "Check the address, or ask the operator for a bundle of this federation.",
    ),
    (
        re.compile(r"WRONG_VERSION_NUMBER|record layer failure|http_request|plain HTTP", re.I),
        "the server does not speak TLS (a plaintext server, or the wrong port)",
        "Check the address in the bundle; aicache refuses to send updates unencrypted.",
    ),
)
_CONNECTED = re.compile(r"SuperNode ID:|Connection successful")
_LOST = re.compile(r"Connection attempt failed|connection .* (refused|reset|closed)", re.I)


def preflight(bundle: Bundle, timeout: float = 5.0) -> None:
    """Check the server as the bundle describes it, before a SuperNode retries blindly.

    Raises
    ------
    AicacheError
        Naming the problem: unreachable, expired or foreign certificate, a
        name the certificate does not cover, or TLS on one side only.
    """
    host, _, port = bundle.address.rpartition(":")
    host = host.strip("[]")
    try:
        raw = socket.create_connection((host, int(port)), timeout=timeout)
    except (OSError, ValueError) as exc:
        raise AicacheError(
            f"cannot reach the server at {bundle.address}: {exc}",
            hint="Check that it runs (`aicache server start`) and that the port is open to you.",
        ) from exc
    with raw:
        if bundle.insecure:
            probe = ssl.create_default_context()
            probe.check_hostname = False
            probe.verify_mode = ssl.CERT_NONE
            try:
                with probe.wrap_socket(raw, server_hostname=host):
                    pass
            except (ssl.SSLError, OSError):
                return  # a plaintext server, as the bundle says
            raise AicacheError(
                f"{bundle.address} requires TLS, and this bundle would connect in plaintext",
                hint="Ask the operator for a bundle of the TLS server (`aicache server enroll`).",
            )
        context = ssl.create_default_context(cadata=bundle.ca_pem)
        try:
            with context.wrap_socket(raw, server_hostname=host):
                return
        except ssl.SSLCertVerificationError as exc:
            reason = {
                10: "the server's TLS certificate has expired",
                62: f"the server's TLS certificate does not cover the name {host!r}",
            }.get(
                exc.verify_code,
                "the server's TLS certificate is not signed by the CA in the bundle "
                f"({exc.verify_message})",
            )
            raise AicacheError(
                f"{bundle.address}: {reason}",
                hint="Ask the operator: `aicache server rotate-certs` renews the certificate; "
                "a bundle from `aicache server enroll` carries the right CA.",
            ) from exc
        except (ssl.SSLError, OSError) as exc:
            raise AicacheError(
                f"{bundle.address} does not speak TLS ({exc}): a plaintext server or another "
                "service",
                hint="aicache does not send updates unencrypted; check the address in the bundle.",
            ) from exc


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class NodeHome:
    """A machine's membership of one federation."""

    def __init__(self, home: Path | None = None) -> None:
        self.home = home or aicache_home()
        self.root = federation_dir(self.home)
        self.bundle_file = self.root / "bundle.json"
        self.key_file = self.root / "node.key"
        self.ca_file = self.root / "ca.pem"
        self.signing_file = self.root / "signing.pub"
        self.log_file = self.root / "supernode.log"
        self.flwr_home = self.root / "flower"
        self.inbox = self.root / "inbox"
        self.sent = self.root / "sent.jsonl"
        self.supernode = Supervised(self.root / "supernode.pid")

    def joined(self) -> Bundle | None:
        """The bundle this machine joined with, if any."""
        return Bundle.read(self.bundle_file) if self.bundle_file.exists() else None

    def signing_key(self) -> Ed25519PublicKey | None:
        """The federation's model-verifying key, once joined."""
        if not self.signing_file.exists():
            return None
        try:
            return signing.load_public(self.signing_file.read_bytes())
        except ValueError as exc:
            raise AicacheError(
                f"the federation's model-verifying key {self.signing_file} is damaged: {exc}",
                hint="Join again with your bundle (`aicache join BUNDLE`) to restore it.",
            ) from exc

    def install(self, bundle: Bundle) -> None:
        """Keep ``bundle``'s parts where the SuperNode and ``models pull`` find them."""
        ensure_private_dir(self.root)
        bundle.write(self.bundle_file)
        write_private_text(self.key_file, bundle.node_private_key)
        self.ca_file.write_text(bundle.ca_pem)
        self.signing_file.write_text(bundle.signing_public_pem)

    def command(self, bundle: Bundle, runtime_port: int) -> list[str]:
        """The SuperNode's command line."""
        command = [
            sys.executable,
            "-m",
            "aicache.deploy.supernode",
            "--app-key",
            str(self.signing_file),
            "--superlink",
            bundle.address,
            "--port",
            str(runtime_port),
            "--node-config",
            f"partition-id={bundle.node_id % 1_000_000}",
        ]
        if bundle.insecure:
            return [*command, "--insecure"]
        return [
            *command,
            "--root-certificates",
            str(self.ca_file),
            "--auth-supernode-private-key",
            str(self.key_file),
        ]

    def join(self, bundle_path: Path, *, insecure: bool = False) -> int:
        """Install the bundle, start the SuperNode in the background, wait until it is connected.

        Returns
        -------
        int
            The SuperNode's process id.

        Raises
        ------
        AicacheError
            If already joined and running, or the server refuses the node
            (the message says why: key, certificate, or plaintext).
        """
        bundle = Bundle.read(bundle_path)
        if bundle.insecure and not insecure:
            raise AicacheError(
                f"{bundle_path} is for a server without TLS: updates would travel in plaintext "
                "and the node would not authenticate",
                hint="Join with --insecure only if that is what you want (testing).",
            )
        if self.supernode.running():
            raise AicacheError(
                f"this machine already runs a node ({self.root})",
                hint="Run `aicache leave` first.",
            )
        preflight(bundle)
        self.install(bundle)
        offset = self.log_file.stat().st_size if self.log_file.exists() else 0
        (self.root / "joined-at").write_text(str(offset))
        env = flower_env(self.flwr_home, {"AICACHE_HOME": str(self.home)})
        process = self.supernode.start(
            self.command(bundle, _free_port()), env=env, log_file=self.log_file, cwd=self.root
        )
        outcome: dict[str, Any] = {}

        def settled() -> bool:
            text = self._log_since(offset)
            for pattern, message, hint in _REFUSALS:
                if pattern.search(text):
                    outcome["refused"] = (message, hint)
                    return True
            if _CONNECTED.search(text):
                return True
            if not self.supernode.running():
                outcome["exited"] = text.strip().splitlines()[-3:] if text.strip() else []
                return True
            return False

        try:
            settled_in_time = wait_until(settled, JOIN_TIMEOUT, 0.2)
        except KeyboardInterrupt:
            self.supernode.stop()
            raise
        if not settled_in_time:
            self.supernode.stop()
            raise AicacheError(
                f"the node did not connect to {bundle.address} within {JOIN_TIMEOUT:g} s",
                hint="Check that the server runs and the address is reachable; "
                f"the node's log is {self.log_file}.",
            )
        if "refused" in outcome or "exited" in outcome:
            self.supernode.stop()
            if "refused" in outcome:
                message, hint = outcome["refused"]
                raise AicacheError(f"{bundle.address}: {message}", hint=hint)
            raise AicacheError(
                f"the node stopped while connecting: {' | '.join(outcome['exited'])}",
                hint=f"Its log is {self.log_file}.",
            )
        return process.pid

    def _log_since(self, offset: int) -> str:
        try:
            with self.log_file.open("rb") as handle:
                handle.seek(offset)
                return handle.read().decode(errors="replace")
        except FileNotFoundError:
            return ""

    def _joined_at(self) -> int:
        """Where the current SuperNode's part of the log begins."""
        try:
            return int((self.root / "joined-at").read_text())
        except (FileNotFoundError, ValueError):
            return 0

    def leave(self) -> bool:
        """Stop the SuperNode; ``False`` if none was running. The bundle stays installed."""
        return self.supernode.stop()

    def sent_entries(self) -> list[dict[str, Any]]:
        """What training replies left this machine, oldest first."""
        if not self.sent.exists():
            return []
        entries = []
        for line in self.sent.read_text().splitlines():
            try:
                entries.append(json.loads(line))
            except ValueError:
                continue
        return entries

    def privacy_report(self, registry: Any) -> list[dict[str, Any]]:
        """Per task: what left this machine, and the ε, δ its data has been spent at.

        ε and δ come from the newest model pulled from the federation (its
        signed privacy record: the federation's ledger over every run up to
        it). Client-level DP bounds every member's ε by the federation's, so
        it holds for this machine's data too. Updates sent without DP, or in
        rounds after that model, are reported as not covered.
        """
        by_task: dict[str, list[dict[str, Any]]] = {}
        for entry in self.sent_entries():
            by_task.setdefault(str(entry.get("task", "?")), []).append(entry)
        report = []
        for task, entries in sorted(by_task.items()):
            latest = registry.latest(task)
            signed = None if latest is None else registry.signature(task, latest.version)
            record: PrivacyRecord | None = None
            covered_until = None
            if signed is not None:  # the federation's signed record, not a local model's
                manifest = json.loads(signed[0])
                record = privacy_record(manifest.get("privacy"))
                covered_until = float(manifest.get("created_at", 0.0))
            without_dp = sum(1 for e in entries if not dp_applied(str(e.get("dp", "off"))))
            # The record covers what the server had spent when it made that model.
            later = sum(
                1
                for e in entries
                if covered_until is not None and float(e.get("time", 0.0)) > covered_until
            )
            epsilon = None
            if record is not None:
                epsilon = (
                    record.federation_epsilon
                    if record.federation_epsilon is not None
                    else record.epsilon
                )
            report.append(
                {
                    "task": task,
                    "updates_sent": len(entries),
                    "bytes_sent": sum(int(e.get("bytes", 0)) for e in entries),
                    "runs": len({e.get("run") for e in entries}),
                    "rounds": len({(e.get("run"), e.get("round")) for e in entries}),
                    "first": min(float(e["time"]) for e in entries),
                    "last": max(float(e["time"]) for e in entries),
                    "updates_without_dp": without_dp,
                    # How the updates left: in the clear, masked (SecAgg+) or encrypted (CKKS).
                    "secure": dict(
                        sorted(Counter(str(e.get("secure", "off")) for e in entries).items())
                    ),
                    "epsilon": None if without_dp else epsilon,
                    "delta": None if record is None else record.delta,
                    "mechanism": None if record is None else record.mechanism or record.dp.value,
                    "accounted_until": covered_until,
                    "updates_after_that": later,
                }
            )
        return report

    def status(self) -> dict[str, Any]:
        """Joined or not, running or not, the last round taken part in."""
        bundle = self.joined()
        running = self.supernode.running()
        sent = self.sent_entries()
        last = sent[-1] if sent else None
        log = self._log_since(self._joined_at())
        last_ok = max((m.end() for m in _CONNECTED.finditer(log)), default=-1)
        last_failure = max((m.end() for m in _LOST.finditer(log)), default=-1)
        connected = running and last_ok > last_failure
        return {
            "joined": bundle is not None,
            "federation": bundle.federation if bundle else None,
            "name": bundle.name if bundle else None,
            "address": bundle.address if bundle else None,
            "running": running,
            "connected": connected,
            "last_round": None
            if last is None
            else {
                "run": last["run"],
                "round": last["round"],
                "task": last["task"],
                "at": last["time"],
            },
            "updates_sent": len(sent),
            "bytes_sent": sum(int(e.get("bytes", 0)) for e in sent),
            "checked_at": time.time(),
        }
