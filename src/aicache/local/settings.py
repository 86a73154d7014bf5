"""User settings kept in the store, with their defaults and validation."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass

from aicache.local.units import (
    MAX_DURATION_S,
    format_duration,
    format_size,
    parse_duration,
    parse_size,
)

DEFAULT_MAX_AGE_S = 30 * 86400.0
DEFAULT_MAX_OUTPUT = 10 * 1024 * 1024
DEFAULT_SERVICE_IDLE_S = 600.0


def parse_switch(text: str) -> bool:
    """``on``/``true``/``yes``/``1`` or ``off``/``false``/``no``/``0``, in any case.

    Raises
    ------
    ValueError
        Naming the word and the two to use.
    """
    lowered = text.strip().lower()
    if lowered in ("on", "true", "yes", "1"):
        return True
    if lowered in ("off", "false", "no", "0"):
        return False
    raise ValueError(f"invalid switch {text!r}: use on or off")


def _parse_marks(text: str) -> tuple[str, ...]:
    """Comma-separated command prefixes such as ``mytool ask, other`` (empty: none)."""
    marks = tuple(" ".join(part.split()) for part in text.split(",") if part.strip())
    for mark in marks:
        tool = mark.split()[0]
        if "/" in tool or tool.startswith("-"):
            raise ValueError(
                f"invalid command {mark!r}: start each with a program name, e.g. 'mytool ask'"
            )
    return marks


def _is_tool_name(name: str) -> bool:
    # A program name: letters, digits and . _ + - (clang-18, g++, python3.12);
    # not a path, and not "(none)", which is how an empty list is shown.
    return not name.startswith("-") and all(c.isalnum() or c in "._+-" for c in name)


def parse_tools(text: str) -> frozenset[str]:
    """A comma-separated list of program names (``llm,make``); empty for none."""
    names = [name.strip() for name in text.split(",") if name.strip()]
    for name in names:
        if not _is_tool_name(name):
            raise ValueError(
                f"invalid tool name {name!r}: give program names separated by commas (llm,make)"
            )
    return frozenset(names)


def _stored_tools(text: str) -> frozenset[str]:
    # Kept before names were checked this strictly: a value that is no
    # program name (such as "(none)") can match no command, so it is dropped.
    return frozenset(n.strip() for n in text.split(",") if n.strip() and _is_tool_name(n.strip()))


# The words that turn a budget limit off (a switch's words, not a privacy mode's name).
_NO_LIMIT = frozenset({"off", "none", ""})


def _parse_limit(parse: Callable[[str], int]) -> Callable[[str], int | None]:
    """A budget limit: ``off`` for none, else what ``parse`` reads."""

    def parse_limit(text: str) -> int | None:
        if text.strip().lower() in _NO_LIMIT:
            return None
        return parse(text)

    return parse_limit


def parse_entries(text: str) -> int:
    """A positive number of entries (``500``).

    Raises
    ------
    ValueError
        If ``text`` is not a whole number greater than zero.
    """
    try:
        count = int(text.strip())
    except ValueError:
        raise ValueError(
            f"invalid number of entries {text!r}: give a whole number such as 500, or off"
        ) from None
    if count <= 0:
        raise ValueError(f"invalid number of entries {text!r}: it must be greater than zero")
    return count


def _parse_size_limit(text: str) -> int:
    try:
        return parse_size(text)
    except ValueError as exc:
        raise ValueError(f"{exc}, or off") from None


parse_max_entries = _parse_limit(parse_entries)
parse_max_size = _parse_limit(_parse_size_limit)


def _stored_duration(text: str) -> float:
    try:
        return parse_duration(text)
    except ValueError:
        # Set before durations were bounded (it was checked when set): longer than
        # the longest accepted means the longest.
        return MAX_DURATION_S


@dataclass(frozen=True, slots=True)
class Setting:
    """A setting's name, what it means, its default and how to read it."""

    name: str
    help: str
    default: str
    parse: Callable[[str], object]


SETTINGS: dict[str, Setting] = {
    s.name: s
    for s in (
        Setting(
            "raw-storage",
            "keep raw prompt text in events and raw command lines in imported history",
            "off",
            parse_switch,
        ),
        Setting(
            "max-age",
            "how long raw prompts and answers (cache entries) are kept before pruning",
            format_duration(DEFAULT_MAX_AGE_S),
            parse_duration,
        ),
        Setting(
            "max-output",
            "outputs larger than this are passed through but not stored",
            "10m",
            parse_size,
        ),
        Setting(
            "show-hits",
            "say on stderr when an answer comes from the cache",
            "off",
            parse_switch,
        ),
        Setting(
            "cacheable",
            "commands of tools outside the adapter table that `aicache wrap` may cache "
            "(comma-separated prefixes, e.g. 'mytool ask, othertool')",
            "",
            _parse_marks,
        ),
        Setting(
            "prefetch-tools",
            "tools whose expired answers `aicache prefetch` may re-run (comma-separated; "
            "none by default: a re-run may be a paid AI call)",
            "",
            parse_tools,
        ),
        Setting(
            "semantic",
            "serve a cached answer to a reworded prompt when the semantic-hit model says it "
            "fits (needs aicache[semantic]; `aicache run --exact` turns it off for one call)",
            "on",
            parse_switch,
        ),
        Setting(
            "semantic-commands",
            "commands of tools outside the adapter table whose words after the prefix (up to "
            "the first option) are a prompt, for semantic hits (comma-separated prefixes, "
            "e.g. 'mytool ask')",
            "",
            _parse_marks,
        ),
        Setting(
            "semantic-service-idle",
            "how long the warm semantic service waits for a lookup before it exits",
            format_duration(DEFAULT_SERVICE_IDLE_S),
            parse_duration,
        ),
        Setting(
            "max-size",
            "past this much output kept, entries are evicted by their keep-score "
            "(e.g. 200m; off for no limit)",
            "off",
            parse_max_size,
        ),
        Setting(
            "max-entries",
            "past this many entries, entries are evicted by their keep-score (off for no limit)",
            "off",
            parse_max_entries,
        ),
    )
}


