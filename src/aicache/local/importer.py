"""Import shell histories and Greenberg traces into the store's ``commands`` table.

Only normalised tokens are kept (program, subcommand, flag names, a hash of
the directory) unless raw storage is on. A command imported twice is stored
once: its fingerprint is the source, the user, its position and its text.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass

from aicache.local.history import ShellCommand
from aicache.local.normalise import command_tokens
from aicache.local.settings import Settings
from aicache.local.store import Store


@dataclass(frozen=True, slots=True)
class ImportResult:
    """How many commands an import added and how many it already had."""

    added: int
    skipped: int


def directory_hash(directory: str) -> str:
    """A short hash that tells directories apart without naming them."""
    return hashlib.sha256(directory.encode("utf-8", "surrogateescape")).hexdigest()[:16]


def import_commands(
    store: Store,
    commands: Sequence[ShellCommand],
    *,
    source: str,
    origin: str,
    user: str | None = None,
) -> ImportResult:
    """Add ``commands`` (in typed order) to the store in one transaction."""
    raw_storage = Settings.from_stored(store.settings()).raw_storage
    added = 0
    with store.write() as conn:
        start = conn.execute(
            "SELECT coalesce(max(seq) + 1, 0) FROM commands WHERE source = ?", (source,)
        ).fetchone()[0]
        for position, command in enumerate(commands):
            tokens = command_tokens(command.line)
            if not tokens.program:
                continue
            material = f"{source}\0{user or ''}\0{position}\0{command.line}"
            fingerprint = hashlib.sha256(material.encode("utf-8", "surrogateescape")).hexdigest()
            cursor = conn.execute(
                "INSERT OR IGNORE INTO commands (fingerprint, source, seq, ts, session, program, "
                "subcommand, flags, n_args, dir_hash, failed, raw) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    fingerprint,
                    source,
                    start + added,
                    command.ts,
                    command.session,
                    tokens.program,
                    tokens.subcommand,
                    json.dumps(tokens.flags),
                    tokens.n_args,
                    None if command.directory is None else directory_hash(command.directory),
                    None if command.failed is None else int(command.failed),
                    command.line if raw_storage else None,
                ),
            )
            added += cursor.rowcount
        skipped = len(commands) - added
        conn.execute(
            "INSERT INTO imports (source, origin, user, imported_at, added, skipped) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (source, origin, user, time.time(), added, skipped),
        )
    return ImportResult(added, skipped)
