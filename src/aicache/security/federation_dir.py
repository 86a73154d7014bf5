"""The operator's federation directory: CA, server certificate, signing key, config."""

from __future__ import annotations

import socket
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomli_w

from aicache.errors import AicacheError
from aicache.security import signing
from aicache.security.certificates import (
    certificate_pem,
    create_ca,
    issue_server_certificate,
    key_pem,
    write_private,
)

CA_KEY, CA_CERT = "ca.key", "ca.pem"
SERVER_KEY, SERVER_CERT = "server.key", "server.pem"
SIGNING_KEY, SIGNING_PUB = "signing.key", "signing.pub"
CONFIG = "aicache-server.toml"
DEFAULT_PORT = 9092
# The operator's private keys live apart from what the SuperLink and its ServerApps
# are given (section "Which process holds which key" of docs/deploy.md).
KEYS_DIR = "keys"
OPERATOR_KEYS = (CA_KEY, SIGNING_KEY)


@dataclass(frozen=True, slots=True)
class FederationFiles:
    """Where each piece of a federation directory is."""

    root: Path

    def path(self, name: str) -> Path:
        """The path of one of the files above."""
        if name in OPERATOR_KEYS:
            return self.root / KEYS_DIR / name
        return self.root / name

    def keep_keys_apart(self) -> None:
        """Move the CA and signing keys of a federation made before ``keys/`` existed."""
        folder = self.root / KEYS_DIR
        for name in OPERATOR_KEYS:
            old = self.root / name
            if old.exists() and not self.path(name).exists():
                folder.mkdir(mode=0o700, exist_ok=True)
                old.replace(self.path(name))

    def read_config(self) -> dict[str, Any]:
        """The federation's configuration.

        Raises
        ------
        AicacheError
            If the directory was not made by ``aicache server init`` or the file is damaged.
        """
        path = self.path(CONFIG)
        try:
            return tomllib.loads(path.read_text())
        except FileNotFoundError as exc:
            raise AicacheError(
                f"{self.root} is not a federation directory (no {CONFIG})",
                hint="Create one with `aicache server init DIR`.",
            ) from exc
        except tomllib.TOMLDecodeError as exc:
            raise AicacheError(f"{path} is not valid TOML: {exc}") from exc


def default_names(extra: list[str]) -> list[str]:
    """The names and addresses the server certificate covers: loopback, this host, ``extra``."""
    names = ["localhost", "127.0.0.1", socket.gethostname(), *extra]
    return list(dict.fromkeys(n for n in names if n))


def init_federation(
    root: Path, *, name: str, hosts: list[str], port: int, force: bool = False
) -> FederationFiles:
    """Create the CA, server certificate, signing key and config in ``root``.

    Raises
    ------
    AicacheError
        If ``root`` already holds a federation and ``force`` is false.
    """
    files = FederationFiles(root)
    if files.path(CONFIG).exists() and not force:
        raise AicacheError(
            f"{root} already holds a federation",
            hint="Use another directory, or --force to replace its keys (enrolled clients "
            "would need new bundles).",
        )
    if not 0 < port < 65536:
        raise AicacheError(f"--port {port} is out of range: it must be between 1 and 65535")
    root.mkdir(mode=0o700, parents=True, exist_ok=True)
    root.chmod(0o700)
    ca = create_ca(f"{name} CA")
    server = issue_server_certificate(ca, default_names(hosts))
    signing_key = signing.new_signing_key()
    (root / KEYS_DIR).mkdir(mode=0o700, exist_ok=True)
    (root / KEYS_DIR).chmod(0o700)
    for key_file in OPERATOR_KEYS:  # --force: no stale copy from before keys/ existed
        (root / key_file).unlink(missing_ok=True)
    write_private(files.path(CA_KEY), key_pem(ca.key))
    files.path(CA_CERT).write_bytes(certificate_pem(ca.certificate))
    write_private(files.path(SERVER_KEY), key_pem(server.key))
    files.path(SERVER_CERT).write_bytes(certificate_pem(server.certificate))
    write_private(files.path(SIGNING_KEY), signing.private_pem(signing_key))
    files.path(SIGNING_PUB).write_bytes(signing.public_pem(signing_key))
    config = {
        "federation": {"name": name, "address": f"{hosts[0] if hosts else 'localhost'}:{port}"},
        "tls": {"ca": CA_CERT, "certificate": SERVER_CERT, "key": SERVER_KEY},
        "signing": {"key": f"{KEYS_DIR}/{SIGNING_KEY}", "public": SIGNING_PUB},
        # Defaults of `aicache server run` (its flags override them).
        "training": {"task": "next-command", "strategy": "fedavg", "rounds": 10},
        "privacy": {"dp": "off", "clip": 1.0},
    }
    files.path(CONFIG).write_text(tomli_w.dumps(config))
    return files
