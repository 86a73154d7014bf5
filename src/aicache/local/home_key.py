"""The per-home secret that keys every hash aicache stores of the user's input.

A plain SHA-256 of a password (or of a command line holding one) lets whoever
reads the store test guesses offline: ``sha256("hunter2")`` is in every
dictionary. Hashing with HMAC-SHA256 under a random key that lives next to the
store, readable by the owner only, stops that: the hashes mean nothing without
the key, differ between two homes, and ``privacy forget`` erasing the key makes
any copy of the old store's hashes unlinkable to new ones.

This module is on the cache-hit path: standard library only, one small read.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

from aicache.errors import StoreUnreadableError

KEY_FILENAME = "secret.key"
KEY_BYTES = 32

# Read once per process and home: a run hashes many words with the same key.
_loaded: dict[Path, bytes] = {}


class HomeKeyError(StoreUnreadableError):
    """The home's key file cannot be read or created, or is not a key aicache wrote.

    A kind of :class:`StoreUnreadableError`, so that ``aicache run`` still runs
    the command, without the cache.
    """


def key_path(home: Path) -> Path:
    """Where the key of ``home`` is kept."""
    return home / KEY_FILENAME


def home_key(home: Path) -> bytes:
    """The key of ``home``, created (owner-only) on first need.

    Raises
    ------
    HomeKeyError
        If the file cannot be read or created, or does not hold a key.
    """
    home = home.absolute()
    key = _loaded.get(home)
    if key is None:
        key = _read(home) or _create(home)
        _loaded[home] = key
    return key


def forget_loaded() -> None:
    """Drop the keys read by this process (after ``privacy forget`` erased them)."""
    _loaded.clear()


def keyed_hex(key: bytes, data: bytes) -> str:
    """Hex HMAC-SHA256 of ``data`` under ``key``."""
    return hmac.new(key, data, hashlib.sha256).hexdigest()


def _read(home: Path) -> bytes | None:
    path = key_path(home)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        return None
    except OSError as exc:  # a link (ELOOP), no permission
        raise _unusable(path, exc.strerror or str(exc)) from exc
    try:
        key = os.read(fd, KEY_BYTES + 1)
    finally:
        os.close(fd)
    if len(key) != KEY_BYTES:
        raise _unusable(path, f"it holds {len(key)} bytes, not a {KEY_BYTES}-byte key")
    return key


def _create(home: Path) -> bytes:
    """Write a new key where no reader can see it half-written, and keep the first one made."""
    path = key_path(home)
    key = secrets.token_bytes(KEY_BYTES)
    temporary = home / f".{KEY_FILENAME}.{os.getpid()}.{secrets.token_hex(4)}"
    try:
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        try:
            os.write(fd, key)
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(temporary, path)  # fails if another process made one first
        except FileExistsError:
            existing = _read(home)
            if existing is None:
                raise _unusable(path, "it vanished while being created") from None
            return existing
        finally:
            temporary.unlink()
    except OSError as exc:
        raise _unusable(path, exc.strerror or str(exc)) from exc
    return key


def _unusable(path: Path, reason: str) -> HomeKeyError:
    return HomeKeyError(
        f"the aicache key file {path} cannot be used: {reason}",
        hint=(
            "Nothing was changed. Move the file aside: a new key is made on the next run "
            "and entries cached under the old one are no longer found."
        ),
    )
