"""Where aicache keeps the private store, and with which permissions."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from aicache.errors import StoreUnreadableError

STORE_FILENAME = "store.db"
MODELS_DIRNAME = "models"
FEDERATION_DIRNAME = "federation"
REGISTRY_DIRNAME = "registry"
# Registries of simulations, apart so that an experiment never changes what is served.
SIMULATIONS_DIRNAME = "simulations"


class HomeUnusableError(StoreUnreadableError):
    """The aicache home is not a directory aicache can use (a file, or under one).

    A kind of :class:`StoreUnreadableError`, so that ``aicache run`` still runs
    the command, without the cache, as it does for any store it cannot use.
    """


def aicache_home() -> Path:
    """Return the data directory: ``$AICACHE_HOME``, else the XDG data dir.

    Returns
    -------
    Path
        ``$AICACHE_HOME`` if set, otherwise ``$XDG_DATA_HOME/aicache``,
        otherwise ``~/.local/share/aicache``. The directory may not exist yet.

    Raises
    ------
    HomeUnusableError
        If that path exists and is not a directory, or lies under a file.
    """
    home = configured_home()
    check_home(home)
    return home


def configured_home() -> Path:
    """The data directory :func:`aicache_home` names, without checking it (for ``doctor``)."""
    explicit = os.environ.get("AICACHE_HOME")
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_DATA_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".local" / "share"
    return base / "aicache"


def check_home(home: Path) -> None:
    """Raise :class:`HomeUnusableError` unless ``home`` is a directory or can become one."""
    try:
        mode = home.stat().st_mode
    except FileNotFoundError:
        return  # created on first use
    except OSError as exc:  # a file on the way (ENOTDIR), no permission, a symlink loop
        raise _unusable(home, exc.strerror or str(exc)) from exc
    if not stat.S_ISDIR(mode):
        raise _unusable(home, "it is a file, not a directory")


def _unusable(home: Path, reason: str) -> HomeUnusableError:
    return HomeUnusableError(
        f"the aicache directory {home} cannot be used: {reason}",
        hint=(
            "Nothing was changed. Point AICACHE_HOME at a directory (or unset it to use "
            "the default), or move the file aside."
        ),
    )


def ensure_private_dir(path: Path) -> Path:
    """Create ``path`` (and parents) if needed and make it readable by the owner only.

    Raises
    ------
    HomeUnusableError
        If ``path`` is a file or cannot be created.
    """
    check_home(path)
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise _unusable(path, exc.strerror or str(exc)) from exc
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
