"""Model signing: the server signs every artifact with Ed25519; clients verify before use."""

from __future__ import annotations

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from aicache.errors import AicacheError


class SignatureError(AicacheError):
    """An artifact is unsigned, or its signature does not match it."""


def new_signing_key() -> Ed25519PrivateKey:
    """A new model-signing key."""
    return Ed25519PrivateKey.generate()


def private_pem(key: Ed25519PrivateKey) -> bytes:
    """The signing key in PKCS#8 PEM."""
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def public_pem(key: Ed25519PrivateKey | Ed25519PublicKey) -> bytes:
    """The verifying key in PEM (what client bundles carry)."""
    public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    return public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def load_private(data: bytes) -> Ed25519PrivateKey:
    """A signing key from PEM."""
    key = serialization.load_pem_private_key(data, password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise SignatureError("the model-signing key is not an Ed25519 key")
    return key


def load_public(data: bytes) -> Ed25519PublicKey:
    """A verifying key from PEM."""
    key = serialization.load_pem_public_key(data)
    if not isinstance(key, Ed25519PublicKey):
        raise SignatureError("the model-verifying key is not an Ed25519 key")
    return key


def sign(key: Ed25519PrivateKey, data: bytes) -> bytes:
    """The signature of ``data``."""
    return key.sign(data)


def verify(key: Ed25519PublicKey, data: bytes, signature: bytes | None, *, what: str) -> None:
    """Check ``signature`` over ``data``.

    Raises
    ------
    SignatureError
        Naming ``what`` when the signature is missing or does not match.
    """
    if not signature:
        raise SignatureError(
            f"{what} is not signed", hint="Use only models pulled from your federation."
        )
    try:
        key.verify(signature, data)
    except InvalidSignature as exc:
        raise SignatureError(
            f"{what} does not match its signature: it was altered or signed by another key",
            hint="It was not used. Pull it again with `aicache models pull`.",
        ) from exc
