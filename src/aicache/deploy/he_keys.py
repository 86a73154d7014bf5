"""The CKKS keys of ``--secure he`` on a deployed federation: who holds which.

The key authority (``aicache server key-authority``, on a host the operator
trusts with the secret key) writes the secret context for the nodes and the
public one for the server. Each is installed on its side by the command
here, which refuses the wrong kind: the server's folder never receives a
context with a secret key, and a node without the secret one could not
encrypt nor decrypt. The key authority never talks to anyone over the
network: its files are handed over like a node's bundle, because the only
channel Flower offers to the nodes runs through the server, the one party
the secret key is kept from.
"""

from __future__ import annotations

from pathlib import Path

from aicache.deploy.bundle import write_private_bytes
from aicache.errors import AicacheError
from aicache.extras import require_extra
from aicache.local.paths import ensure_private_dir


def read_context(path: Path, *, secret: bool) -> bytes:
    """The serialised CKKS context in ``path``, checked to be secret (or public).

    Raises
    ------
    AicacheError
        If it cannot be read, is not a CKKS context, or is the wrong kind.
    """
    require_extra("he")
    from aicache.federation.privacy_view import is_public_context

    try:
        data = path.read_bytes()
        public = is_public_context(data)
    except OSError as exc:
        raise AicacheError(f"cannot read {path}: {exc.strerror or exc}") from exc
    except Exception as exc:  # TenSEAL raises its own types on a damaged file
        raise AicacheError(
            f"{path} is not a CKKS context ({type(exc).__name__})",
            hint="Use the files `aicache server key-authority` wrote.",
        ) from exc
    if secret and public:
        raise AicacheError(
            f"{path} is the public CKKS context: a node needs the secret one",
            hint="Use the key authority's clients.ckks (server.ckks is the server's).",
        )
    if not secret and not public:
        raise AicacheError(
            f"{path} holds the CKKS secret key: the server must never have it",
            hint="Give the server the key authority's server.ckks; clients.ckks is the nodes'.",
        )
    return data


def install(source: Path, target: Path, *, secret: bool) -> Path:
    """Check ``source`` and copy it to ``target`` (owner-only)."""
    data = read_context(source, secret=secret)
    ensure_private_dir(target.parent)
    write_private_bytes(target, data)
    return target
