"""A typed record of one past command, built from the store's normalised fields.

:class:`HistoryItem` is what every history-based feature reads. It holds no
raw text: the command unit (``git commit``, ``ls``), the session, a hash of the
directory and whether the command failed. Converters build it from a parsed
:class:`~aicache.local.history.ShellCommand` (simulation over real traces) or
from a row of the store's ``commands`` table (deployment).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from aicache.local.history import ShellCommand, parse_greenberg, read_text
from aicache.local.importer import directory_hash
from aicache.local.normalise import command_tokens
from aicache.local.store import Store


@dataclass(frozen=True, slots=True)
class HistoryItem:
    """One past command as features see it.

    Attributes
    ----------
    command
        ``program`` or ``program subcommand`` (see
        :attr:`~aicache.local.normalise.CommandTokens.command`).
    session
        The login session it belongs to, when known.
    dir_hash
        The hash of the directory it was typed in, when known.
    failed
        Whether it produced an error, when known.
    """

    command: str
    session: int | None = None
    dir_hash: str | None = None
    failed: bool | None = None

    @property
    def program(self) -> str:
        """The program name: the first word of :attr:`command`."""
        return self.command.split(" ", 1)[0]


def item_from_shell(command: ShellCommand) -> HistoryItem | None:
    """Convert a parsed shell command, or return ``None`` when it names no program.

    Parameters
    ----------
    command
        A record from one of the readers in :mod:`aicache.local.history`.

    Returns
    -------
    HistoryItem or None
        The normalised record; the directory is hashed the way the importer
        hashes it, so items from a trace and from the store agree.
    """
    tokens = command_tokens(command.line)
    if not tokens.program:
        return None
    return HistoryItem(
        command=tokens.command,
        session=command.session,
        dir_hash=None if command.directory is None else directory_hash(command.directory),
        failed=command.failed,
    )


def items_from_shell(commands: Iterable[ShellCommand]) -> list[HistoryItem]:
    """Convert parsed shell commands in order, dropping those that name no program."""
    return [item for command in commands if (item := item_from_shell(command)) is not None]


def item_from_row(row: Mapping[str, object]) -> HistoryItem:
    """Convert a row of the store's ``commands`` table.

    Parameters
    ----------
    row
        A mapping with at least ``program``; ``subcommand``, ``session``,
        ``dir_hash`` and ``failed`` are read when present (``sqlite3.Row``
        works once turned into a dict).

    Raises
    ------
    ValueError
        If the row has no program.
    """
    program = row.get("program")
    if not isinstance(program, str) or not program:
        raise ValueError("a commands row needs a non-empty program")
    subcommand = row.get("subcommand")
    session = row.get("session")
    dir_hash = row.get("dir_hash")
    failed = row.get("failed")
    return HistoryItem(
        command=f"{program} {subcommand}"
        if isinstance(subcommand, str) and subcommand
        else program,
        session=session if isinstance(session, int) else None,
        dir_hash=dir_hash if isinstance(dir_hash, str) else None,
        failed=None if failed is None else bool(failed),
    )


def items_from_store(conn: sqlite3.Connection, source: str | None = None) -> list[HistoryItem]:
    """Read the ``commands`` table (optionally one source) in typed order.

    Parameters
    ----------
    conn
        An open connection to the private store.
    source
        Only the commands imported from this source; every source when ``None``
        (ordered by source, then position).
    """
    query = "SELECT program, subcommand, session, dir_hash, failed FROM commands"
    params: tuple[str, ...] = ()
    if source is not None:
        query += " WHERE source = ?"
        params = (source,)
    query += " ORDER BY source, seq"
    columns = ("program", "subcommand", "session", "dir_hash", "failed")
    return [
        item_from_row(dict(zip(columns, row, strict=True))) for row in conn.execute(query, params)
    ]


def items_from_greenberg(path: Path) -> list[HistoryItem]:
    """One user's trace in Greenberg's format, as history items.

    Raises
    ------
    ValueError, OSError
        If the file cannot be read or is not such a trace.
    """
    return items_from_shell(parse_greenberg(read_text(path)))


def items_from_home(home: Path) -> list[HistoryItem]:
    """Every imported command of the store of the aicache home ``home``, in typed order."""
    with Store.open(home) as store:
        return items_from_store(store.conn)


def history_version(home: Path) -> str:
    """A key that changes whenever the command history of ``home``'s store does."""
    with Store.open(home) as store:
        count, last = store.conn.execute("SELECT count(*), max(rowid) FROM commands").fetchone()
    return f"{count}-{last}"