@dataclass(frozen=True, slots=True)
class Settings:
    """The effective settings of a store."""

    raw_storage: bool = False
    max_age_s: float = DEFAULT_MAX_AGE_S
    max_output: int = DEFAULT_MAX_OUTPUT
    show_hits: bool = False
    cacheable: tuple[str, ...] = ()
    prefetch_tools: frozenset[str] = frozenset()
    semantic: bool = True
    semantic_commands: tuple[str, ...] = ()
    semantic_service_idle_s: float = DEFAULT_SERVICE_IDLE_S
    max_size: int | None = None
    max_entries: int | None = None

    @classmethod
    def from_stored(cls, stored: dict[str, str]) -> Settings:
        """Build settings from the raw values kept in the store (defaults for the rest)."""
        values = {name: stored.get(name, s.default) for name, s in SETTINGS.items()}
        return cls(
            raw_storage=parse_switch(values["raw-storage"]),
            max_age_s=_stored_duration(values["max-age"]),
            max_output=parse_size(values["max-output"]),
            show_hits=parse_switch(values["show-hits"]),
            cacheable=_parse_marks(values["cacheable"]),
            prefetch_tools=_stored_tools(values["prefetch-tools"]),
            semantic=parse_switch(values["semantic"]),
            semantic_commands=_parse_marks(values["semantic-commands"]),
            semantic_service_idle_s=_stored_duration(values["semantic-service-idle"]),
            max_size=parse_max_size(values["max-size"]),
            max_entries=parse_max_entries(values["max-entries"]),
        )

    def describe(self) -> dict[str, str]:
        """The settings as people read and write them."""
        return {
            "raw-storage": "on" if self.raw_storage else "off",
            "max-age": format_duration(self.max_age_s),
            "max-output": format_size(self.max_output),
            "show-hits": "on" if self.show_hits else "off",
            "cacheable": ", ".join(self.cacheable),
            "prefetch-tools": ",".join(sorted(self.prefetch_tools)) or "(none)",
            "semantic": "on" if self.semantic else "off",
            "semantic-commands": ", ".join(self.semantic_commands),
            "semantic-service-idle": format_duration(self.semantic_service_idle_s),
            "max-size": "off" if self.max_size is None else format_size(self.max_size),
            "max-entries": "off" if self.max_entries is None else str(self.max_entries),
        }


def validate_setting(name: str, value: str) -> str:
    """Check ``value`` for setting ``name`` and return it normalised for storage.

    Raises
    ------
    ValueError
        If the setting is unknown or the value is out of range.
    """
    if name not in SETTINGS:
        raise ValueError(f"unknown setting {name!r}: choose one of {', '.join(SETTINGS)}")
    parsed = SETTINGS[name].parse(value)
    if name in ("cacheable", "semantic-commands"):
        return ", ".join(_parse_marks(value))
    if isinstance(parsed, frozenset):
        return ",".join(sorted(parsed))
    return value.strip()


def raw_text_kept(conn: sqlite3.Connection) -> tuple[int, int]:
    """How many events keep a raw prompt, and how many imported commands a raw line."""
    prompts = conn.execute("SELECT count(*) FROM events WHERE raw_prompt IS NOT NULL").fetchone()
    lines = conn.execute("SELECT count(*) FROM commands WHERE raw IS NOT NULL").fetchone()
    return int(prompts[0]), int(lines[0])


def erase_raw_text(conn: sqlite3.Connection) -> tuple[int, int]:
    """Erase every raw prompt and raw command line (raw storage turned off); return the counts.

    The store is then checkpointed and vacuumed: SQLite leaves deleted text in
    free pages and in its write-ahead log until they are reused.
    """
    conn.execute("BEGIN IMMEDIATE")
    try:
        prompts = conn.execute(
            "UPDATE events SET raw_prompt = NULL WHERE raw_prompt IS NOT NULL"
        ).rowcount
        lines = conn.execute("UPDATE commands SET raw = NULL WHERE raw IS NOT NULL").rowcount
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    conn.execute("VACUUM")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return prompts, lines
