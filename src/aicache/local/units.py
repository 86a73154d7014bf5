"""Parsing of the human units the command line accepts: durations and sizes."""

from __future__ import annotations

import math
import re

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$")
_DURATION_FACTORS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
# The longest duration accepted (about 100 years): beyond it a timestamp no
# longer converts to a date, and "never" is what such a value means anyway.
MAX_DURATION_S = 5200 * 604800.0
# The latest timestamp shown as a date (the end of year 9999); a stored value
# past it (written before durations were bounded) reads as "never".
LATEST_TIMESTAMP = 253402300799.0
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(b|k|kb|kib|m|mb|mib|g|gb|gib)?\s*$", re.IGNORECASE)
_SIZE_FACTORS = {"b": 1, "k": 1024, "m": 1024**2, "g": 1024**3}


def parse_duration(text: str) -> float:
    """Parse ``30s``, ``5m``, ``2h``, ``7d``, ``1w`` or plain seconds into seconds.

    Raises
    ------
    ValueError
        If ``text`` is not a positive duration in one of those forms, or is
        longer than :data:`MAX_DURATION_S`.
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
    if not seconds <= MAX_DURATION_S:  # also catches inf from a very long number
        raise ValueError(
            f"invalid duration {text!r}: the longest accepted is "
            f"{format_duration(MAX_DURATION_S)} (about 100 years)"
        )
    return seconds


def bounded_timestamp(value: float | None) -> float | None:
    """A stored expiry as a usable timestamp: ``None`` (never) when it is past year 9999.

    Stores written before durations were bounded may hold ``inf`` or a number
    of seconds no calendar can show; both mean "never expires".
    """
    if value is None or not math.isfinite(value) or value > LATEST_TIMESTAMP:
        return None
    return value


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
