"""The client bundle: one owner-only file that lets a developer's machine join a federation.

It holds the SuperLink's address, the CA certificate(s) to trust, the
model-signing public key, the node's name and id, and the node's private
authentication key: treat it like an SSH private key.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm

from aicache.errors import AicacheError
from aicache.security import signing
from aicache.security.node_keys import public_from_private

BUNDLE_FORMAT = "aicache-bundle/1"
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")
HOST_LABEL = re.compile(r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?")


def check_name(name: str, *, what: str = "node name") -> str:
    """``name`` if it is a valid node (or federation) name.

    Raises
    ------
    AicacheError
        If it is not 1-63 letters, digits, dots, dashes or underscores.
    """
    # fullmatch: `$` alone would also accept a trailing newline.
    if not NAME_PATTERN.fullmatch(name):
        raise AicacheError(
            f"invalid {what} {name!r}",
            hint="Use 1-63 letters, digits, '.', '-' or '_', starting with a letter or digit.",
        )
    return name


def check_host(host: str) -> str:
    """``host`` if it is an IP address or a DNS name: what a certificate can name.

    Raises
    ------
    AicacheError
        Naming it otherwise (spaces, punctuation, empty labels, too long).
    """
    try:
        ipaddress.ip_address(host)
        return host
    except ValueError:
        pass
    if len(host) > 253 or not all(HOST_LABEL.fullmatch(label) for label in host.split(".")):
        raise AicacheError(
            f"--host {host!r} is not a DNS name or an IP address",
            hint="Use a name such as fl.example.internal, or an address such as 192.0.2.10.",
        )
    return host


def write_private_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path``, readable by the owner only from the first byte."""
    write_private_bytes(path, text.encode())


def write_private_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path``, readable by the owner only from the first byte."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # A fresh, exclusively created file (mode 0600) renamed over the target: no
    # existing file's mode, owner or symlink decides where the secret lands.
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        Path(temporary).replace(path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


@dataclass(frozen=True, slots=True)
class Bundle:
    """What a node needs to join: where, whom to trust, and who it is."""

    federation: str
    name: str
    node_id: int
    address: str
    ca_pem: str
    signing_public_pem: str
    node_private_key: str
    insecure: bool = False
    format: str = BUNDLE_FORMAT

    def write(self, path: Path) -> Path:
        """Write the bundle (owner-only)."""
        write_private_text(path, json.dumps(asdict(self), indent=2) + "\n")
        return path

    @classmethod
    def read(cls, path: Path) -> Bundle:
        """Read and check a bundle.

        Raises
        ------
        AicacheError
            If the file is missing, not a bundle, or any key or certificate in it is damaged.
        """
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError as exc:
            raise AicacheError(
                f"bundle {path} does not exist",
                hint="Ask the federation's operator for one (`aicache server enroll NAME`).",
            ) from exc
        except (ValueError, OSError) as exc:
            raise AicacheError(f"{path} is not an aicache bundle: {exc}") from exc
        if not isinstance(data, dict) or data.get("format") != BUNDLE_FORMAT:
            raise AicacheError(
                f"{path} is not an aicache bundle (format {BUNDLE_FORMAT} expected)",
                hint="Ask the federation's operator for a new one.",
            )
        try:
            bundle = cls(**data)
            if not isinstance(bundle.node_id, int) or not isinstance(bundle.insecure, bool):
                raise TypeError("node_id must be a number and insecure true or false")
            for name, value in asdict(bundle).items():
                if name not in ("node_id", "insecure") and not isinstance(value, str):
                    raise TypeError(f"{name} must be text, not {type(value).__name__}")
            x509.load_pem_x509_certificates(bundle.ca_pem.encode())
            signing.load_public(bundle.signing_public_pem.encode())
            public_from_private(bundle.node_private_key.encode())
            check_name(bundle.name)
        except (TypeError, ValueError, UnsupportedAlgorithm) as exc:
            raise AicacheError(
                f"bundle {path} is damaged: {exc}", hint="Ask the operator for a new one."
            ) from exc
        return bundle
