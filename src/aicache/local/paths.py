"""Where aicache keeps the private store, and with which permissions."""

from __future__ import annotations

import os
from pathlib import Path

STORE_FILENAME = "store.db"
MODELS_DIRNAME = "models"
FEDERATION_DIRNAME = "federation"


def aicache_home() -> Path:
    """Return the data directory: ``$AICACHE_HOME``, else the XDG data dir.

    Returns
    -------
    Path
        ``$AICACHE_HOME`` if set, otherwise ``$XDG_DATA_HOME/aicache``,
        otherwise ``~/.local/share/aicache``. The directory may not exist yet.
    """
    explicit = os.environ.get("AICACHE_HOME")
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_DATA_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".local" / "share"
    return base / "aicache"


def ensure_private_dir(path: Path) -> Path:
    """Create ``path`` (and parents) if needed and make it readable by the owner only."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    if path.stat().st_mode & 0o077:
        path.chmod(0o700)
    return path


def store_path(home: Path | None = None) -> Path:
    """Return the path of the SQLite store inside ``home`` (default: :func:`aicache_home`)."""
    return (home or aicache_home()) / STORE_FILENAME


def federation_dir(home: Path | None = None) -> Path:
    """Return the directory of a joined federation's node state inside ``home``."""
    return (home or aicache_home()) / FEDERATION_DIRNAME


def models_dir(home: Path | None = None) -> Path:
    """Return the directory for personal model state inside ``home``."""
    return (home or aicache_home()) / MODELS_DIRNAME
