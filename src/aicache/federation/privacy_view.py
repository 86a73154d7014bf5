"""The privacy of a run as the layers above the federation read it.

Reports, the CLI and a node's own privacy view read what a version's record
claims and which mechanism a round applied through these few functions; the
mechanisms themselves stay in :mod:`aicache.privacy`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flwr.app import ConfigRecord
from flwr.supercore.differential_privacy import KEY_CLIPPING_NORM

from aicache.federation.local_dp import LOCAL_DP_CLIP
from aicache.privacy.modes import DpMode, SecureMode, mechanism, secure_aggregation, secure_mode
from aicache.privacy.noise import DP_CLIP
from aicache.privacy.record import PrivacyRecord

__all__ = [
    "PrivacyRecord",
    "SecureMode",
    "dp_applied",
    "dp_mode_of",
    "is_public_context",
    "noised_per_client",
    "privacy_record",
    "secure_aggregation",
    "secure_mode",
]

StoredPrivacy = Mapping[str, Any] | PrivacyRecord | None
"""A record as the registry stores it (JSON), already typed, or absent (no DP)."""


def privacy_record(stored: StoredPrivacy) -> PrivacyRecord:
    """The typed record of ``stored`` (earlier stored forms included)."""
    if isinstance(stored, PrivacyRecord):
        return stored
    return PrivacyRecord.from_dict(None if stored is None else dict(stored))


def dp_applied(name: str) -> bool:
    """Whether the mechanism called ``name`` noises what is sent (unknown names: no)."""
    try:
        return mechanism(name).enabled
    except ValueError:
        return False


def noised_per_client(stored: StoredPrivacy) -> bool:
    """Whether the record's mechanism noised each client's update (not their aggregate)."""
    try:
        return mechanism(privacy_record(stored).dp).local
    except ValueError:
        return False


def dp_mode_of(config: ConfigRecord | None) -> DpMode:
    """Which differential privacy a round's settings ask a client to apply."""
    if config is None:
        return DpMode.OFF
    if LOCAL_DP_CLIP in config:
        return DpMode.LOCAL
    if DP_CLIP in config:
        return DpMode.DISTRIBUTED
    return DpMode.CENTRAL if KEY_CLIPPING_NORM in config else DpMode.OFF


def is_public_context(data: bytes) -> bool:
    """Whether a serialised CKKS context lacks the secret key (it can encrypt, not decrypt)."""
    from aicache.privacy import ckks  # TenSEAL: only for --secure he

    return ckks.is_public(data)
