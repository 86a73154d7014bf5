"""The command lines as the user typed them, which the store keeps when ``raw-storage`` is on.

Suggestions are shown as the user last typed them; only this side of the
privacy boundary reads those lines from the store.
"""

from __future__ import annotations

from aicache.local.store import Store


def last_typed(store: Store, tokens: str) -> str | None:
    """The most recent stored command line that normalises to ``tokens``, if any is kept."""
    program, _, subcommand = tokens.partition(" ")
    row = store.conn.execute(
        "SELECT raw FROM commands WHERE program = ? AND coalesce(subcommand, '') = ? "
        "AND raw IS NOT NULL ORDER BY id DESC LIMIT 1",
        (program, subcommand),
    ).fetchone()
    return None if row is None else str(row[0])


def keeps_command_lines(store: Store) -> bool:
    """Whether the store keeps any command line as typed."""
    row = store.conn.execute("SELECT 1 FROM commands WHERE raw IS NOT NULL LIMIT 1").fetchone()
    return row is not None
