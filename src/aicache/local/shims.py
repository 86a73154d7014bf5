"""``aicache wrap``: shims that route a real tool through the cache.

A shim is a small shell script named after the tool in a directory early on
``PATH``. It calls ``aicache run -- TOOL``; :func:`resolve_program` then finds
the real tool by searching ``PATH`` while skipping every aicache shim, so a
shim never runs itself, even if the real binary moves after wrapping.
"""

from __future__ import annotations

import os
import shlex
from dataclasses import dataclass
from pathlib import Path

SHIM_MARKER = b"# aicache-shim"
_MARKER_WINDOW = 256


def is_shim(path: Path) -> bool:
    """Whether ``path`` is a shim written by :func:`write_shim`."""
    try:
        with path.open("rb") as handle:
            return SHIM_MARKER in handle.read(_MARKER_WINDOW)
    except OSError:
        return False


def resolve_program(name: str, path_env: str | None = None) -> str | None:
    """Find the executable that ``name`` runs, skipping aicache shims.

    A name with a slash is taken as a path. Returns ``None`` when nothing
    executable is found, like the shell's ``command not found``.
    """
    if "/" in name:
        return name if Path(name).exists() else None
    search = os.environ.get("PATH", os.defpath) if path_env is None else path_env
    for directory in search.split(os.pathsep):
        candidate = Path(directory or ".") / name
        if candidate.is_file() and os.access(candidate, os.X_OK) and not is_shim(candidate):
            return str(candidate)
    return None


def default_bin_dir() -> Path:
    """Where shims go by default: ``~/.local/bin``."""
    return Path.home() / ".local" / "bin"


def shim_text(tool: str, aicache_command: list[str]) -> str:
    """The shell script that routes ``tool`` through ``aicache run``."""
    runner = " ".join(shlex.quote(part) for part in aicache_command)
    return (
        "#!/bin/sh\n"
        f"{SHIM_MARKER.decode()} for {tool}: remove with `aicache unwrap {tool}`\n"
        f'exec {runner} run --wrapped -- {shlex.quote(tool)} "$@"\n'
    )


class NotAShimError(FileExistsError):
    """A file that aicache did not write already has the shim's name."""


def write_shim(tool: str, bin_dir: Path, aicache_command: list[str], *, force: bool) -> Path:
    """Install the shim for ``tool`` in ``bin_dir``.

    Raises
    ------
    ValueError
        If ``tool`` is not a plain command name, or is not found on ``PATH``.
    NotAShimError
        If a file that is not a shim already has that name and ``force`` is false.
    OSError
        If the directory cannot be created or written.
    """
    if not tool or "/" in tool or tool.startswith("-"):
        raise ValueError(f"invalid tool name {tool!r}: give a command name such as claude")
    if resolve_program(tool) is None:
        raise ValueError(f"{tool} is not found on PATH: install it first, then wrap it")
    target = bin_dir / tool
    if target.exists() and not is_shim(target) and not force:
        raise NotAShimError(str(target))
    bin_dir.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{tool}.aicache-tmp")
    try:
        temporary.write_text(shim_text(tool, aicache_command))
        temporary.chmod(0o755)
        temporary.replace(target)
    except OSError:
        temporary.unlink(missing_ok=True)
        raise
    return target


def remove_shim(tool: str, bin_dir: Path) -> Path:
    """Remove the shim for ``tool`` from ``bin_dir``.

    Raises
    ------
    FileNotFoundError
        If there is no shim for ``tool`` there (a real program is never removed).
    """
    target = bin_dir / tool
    if not is_shim(target):
        raise FileNotFoundError(str(target))
    target.unlink()
    return target


@dataclass(frozen=True, slots=True)
class ShimReach:
    """Whether typing the tool's name runs its shim.

    Attributes
    ----------
    active
        A shim is what the shell finds first on ``PATH``.
    on_path
        The shim's directory is on ``PATH`` at all.
    ahead
        The program found before the shim, if any (the real tool, usually).
    """

    active: bool
    on_path: bool
    ahead: Path | None


def shim_reach(tool: str, bin_dir: Path, path_env: str | None = None) -> ShimReach:
    """Check that ``tool`` typed in a shell would run the shim in ``bin_dir``."""
    search = os.environ.get("PATH", os.defpath) if path_env is None else path_env
    entries = [Path(p or ".") for p in search.split(os.pathsep)]
    target = bin_dir.resolve()
    on_path = any(entry.resolve() == target for entry in entries)
    for directory in entries:
        candidate = directory / tool
        if candidate.is_file() and os.access(candidate, os.X_OK):
            if is_shim(candidate):
                return ShimReach(True, on_path, None)
            return ShimReach(False, on_path, candidate)
    return ShimReach(False, on_path, None)


def path_has(bin_dir: Path) -> bool:
    """Whether ``bin_dir`` is on ``PATH`` (see :func:`shim_reach` for whether it comes first)."""
    entries = [Path(p).resolve() for p in os.environ.get("PATH", "").split(os.pathsep) if p]
    return bin_dir.resolve() in entries
