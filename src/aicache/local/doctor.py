"""``aicache doctor``: check the store, and salvage what is readable from a broken one.

Repair never deletes: the broken file is renamed aside (``store.db.broken-<time>``)
and the rows that can still be read are copied into a fresh store.
"""

from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

from aicache.errors import StoreUnreadableError
from aicache.local import semantic_client
from aicache.local.paths import check_home, store_path
from aicache.local.schema import APPLICATION_ID, DATA_TABLES, SCHEMA_VERSION
from aicache.local.store import (
    SQLITE_HEADER,
    Store,
    check_own_files,
    new_backup_path,
    sidecars,
    store_backups,
)


@dataclass(frozen=True, slots=True)
class Finding:
    """One result of a check: ``ok``, ``warning`` or ``problem``."""

    level: str
    message: str


def diagnose(home: Path) -> list[Finding]:
    """Check the store under ``home`` without changing anything."""
    try:
        check_home(home)
        path = store_path(home)
        if not os.path.lexists(path):
            return [Finding("ok", f"no store yet at {path}; it is created on first use")]
        check_own_files(path)
    except StoreUnreadableError as exc:
        return [Finding("problem", exc.message)]
    findings = [*_permission_findings(home, path), *_backup_findings(path)]
    try:
        header = path.read_bytes()[: len(SQLITE_HEADER)]
    except OSError as exc:
        return [*findings, Finding("problem", f"{path} cannot be read: {exc}")]
    if header and header != SQLITE_HEADER:
        return [*findings, Finding("problem", f"{path} is not an SQLite database")]
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            app_id = conn.execute("PRAGMA application_id").fetchone()[0]
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            integrity = [r[0] for r in conn.execute("PRAGMA integrity_check")]
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        return [*findings, Finding("problem", f"{path} cannot be read by SQLite: {exc}")]
    if app_id != APPLICATION_ID:
        findings.append(Finding("problem", f"{path} is an SQLite database of another program"))
    elif version > SCHEMA_VERSION:
        findings.append(Finding("problem", f"{path} has schema {version}, newer than this aicache"))
    else:
        findings.append(Finding("ok", f"{path} is an aicache store (schema {version})"))
    if integrity != ["ok"]:
        findings.append(Finding("problem", "integrity check failed: " + "; ".join(integrity[:5])))
    else:
        findings.append(Finding("ok", "integrity check passed"))
    return findings


def _backup_findings(path: Path) -> list[Finding]:
    # A repair's backup keeps whatever the store held, prompts included, until erased.
    return [
        Finding(
            "warning",
            f"{backup} is a copy kept by an earlier repair and may hold old prompts and "
            "answers; delete it once you no longer need it (`aicache privacy forget` erases "
            "it with the store)",
        )
        for backup in store_backups(path)
    ]


def _permission_findings(home: Path, path: Path) -> list[Finding]:
    findings = []
    for target, wanted in ((home, 0o700), (path, 0o600)):
        mode = target.stat().st_mode & 0o777
        if mode & 0o077:
            findings.append(
                Finding(
                    "warning", f"{target} has mode {mode:o}; others can read it (want {wanted:o})"
                )
            )
    return findings


@dataclass
class RepairResult:
    """What a repair did."""

    backup: Path | None = None
    salvaged: dict[str, int] = field(default_factory=dict)
    lost_tables: list[str] = field(default_factory=list)
    fixed_permissions: bool = False


def repair(home: Path) -> RepairResult:
    """Make the store under ``home`` usable again, keeping the old file as a backup."""
    result = RepairResult()
    check_home(home)  # a home that is a file is the user's to move: nothing to salvage
    path = store_path(home)
    if not any(f.level == "problem" for f in diagnose(home)):
        if path.exists():
            home.chmod(0o700)
            path.chmod(0o600)
            result.fixed_permissions = True
        return result
    # The semantic service holds the store open: it would go on reading the moved file.
    semantic_client.stop(home)
    backup = new_backup_path(path)
    path.rename(backup)
    # Every sidecar goes with it: a journal or log left behind would be applied
    # to (or block) the fresh store, and the backup needs it to be read whole.
    for sidecar, moved in zip(sidecars(path), sidecars(backup), strict=True):
        if os.path.lexists(sidecar):
            sidecar.rename(moved)
    result.backup = backup
    with Store.open(home) as fresh:
        _salvage(backup, fresh, result)
    return result


def _salvage(backup: Path, fresh: Store, result: RepairResult) -> None:
    try:
        old = sqlite3.connect(f"file:{backup}?mode=ro", uri=True)
        if old.execute("PRAGMA application_id").fetchone()[0] != APPLICATION_ID:
            old.close()
            result.lost_tables = ["(another program's database: nothing copied)"]
            return
    except sqlite3.DatabaseError:
        result.lost_tables = list(DATA_TABLES)
        return
    with old:
        for table in DATA_TABLES:
            try:
                result.salvaged[table] = _copy_table(old, fresh, table)
            except sqlite3.DatabaseError:
                result.lost_tables.append(table)
    old.close()


def _copy_table(old: sqlite3.Connection, fresh: Store, table: str) -> int:
    wanted = [r[1] for r in fresh.conn.execute(f"PRAGMA table_info({table})")]
    present = {r[1] for r in old.execute(f"PRAGMA table_info({table})")}
    columns = [c for c in wanted if c in present]
    if not columns:
        raise sqlite3.DatabaseError(f"table {table} is missing")
    names = ", ".join(columns)
    marks = ", ".join("?" for _ in columns)
    copied = 0
    cursor = old.execute(f"SELECT {names} FROM {table}")
    with fresh.write() as conn:
        while True:
            try:
                row = cursor.fetchone()
            except sqlite3.DatabaseError:
                break  # the rest of this table is unreadable
            if row is None:
                break
            conn.execute(f"INSERT OR IGNORE INTO {table} ({names}) VALUES ({marks})", row)
            copied += 1
    return copied


__all__ = ["Finding", "RepairResult", "StoreUnreadableError", "diagnose", "repair"]
