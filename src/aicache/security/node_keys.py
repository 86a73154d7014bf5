"""SuperNode authentication keys: NIST P-384 keys in OpenSSH format, as Flower expects."""

from __future__ import annotations

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec


def new_node_key() -> tuple[bytes, bytes]:
    """A node's ``(private, public)`` key pair, both in OpenSSH format."""
    key = ec.generate_private_key(ec.SECP384R1())
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )
    return private, public


def public_from_private(private: bytes) -> bytes:
    """The OpenSSH public key of an OpenSSH private key.

    Raises
    ------
    ValueError
        If ``private`` is not an elliptic-curve OpenSSH key.
    """
    key = serialization.load_ssh_private_key(private, password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ValueError("a SuperNode key must be a NIST elliptic-curve key")
    return key.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )
