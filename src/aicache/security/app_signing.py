"""The federation's signature on its Flower App: only that app runs, on the server and the nodes.

``aicache server run`` builds aicache's Flower App (FAB), signs its SHA-256
with the federation's model-signing key and puts the signature in the run's
config (``aicache-app-signature``). The SuperLink refuses a run without a
valid one, and every node checks it again before it stores the app, so no
code of a foreign app is ever imported. The signed text is
``aicache-app/1 <sha256 hex>``: it cannot be mistaken for a model manifest
(canonical JSON), which the same key signs.
"""

from __future__ import annotations

import hashlib

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from aicache.errors import AicacheError
from aicache.security import signing

APP_SIGNATURE_KEY = "aicache-app-signature"


class AppRefused(AicacheError):
    """A run's app is not the one the federation signed."""


def app_message(fab: bytes) -> bytes:
    """What the federation signs for the Flower App ``fab``."""
    return f"aicache-app/1 {hashlib.sha256(fab).hexdigest()}".encode()


def sign_app(fab: bytes, key: Ed25519PrivateKey) -> str:
    """The signature of ``fab``, in hex, for the run config."""
    return signing.sign(key, app_message(fab)).hex()


def check_app(fab: bytes, signature: object, public_pem: bytes) -> None:
    """Raise unless ``signature`` (from the run config) signs ``fab`` with the federation's key.

    Raises
    ------
    AppRefused
        Saying why: no signature, a malformed one, or one that does not match.
    """
    digest = hashlib.sha256(fab).hexdigest()[:12]
    if not isinstance(signature, str) or not signature:
        raise AppRefused(f"app {digest} is not signed by the federation: refused")
    try:
        raw = bytes.fromhex(signature)
        signing.load_public(public_pem).verify(raw, app_message(fab))
    except (ValueError, InvalidSignature) as exc:
        raise AppRefused(
            f"app {digest} does not match the federation's signature: refused"
        ) from exc
