"""The private SQLite store: opening, checking, migrating and writing safely.

One file under the aicache home, WAL mode so readers never wait for a writer,
a busy timeout so concurrent ``aicache run`` calls queue instead of failing,
and owner-only permissions. A file that is not an aicache store is never
replaced: opening it raises :class:`~aicache.errors.StoreUnreadableError` with
the way out.
"""

from __future__ import annotations

import os
import sqlite3
import stat
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from aicache.errors import StoreUnreadableError
from aicache.local.paths import aicache_home, check_home, ensure_private_dir, store_path
from aicache.local.schema import APPLICATION_ID, MIGRATIONS, SCHEMA_VERSION

SQLITE_HEADER = b"SQLite format 3\x00"
BUSY_TIMEOUT_S = 30.0


def unreadable(path: Path, reason: str) -> StoreUnreadableError:
    """Build the error for a store file that cannot be used, with the way out."""
    return StoreUnreadableError(
        f"the aicache store {path} cannot be used: {reason}",
        hint=(
            "Nothing was changed. Run `aicache doctor` to check it and `aicache doctor --repair` "
            f"to salvage what is readable into a new store (the old file is kept as a backup), "
            f"or move it aside yourself: mv {path} {path}.bad"
        ),
    )


class Store:
    """An open connection to the private store.

    Use :meth:`open` to get one; it creates the file on first use and applies
    migrations. Writes go through :meth:`write`, which takes the write lock up
    front so that two processes never deadlock on an upgrade from read to write.

    Parameters
    ----------
    path
        The SQLite file.
    conn
        An open connection in autocommit mode, already checked and migrated.
    """

    def __init__(self, path: Path, conn: sqlite3.Connection) -> None:
        self.path = path
        self.conn = conn

    @classmethod
    def open(cls, home: Path | None = None) -> Store:
        """Open (creating if needed) the store under ``home`` (default: the aicache home).

        Raises
        ------
        StoreUnreadableError
            If the file is not an SQLite database, belongs to another program,
            is corrupt, or was written by a newer aicache.
        """
        home = home or aicache_home()
        check_home(home)
        path = store_path(home)
        check_own_files(path)
        _check_header(path)
        ensure_private_dir(home)
        if not path.exists():
            # Created here, not by SQLite, so the file is owner-only from its first
            # byte; O_NOFOLLOW so that a link planted meanwhile is not written through.
            os.close(os.open(path, os.O_CREAT | os.O_RDWR | os.O_NOFOLLOW, 0o600))
        old_umask = os.umask(0o077)  # the -wal and -shm files SQLite creates later
        try:
            conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        finally:
            os.umask(old_umask)
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
            _migrate(conn, path)
            _ensure_wal(conn)
            conn.execute("PRAGMA synchronous = NORMAL")
        except sqlite3.DatabaseError as exc:
            conn.close()
            raise unreadable(path, str(exc)) from exc
        except BaseException:
            conn.close()
            raise
        return cls(path, conn)

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """A write transaction: committed on success, rolled back on any exception."""
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield self.conn
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    def get_setting(self, key: str) -> str | None:
        """Return the stored value of a setting, or ``None`` when unset."""
        row = self.conn.execute("SELECT value FROM settings WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def settings(self) -> dict[str, str]:
        """Return every stored setting."""
        return {str(k): str(v) for k, v in self.conn.execute("SELECT key, value FROM settings")}

    def set_setting(self, key: str, value: str) -> None:
        """Store a setting (replacing any previous value)."""
        with self.write() as conn:
            conn.execute("INSERT OR REPLACE INTO settings (key, value) VALUES (?, ?)", (key, value))

    def close(self) -> None:
        """Close the connection."""
        self.conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def check_own_files(path: Path) -> None:
    """Refuse a store (or its WAL/SHM file) that is a symbolic link or another user's file.

    SQLite follows links, so a store path linked to someone else's file would
    have aicache write its tables, and the user's prompts, into that file.

    Raises
    ------
    StoreUnreadableError
        Naming the file and what is wrong with it.
    """
    for candidate in (path, *sidecars(path)):
        try:
            info = candidate.lstat()
        except FileNotFoundError:
            continue
        except OSError as exc:
            raise unreadable(path, f"{candidate}: {exc.strerror or exc}") from exc
        if stat.S_ISLNK(info.st_mode):
            raise unreadable(
                path,
                f"{candidate} is a symbolic link (to {candidate.readlink()}); aicache writes "
                "only to its own files",
            )
        if not stat.S_ISREG(info.st_mode):
            raise unreadable(path, f"{candidate} is not a regular file")
        if info.st_uid != os.geteuid():
            raise unreadable(
                path, f"{candidate} belongs to another user (uid {info.st_uid}), not to you"
            )


# The files SQLite keeps beside a database, by the suffix of their name.
SIDECAR_KINDS = (("-wal", "write-ahead log"), ("-shm", "shared memory"), ("-journal", "journal"))
SIDECAR_SUFFIXES = tuple(suffix for suffix, _ in SIDECAR_KINDS)
BACKUP_MARK = ".broken-"


def sidecars(path: Path) -> tuple[Path, ...]:
    """The files SQLite keeps beside the store: its write-ahead log, shared memory, journal."""
    return tuple(path.with_name(path.name + suffix) for suffix in SIDECAR_SUFFIXES)


def is_sidecar(path: Path) -> bool:
    """Whether ``path`` is named like one of the files SQLite keeps beside a database."""
    return path.name.endswith(SIDECAR_SUFFIXES)


def store_backups(path: Path) -> list[Path]:
    """The copies of the store at ``path`` that ``doctor --repair`` moved aside, oldest name first.

    Their sidecars are not listed (see :func:`sidecars`).
    """
    if not path.parent.is_dir():
        return []
    found = path.parent.glob(f"{path.name}{BACKUP_MARK}*")
    return sorted(p for p in found if not is_sidecar(p))


def new_backup_path(path: Path) -> Path:
    """A backup name for the store at ``path`` that no file has yet, created empty.

    The name carries the time; a counter follows when a backup of the same
    second exists, and the file is created exclusively, so that a second
    repair never renames over the first one's backup.
    """
    stamp = time.strftime("%Y%m%d-%H%M%S")
    counter = 0
    while True:
        extra = f"-{counter}" if counter else ""
        candidate = path.with_name(f"{path.name}{BACKUP_MARK}{stamp}{extra}")
        try:
            os.close(os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        except FileExistsError:
            counter += 1
            continue
        return candidate


def _check_header(path: Path) -> None:
    try:
        with path.open("rb") as handle:
            header = handle.read(len(SQLITE_HEADER))
    except FileNotFoundError:
        return
    except OSError as exc:
        raise unreadable(path, exc.strerror or str(exc)) from exc
    if header and header != SQLITE_HEADER:
        raise unreadable(path, "the file is not an SQLite database")


def _migrate(conn: sqlite3.Connection, path: Path) -> None:
    version, app_id = _versions(conn)
    if version == SCHEMA_VERSION and app_id == APPLICATION_ID:
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        version, app_id = _versions(conn)  # another process may have migrated meanwhile
        tables = conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
        if app_id != APPLICATION_ID and (app_id != 0 or tables):
            raise unreadable(path, "it is an SQLite database of another program, not aicache's")
        if version > SCHEMA_VERSION:
            raise unreadable(
                path,
                f"it was written by a newer aicache (schema {version}, this one knows "
                f"{SCHEMA_VERSION}); upgrade aicache",
            )
        for script in MIGRATIONS[version:]:
            for statement in _statements(script):
                conn.execute(statement)
        conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def _statements(script: str) -> list[str]:
    """The statements of ``script``; a trigger's body, with its own semicolons, stays whole."""
    statements, pending = [], ""
    for piece in script.split(";"):
        pending += piece + ";"
        if sqlite3.complete_statement(pending):
            if pending.strip(" \n;"):
                statements.append(pending)
            pending = ""
    return statements


def _versions(conn: sqlite3.Connection) -> tuple[int, int]:
    version = int(conn.execute("PRAGMA user_version").fetchone()[0])
    app_id = int(conn.execute("PRAGMA application_id").fetchone()[0])
    return version, app_id


def _ensure_wal(conn: sqlite3.Connection) -> None:
    # Switching the journal mode ignores the busy handler, so retry by hand
    # when a fresh store is opened by several processes at once.
    deadline = time.monotonic() + BUSY_TIMEOUT_S
    while True:
        try:
            mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
            if str(mode).lower() != "wal":
                conn.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)
