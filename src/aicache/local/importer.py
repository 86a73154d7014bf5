"""Import shell histories and Greenberg traces into the store's ``commands`` table.

Only normalised tokens are kept (program, subcommand, flag names, a hash of
the directory) unless raw storage is on. A command imported twice is stored
once, whatever its line number: it is recognised by content (see
:mod:`aicache.local.command_keys`), so a rotated history adds only its new
commands and a second file adds all of its own.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from aicache.local.command_keys import CommandKey, command_keys
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


@dataclass
class _Known:
    """The windows the store already holds, and those this file has used so far.

    Counts, not sets: a run of commands a user repeats within one file is
    stored as often as it occurs, and a re-import matches each occurrence once.
    """

    before: Counter[str] = field(default_factory=Counter)
    after: Counter[str] = field(default_factory=Counter)
    pair: Counter[tuple[str, str]] = field(default_factory=Counter)
    seen_before: Counter[str] = field(default_factory=Counter)
    seen_after: Counter[str] = field(default_factory=Counter)
    seen_pair: Counter[tuple[str, str]] = field(default_factory=Counter)

    @classmethod
    def load(cls, conn: sqlite3.Connection) -> _Known:
        known = cls()
        rows = conn.execute(
            "SELECT before_hash, after_hash FROM commands WHERE before_hash IS NOT NULL"
        )
        for before, after in rows:
            known.before[before] += 1
            known.after[after] += 1
            known.pair[before, after] += 1
        return known

    def already_there(self, key: CommandKey) -> bool:
        """Whether the store holds this command; counts it as used either way."""
        assert key.before is not None and key.after is not None
        pair = (key.before, key.after)
        # A window cut by the edge of the file changes when the file rotates;
        # only a whole window, or both cut windows together, identify a command.
        found = (
            (key.before_full and self.seen_before[key.before] < self.before[key.before])
            or (key.after_full and self.seen_after[key.after] < self.after[key.after])
            or self.seen_pair[pair] < self.pair[pair]
        )
        self.seen_before[key.before] += 1
        self.seen_after[key.after] += 1
        self.seen_pair[pair] += 1
        return found

    def adopt(self, key: CommandKey) -> None:
        """Count a row stored before windows were kept as stored, and as matched here."""
        assert key.before is not None and key.after is not None
        for stored, seen, value in (
            (self.before, self.seen_before, key.before),
            (self.after, self.seen_after, key.after),
        ):
            stored[value] += 1
            seen[value] += 1
        self.pair[key.before, key.after] += 1
        self.seen_pair[key.before, key.after] += 1


def _window_fingerprint() -> str:
    # Rows keyed by windows are matched through before_hash and after_hash;
    # the fingerprint only has to be unique.
    return f"w-{uuid.uuid4().hex}"


def _legacy_fingerprint(source: str, user: str | None, position: int, line: str) -> str:
    """The identity stores before schema 2 gave a command: its source, user, line number, text."""
    material = f"{source}\0{user or ''}\0{position}\0{line}"
    return hashlib.sha256(material.encode("utf-8", "surrogateescape")).hexdigest()


def import_commands(
    store: Store,
    commands: Sequence[ShellCommand],
    *,
    source: str,
    origin: str,
    user: str | None = None,
) -> ImportResult:
    """Add ``commands`` (one file's, in typed order) to the store in one transaction.

    Commands the store already holds (from an earlier import of this file,
    or of an older or rotated copy of it) are skipped.
    """
    raw_storage = Settings.from_stored(store.settings()).raw_storage
    keys = command_keys(commands, scope=f"{source}\0{user or ''}")
    added = 0
    with store.write() as conn:
        start = conn.execute(
            "SELECT coalesce(max(seq) + 1, 0) FROM commands WHERE source = ?", (source,)
        ).fetchone()[0]
        known = _Known.load(conn)
        for position, (command, key) in enumerate(zip(commands, keys, strict=True)):
            legacy = _legacy_fingerprint(source, user, position, command.line)
            row = conn.execute(
                "SELECT id FROM commands WHERE fingerprint = ?", (legacy,)
            ).fetchone()
            if row is not None:  # imported by an older aicache: give it its new identity
                if key.timed is None:
                    known.adopt(key)
                conn.execute(
                    "UPDATE commands SET fingerprint = ?, before_hash = ?, after_hash = ? "
                    "WHERE id = ?",
                    (key.timed or _window_fingerprint(), key.before, key.after, row[0]),
                )
                continue
            if key.timed is not None:
                fingerprint = key.timed
            elif known.already_there(key):
                continue
            else:
                fingerprint = _window_fingerprint()
            tokens = command_tokens(command.line)
            if not tokens.program:
                continue
            cursor = conn.execute(
                "INSERT OR IGNORE INTO commands (fingerprint, source, seq, ts, session, program, "
                "subcommand, flags, n_args, dir_hash, failed, raw, before_hash, after_hash) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
                    key.before,
                    key.after,
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
