"""Readers for shell history files (bash, zsh, fish) and Greenberg's csh traces.

Each reader turns a file into :class:`ShellCommand` records in the order they
were typed. They are pure: nothing here touches the store.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

SHELLS = ("bash", "zsh", "fish")


@dataclass(frozen=True, slots=True)
class ShellCommand:
    """One command a user typed.

    Attributes
    ----------
    line
        The command line as typed.
    ts
        Seconds since the epoch when known (a session's start for Greenberg
        traces), else ``None``.
    session
        The index of the login session it belongs to, when the source has sessions.
    directory
        The working directory, when the source records it.
    failed
        Whether the command produced an error, when the source records it.
    """

    line: str
    ts: float | None = None
    session: int | None = None
    directory: str | None = None
    failed: bool | None = None


def read_text(path: Path) -> str:
    """Read a history file that may hold bytes that are not UTF-8 (old traces do)."""
    data = path.read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def _lines(text: str) -> list[str]:
    # Not str.splitlines(): old traces hold form feeds and other control
    # characters inside command lines, which splitlines() would break on.
    return [line.removesuffix("\r") for line in text.split("\n")]


def parse_bash(text: str) -> Iterator[ShellCommand]:
    """Parse a bash history, with or without ``#<epoch>`` timestamp lines."""
    ts: float | None = None
    for raw in _lines(text):
        line = raw.rstrip()
        if re.fullmatch(r"#\d{9,11}", line):
            ts = float(line[1:])
            continue
        if line.strip():
            yield ShellCommand(line=line, ts=ts)
        ts = None


_ZSH_EXTENDED = re.compile(r"^: (\d+):\d+;(.*)$")


def parse_zsh(text: str) -> Iterator[ShellCommand]:
    """Parse a zsh history in plain or extended form (``: <epoch>:<secs>;cmd``).

    Lines ending in a backslash continue on the next line.
    """
    pending: list[str] = []
    pending_ts: float | None = None
    for raw in _lines(text):
        if not pending:
            match = _ZSH_EXTENDED.match(raw)
            pending_ts, raw = (float(match.group(1)), match.group(2)) if match else (None, raw)
        if raw.endswith("\\"):
            pending.append(raw[:-1])
            continue
        pending.append(raw)
        line = "\n".join(pending).strip()
        pending = []
        if line:
            yield ShellCommand(line=line, ts=pending_ts)
    if pending and "\n".join(pending).strip():
        yield ShellCommand(line="\n".join(pending).strip(), ts=pending_ts)


def parse_fish(text: str) -> Iterator[ShellCommand]:
    """Parse fish's YAML-like history (``- cmd: ...`` followed by ``  when: <epoch>``)."""
    line: str | None = None
    ts: float | None = None
    for raw in _lines(text):
        if raw.startswith("- cmd: "):
            if line:
                yield ShellCommand(line=line, ts=ts)
            line = raw[len("- cmd: ") :].replace("\\n", "\n").replace("\\\\", "\\")
            ts = None
        elif raw.startswith("  when: ") and line is not None:
            try:
                ts = float(raw[len("  when: ") :])
            except ValueError:
                ts = None
    if line:
        yield ShellCommand(line=line, ts=ts)


def parse_history(text: str, shell: str) -> list[ShellCommand]:
    """Parse ``text`` as the history of ``shell`` (one of :data:`SHELLS`).

    Raises
    ------
    ValueError
        If ``shell`` is not one of :data:`SHELLS`.
    """
    parsers = {"bash": parse_bash, "zsh": parse_zsh, "fish": parse_fish}
    if shell not in parsers:
        raise ValueError(f"unknown shell {shell!r}: choose one of {', '.join(SHELLS)}")
    return list(parsers[shell](text))


def default_history_file(shell: str, home: Path) -> Path:
    """Where ``shell`` keeps its history by default."""
    return {
        "bash": home / ".bash_history",
        "zsh": home / ".zsh_history",
        "fish": home / ".local" / "share" / "fish" / "fish_history",
    }[shell]


_GREENBERG_FIELD = re.compile(r"^([SECDAHX]) (.*)$")


def _greenberg_time(value: str) -> float | None:
    try:
        return datetime.strptime(" ".join(value.split()), "%a %b %d %H:%M:%S %Y").timestamp()
    except ValueError:
        return None


def parse_greenberg(text: str) -> list[ShellCommand]:
    """Parse one user's trace in Greenberg's format (1987-88 csh traces).

    Records are blank-line separated; ``S`` opens a session, ``C`` is the
    command line, ``D`` the directory and ``X`` an error code or ``NIL``.

    Raises
    ------
    ValueError
        If the text has no command record: it is not a trace in this format.
    """
    commands: list[ShellCommand] = []
    session = -1
    session_ts: float | None = None
    record: dict[str, str] = {}

    def flush() -> None:
        if "C" in record:
            error = record.get("X", "NIL").strip()
            directory = record.get("D", "NIL").strip()
            commands.append(
                ShellCommand(
                    line=record["C"],
                    ts=session_ts,
                    session=max(session, 0),
                    directory=None if directory == "NIL" else directory,
                    failed=error not in ("", "NIL"),
                )
            )
        record.clear()

    for raw in _lines(text):
        match = _GREENBERG_FIELD.match(raw)
        if not match:
            if not raw.strip():
                flush()
            continue
        field, value = match.groups()
        if field == "S":
            flush()
            session += 1
            session_ts = _greenberg_time(value)
        elif field == "C":
            flush()
            record["C"] = value
        elif field != "E":
            record[field] = value
    flush()
    if not commands:
        raise ValueError("no command records ('C ...' lines) found: not a Greenberg trace")
    return commands
