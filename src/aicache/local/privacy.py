"""GDPR-style controls: export everything kept, show what is kept, forget it all."""

from __future__ import annotations

import base64
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from aicache import __version__
from aicache.local.paths import federation_dir, models_dir, store_path
from aicache.local.schema import DATA_TABLES
from aicache.local.settings import Settings
from aicache.local.store import Store

EXPORT_FORMAT = "aicache-export"
EXPORT_VERSION = 1
# Columns that hold bytes: exported as text when they are UTF-8, else base64.
_BLOB_COLUMNS = frozenset({"stdout", "stderr"})


def _portable(column: str, value: object) -> object:
    if column in _BLOB_COLUMNS and isinstance(value, bytes):
        try:
            return {"text": value.decode("utf-8")}
        except UnicodeDecodeError:
            return {"base64": base64.b64encode(value).decode("ascii")}
    return value


def export_data(store: Store, home: Path) -> dict[str, object]:
    """Everything the store and the personal model state hold, as one JSON-ready document."""
    document: dict[str, object] = {
        "format": EXPORT_FORMAT,
        "format_version": EXPORT_VERSION,
        "aicache_version": __version__,
        "exported_at": time.time(),
        "store": str(store.path),
    }
    for table in DATA_TABLES:
        cursor = store.conn.execute(f"SELECT * FROM {table} ORDER BY rowid")
        columns = [d[0] for d in cursor.description]
        document[table] = [
            {c: _portable(c, v) for c, v in zip(columns, row, strict=True)} for row in cursor
        ]
    model_root = models_dir(home)
    document["models"] = [
        {"path": str(p.relative_to(model_root)), "bytes": p.stat().st_size}
        for p in sorted(model_root.rglob("*"))
        if p.is_file()
    ]
    return document


@dataclass(frozen=True, slots=True)
class KeptData:
    """One kind of data kept, how much, and for how long."""

    kind: str
    rows: int
    bytes: int
    oldest: float | None
    newest: float | None
    retention: str


def kept_data(store: Store) -> list[KeptData]:
    """What ``aicache privacy show`` reports."""
    settings = Settings.from_stored(store.settings())
    age = settings.describe()["max-age"]
    raw = "kept" if settings.raw_storage else "not kept (raw storage off)"
    queries = (
        (
            "cache entries (prompts and answers)",
            "SELECT count(*), coalesce(sum(length(stdout) + length(stderr) + length(argv)), 0), "
            "min(created_at), max(created_at) FROM cache_entries",
            f"pruned after {age}, or at their TTL",
        ),
        (
            "events (hashed keys and normalised tokens)",
            "SELECT count(*), coalesce(sum(length(tokens) + coalesce(length(raw_prompt), 0)), 0), "
            "min(ts), max(ts) FROM events",
            f"until erased; raw prompt text {raw}, and pruned after {age}",
        ),
        (
            "imported shell history (normalised tokens)",
            "SELECT count(*), coalesce(sum(length(program) + coalesce(length(raw), 0)), 0), "
            "min(ts), max(ts) FROM commands",
            f"until erased; raw command lines {raw}",
        ),
    )
    kept = []
    for kind, query, retention in queries:
        rows, size, oldest, newest = store.conn.execute(query).fetchone()
        kept.append(KeptData(kind, int(rows), int(size), oldest, newest, retention))
    return kept


def forget(home: Path) -> list[Path]:
    """Erase the store (with its WAL files) and all personal model state under ``home``.

    Returns the paths removed. Shims installed by ``aicache wrap`` stay: they
    hold no personal data.
    """
    removed = []
    db = store_path(home)
    for path in (db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")):
        if path.exists():
            path.unlink()
            removed.append(path)
    models = models_dir(home)
    if models.exists():
        shutil.rmtree(models)
        removed.append(models)
    # A joined node's features extracted from the store (its key and bundle stay:
    # they are the federation's, not the user's data).
    examples = federation_dir(home) / "examples"
    if examples.exists():
        shutil.rmtree(examples)
        removed.append(examples)
    return removed
