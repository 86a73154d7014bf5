"""Security: certificates, node keys, model-signing keys, rotation (all with ``cryptography``).

The public names below load their modules on first use, so a node that only
verifies a signature does not load X.509 handling.
"""

from __future__ import annotations

import typing as _typing

from aicache._lazy import lazy_exports as _lazy_exports

if _typing.TYPE_CHECKING:
    from aicache.security.app_signing import AppRefused
    from aicache.security.certificates import Issued
    from aicache.security.federation_dir import FederationFiles, init_federation
    from aicache.security.signing import SignatureError

# Where each public name lives; imported on first use (see the docstring).
_HOMES = {
    "FederationFiles": "aicache.security.federation_dir",
    "init_federation": "aicache.security.federation_dir",
    "Issued": "aicache.security.certificates",
    "SignatureError": "aicache.security.signing",
    "AppRefused": "aicache.security.app_signing",
}

__all__ = [
    "AppRefused",
    "FederationFiles",
    "Issued",
    "SignatureError",
    "init_federation",
]

__getattr__ = _lazy_exports(__name__, _HOMES)
