"""GDPR-style controls: export everything kept, show what is kept, forget it all."""

from __future__ import annotations

import base64
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from aicache import __version__
from aicache.errors import AicacheError
from aicache.local import semantic_client
from aicache.local.home_key import KEY_FILENAME, forget_loaded
from aicache.local.paths import (
    FEDERATION_DIRNAME,
    MODELS_DIRNAME,
    REGISTRY_DIRNAME,
    SIMULATIONS_DIRNAME,
    check_home,
    models_dir,
    store_path,
)
from aicache.local.schema import APPLICATION_ID, DATA_TABLES
from aicache.local.settings import Settings
from aicache.local.store import (
    BACKUP_MARK,
    SIDECAR_KINDS,
    SQLITE_HEADER,
    Store,
    is_sidecar,
    sidecars,
    store_backups,
)

EXPORT_FORMAT = "aicache-export"
EXPORT_VERSION = 1
# Columns that hold bytes: exported as text when they are UTF-8, else base64.
_BLOB_COLUMNS = frozenset({"stdout", "stderr", "vector"})


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
        (
            "semantic index (cached prompts and their sentence vectors)",
            "SELECT count(*), coalesce(sum(length(prompt) + length(vector)), 0), "
            "min(created_at), max(created_at) FROM semantic_entries",
            "as long as their cache entry",
        ),
        (
            "semantic-hit feedback (question, cached prompt, score, right or wrong)",
            "SELECT count(*), coalesce(sum(length(query_prompt) + length(cached_prompt)), 0), "
            "min(ts), max(ts) FROM semantic_feedback",
            f"pruned after {age}",
        ),
    )
    kept = []
    for kind, query, retention in queries:
        rows, size, oldest, newest = store.conn.execute(query).fetchone()
        kept.append(KeptData(kind, int(rows), int(size), oldest, newest, retention))
    return kept


# What forget erases besides the store files, under the home: everything that
# was derived from the user's data, and the deliveries waiting for ``models pull``.
# The federation's bundle, keys and ``sent.jsonl`` (the record of what already
# left this machine, which the privacy report needs) stay, as does the model
# registry unless asked: it holds global models, none of the store's rows.
_DERIVED = (
    (MODELS_DIRNAME, "personal model state"),
    (f"{FEDERATION_DIRNAME}/examples", "features extracted from your history"),
    (f"{FEDERATION_DIRNAME}/inbox", "models delivered and not yet pulled"),
    # The key of every hash in the store: without it, a copy of the old store's
    # hashes can no longer be linked to anything hashed from now on.
    (KEY_FILENAME, "key of the hashes in the store"),
)


@dataclass(frozen=True, slots=True)
class Erased:
    """One file or directory ``forget`` removed, and what it held."""

    path: Path
    what: str


def store_copies(home: Path) -> list[Path]:
    """The store and every copy of it aicache made: ``doctor --repair``'s backups.

    Each comes with its SQLite sidecars (write-ahead log, shared memory, journal)
    when they exist; links are listed as links (erasing one never touches its target).
    """
    db = store_path(home)
    mains = [db] if os.path.lexists(db) else []
    mains += store_backups(db)
    copies = []
    for main in mains:
        copies += [main, *(s for s in sidecars(main) if os.path.lexists(s))]
    for orphan in sorted(home.glob(f"{db.name}*")) if home.is_dir() else []:
        if orphan not in copies and is_sidecar(orphan):
            copies.append(orphan)  # a log left after its database went
    return copies


def not_aicache_store(path: Path) -> str | None:
    """Why ``path`` is not recognisably an aicache store file, or ``None`` when it is one.

    Recognised: an empty file (a store not written yet), an SQLite database
    marked with aicache's application id, a link (only the link is erased) and
    the sidecar files of those. Anything else might be another program's data.
    """
    if path.is_symlink() or is_sidecar(path):
        return None
    try:
        with path.open("rb") as handle:
            header = handle.read(100)
    except OSError as exc:
        return f"it cannot be read ({exc.strerror or exc})"
    if not header:
        return None
    if not header.startswith(SQLITE_HEADER) or len(header) < 72:
        return "it is not an SQLite database"
    if int.from_bytes(header[68:72], "big") != APPLICATION_ID:
        return "it is an SQLite database of another program"
    return None


def forget(home: Path, *, force: bool = False, registry: bool = False) -> list[Erased]:
    """Erase the store, every copy of it, and all personal state derived from it.

    Parameters
    ----------
    home
        The aicache home.
    force
        Also erase store files that are not recognisably aicache's.
    registry
        Also erase the model registry under ``home`` and the registry of
        simulations run without ``--registry``.

    Returns
    -------
    list of Erased
        What was removed. Shims installed by ``aicache wrap`` stay: they hold
        no personal data.

    Raises
    ------
    AicacheError
        Before erasing anything, when a store file is not an aicache store
        and ``force`` is not given.
    """
    check_home(home)
    # The semantic service holds the store open and its prompts' vectors in memory:
    # an erased store must not live on in it. Stopped first, as its closing removes
    # the store's log files.
    semantic_client.stop(home)
    copies = store_copies(home)
    foreign = [(p, why) for p in copies if (why := not_aicache_store(p))]
    if foreign and not force:
        listed = "; ".join(f"{p}: {why}" for p, why in foreign)
        raise AicacheError(
            f"not erasing: {listed}",
            hint=(
                "Nothing was erased. Check these files; if they are yours to erase (a store "
                "too damaged to recognise, moved aside by `aicache doctor --repair`), run "
                "`aicache privacy forget --force`."
            ),
        )
    erased = [Erased(p, _describe(p)) for p in copies]
    for path in copies:
        path.unlink()
    targets = list(_DERIVED)
    if registry:
        targets.append((REGISTRY_DIRNAME, "model registry"))
        targets.append((SIMULATIONS_DIRNAME, "registry of your simulations"))
    for relative, what in targets:
        path = home / relative
        if path.is_symlink() or path.is_file():
            path.unlink()
        elif path.exists():
            shutil.rmtree(path)
        else:
            continue
        erased.append(Erased(path, what))
    forget_loaded()
    return erased


def _describe(path: Path) -> str:
    name = path.name
    for suffix, what in SIDECAR_KINDS:
        if name.endswith(suffix):
            return f"store {what}"
    if BACKUP_MARK in name:
        return "store copy kept by doctor --repair"
    return "store (cache entries, events, imported history, semantic index and feedback, settings)"
