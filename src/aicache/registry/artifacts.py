"""Content-addressed model artifacts in a format that cannot run code when loaded.

An artifact is a NumPy ``.npz`` archive of the model's arrays (``arr_0``,
``arr_1``, ...), read back with ``allow_pickle=False``; its name is the
SHA-256 of its bytes, so a changed byte is a different (or missing) artifact.
"""

from __future__ import annotations

import hashlib
import io
import uuid
import zipfile
from pathlib import Path

import numpy as np

from aicache.errors import AicacheError


class ArtifactError(AicacheError):
    """An artifact is missing, altered, or not a plain array archive."""


def encode_arrays(arrays: list[np.ndarray]) -> bytes:
    """The ``.npz`` bytes of ``arrays`` (object arrays are refused)."""
    for index, array in enumerate(arrays):
        if array.dtype == object:
            raise ValueError(f"array {index} has dtype object; only numeric arrays are stored")
    buffer = io.BytesIO()
    np.savez(buffer, *arrays)
    return buffer.getvalue()


def decode_arrays(data: bytes, *, origin: str = "artifact") -> list[np.ndarray]:
    """Read arrays back from ``.npz`` bytes without ever unpickling.

    Raises
    ------
    ArtifactError
        If the bytes are not an array archive of plain numeric arrays.
    """
    try:
        loaded = np.load(io.BytesIO(data), allow_pickle=False)
        if not isinstance(loaded, np.lib.npyio.NpzFile):
            raise ValueError("a single array, not an archive of them")
        with loaded as archive:
            names = sorted(archive.files, key=lambda n: int(n.removeprefix("arr_")))
            return [np.array(archive[name]) for name in names]
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, KeyError) as exc:
        raise ArtifactError(f"{origin} is not a plain array archive: {exc}") from exc


def sha256_hex(data: bytes) -> str:
    """Hex SHA-256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def artifact_path(root: Path, digest: str) -> Path:
    """Where the artifact with ``digest`` lives under ``root`` (two-level fan-out)."""
    return root / digest[:2] / f"{digest}.npz"


def save_arrays(root: Path, arrays: list[np.ndarray]) -> tuple[str, int]:
    """Store ``arrays`` under ``root``; returns ``(sha256, size)``. Idempotent."""
    data = encode_arrays(arrays)
    digest = sha256_hex(data)
    path = artifact_path(root, digest)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(f".tmp-{uuid.uuid4().hex}")
        temporary.write_bytes(data)
        temporary.replace(path)  # atomic: a crash never leaves a half-written artifact
    return digest, len(data)


def load_arrays(root: Path, digest: str) -> list[np.ndarray]:
    """Load the artifact ``digest``, checking that its bytes still hash to it.

    Raises
    ------
    ArtifactError
        If it is missing, its content no longer matches its hash, or it is
        not a plain array archive.
    """
    path = artifact_path(root, digest)
    try:
        data = path.read_bytes()
    except FileNotFoundError as exc:
        raise ArtifactError(f"model artifact {path} is missing") from exc
    actual = sha256_hex(data)
    if actual != digest:
        raise ArtifactError(
            f"model artifact {path} was altered: its SHA-256 is {actual[:16]}…, "
            f"the registry expects {digest[:16]}…",
            hint="Restore it from a backup or export, or roll back to another version.",
        )
    return decode_arrays(data, origin=str(path))
