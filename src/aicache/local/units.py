"""Parsing of the human units the command line accepts: durations and sizes."""

from __future__ import annotations

import re

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$")
_DURATION_FACTORS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(b|k|kb|kib|m|mb|mib|g|gb|gib)?\s*$", re.IGNORECASE)
_SIZE_FACTORS = {"b": 1, "k": 1024, "m": 1024**2, "g": 1024**3}


def parse_duration(text: str) -> float:
    """Parse ``30s``, ``5m``, ``2h``, ``7d``, ``1w`` or plain seconds into seconds.

    Raises
    ------
    ValueError
        If ``text`` is not a positive duration in one of those forms.
    """
    match = _DURATION.match(text)
    if not match:
        raise ValueError(
            f"invalid duration {text!r}: use a number with an optional unit s, m, h, d or w "
            "(for example 90s, 10m, 2h, 30d)"
        )
    seconds = float(match.group(1)) * _DURATION_FACTORS[match.group(2)]
    if seconds <= 0:
        raise ValueError(f"invalid duration {text!r}: it must be greater than zero")
    return seconds


def parse_size(text: str) -> int:
    """Parse ``512``, ``64k``, ``10MiB`` or ``1g`` into bytes (binary multiples).

    Raises
    ------
    ValueError
        If ``text`` is not a positive size in one of those forms.
    """
    match = _SIZE.match(text)
    if not match:
        raise ValueError(
            f"invalid size {text!r}: use a number of bytes with an optional unit k, m or g "
            "(for example 512k, 10m)"
        )
    unit = (match.group(2) or "b")[0].lower()
    size = int(float(match.group(1)) * _SIZE_FACTORS[unit])
    if size <= 0:
        raise ValueError(f"invalid size {text!r}: it must be greater than zero")
    return size


def format_duration(seconds: float) -> str:
    """Render seconds the way :func:`parse_duration` reads them back (largest exact unit)."""
    for unit in ("w", "d", "h", "m"):
        factor = _DURATION_FACTORS[unit]
        if seconds >= factor and seconds % factor == 0:
            return f"{int(seconds // factor)}{unit}"
    return f"{int(seconds)}s" if float(seconds).is_integer() else f"{seconds:.3f}s"


def format_size(size: float) -> str:
    """Render a byte count for people (``1.5 MiB``)."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(size) < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")
