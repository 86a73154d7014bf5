from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aicache.local.units import (
    LATEST_TIMESTAMP,
    MAX_DURATION_S,
    bounded_timestamp,
    format_duration,
    format_size,
    parse_duration,
    parse_size,
)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90", 90), ("90s", 90), ("10m", 600), ("2h", 7200), ("30d", 2592000), ("1w", 604800)],
)
def test_parse_duration_units(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "abc", "-5m", "0", "5 parsecs", "1y"])
def test_parse_duration_rejects_with_the_value_named(text: str) -> None:
    with pytest.raises(ValueError, match="invalid duration"):
        parse_duration(text)


@given(st.integers(min_value=1, max_value=10**8))
def test_format_duration_round_trips(seconds: int) -> None:
    assert parse_duration(format_duration(seconds)) == seconds


@pytest.mark.parametrize(
    ("text", "size"), [("512", 512), ("64k", 65536), ("10MiB", 10485760), ("1g", 1073741824)]
)
def test_parse_size_units(text: str, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["", "ten", "-1k", "0", "5 tb"])
def test_parse_size_rejects_bad_values(text: str) -> None:
    with pytest.raises(ValueError, match="invalid size"):
        parse_size(text)


def test_format_size_uses_binary_units() -> None:
    assert format_size(10 * 1024 * 1024) == "10.0 MiB"
    assert format_size(12) == "12 B"


@pytest.mark.parametrize("text", ["999999999999999999999999w", "1" * 400, "5201w"])
def test_parse_duration_names_the_longest_accepted(text: str) -> None:
    with pytest.raises(ValueError, match="the longest accepted is 5200w"):
        parse_duration(text)


def test_parse_duration_accepts_the_longest() -> None:
    assert parse_duration("5200w") == MAX_DURATION_S


@pytest.mark.parametrize("stored", [float("inf"), 6.048e29, LATEST_TIMESTAMP + 1])
def test_a_stored_expiry_past_any_calendar_reads_as_never(stored: float) -> None:
    assert bounded_timestamp(stored) is None


def test_a_real_expiry_is_kept() -> None:
    assert bounded_timestamp(1.8e9) == 1.8e9
