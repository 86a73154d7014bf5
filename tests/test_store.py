from __future__ import annotations

import sqlite3
import stat
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest

from aicache.errors import StoreUnreadableError
from aicache.local.schema import APPLICATION_ID, SCHEMA_VERSION
from aicache.local.store import Store


def test_new_store_is_private_wal_and_current(home: Path) -> None:
    # Execute
    with Store.open(home) as store:
        mode = store.conn.execute("PRAGMA journal_mode").fetchone()[0]
        version = store.conn.execute("PRAGMA user_version").fetchone()[0]
        app_id = store.conn.execute("PRAGMA application_id").fetchone()[0]
        path = store.path
    # Assert
    assert mode == "wal"
    assert (version, app_id) == (SCHEMA_VERSION, APPLICATION_ID)
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_reopening_keeps_data(home: Path) -> None:
    with Store.open(home) as store:
        store.set_setting("raw-storage", "on")
    with Store.open(home) as store:
        assert store.get_setting("raw-storage") == "on"


def test_a_write_that_fails_leaves_nothing(home: Path) -> None:
    with Store.open(home) as store:
        with pytest.raises(RuntimeError), store.write() as conn:
            conn.execute("INSERT INTO settings VALUES ('a', 'b')")
            raise RuntimeError("crash mid-write")
        assert store.get_setting("a") is None


def _snapshot(path: Path) -> bytes:
    return path.read_bytes()


def test_a_file_that_is_not_sqlite_is_refused_and_left_alone(home: Path) -> None:
    # Prepare
    home.mkdir(mode=0o700)
    path = home / "store.db"
    path.write_bytes(b"this is not a database at all" * 100)
    before = _snapshot(path)
    # Execute / Assert
    with pytest.raises(StoreUnreadableError) as caught:
        Store.open(home)
    assert str(path) in caught.value.message
    assert "aicache doctor" in caught.value.hint
    assert _snapshot(path) == before


def test_another_programs_database_is_refused_and_left_alone(home: Path) -> None:
    # Prepare
    home.mkdir(mode=0o700)
    path = home / "store.db"
    with sqlite3.connect(path) as other:
        other.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY, amount REAL)")
        other.execute("INSERT INTO invoices (amount) VALUES (12.5)")
    other.close()
    before = _snapshot(path)
    # Execute / Assert
    with pytest.raises(StoreUnreadableError, match="another program"):
        Store.open(home)
    assert _snapshot(path) == before


def test_a_store_from_a_newer_version_is_refused(home: Path) -> None:
    with Store.open(home) as store:
        store.conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(StoreUnreadableError, match="newer aicache"):
        Store.open(home)


def test_a_truncated_store_is_refused(home: Path) -> None:
    with Store.open(home) as store:
        store.set_setting("x", "y" * 10000)
        path = store.path
    data = path.read_bytes()
    path.write_bytes(data[:100] + b"\x00" * 50 + data[150:2000])
    with pytest.raises(StoreUnreadableError), Store.open(home) as store:
        store.settings()


def _open_and_write(args: tuple[str, int]) -> str:
    home, index = args
    with Store.open(Path(home)) as store:
        store.set_setting(f"k{index}", "v")
        return str(store.conn.execute("PRAGMA journal_mode").fetchone()[0])


def test_many_processes_creating_the_store_at_once(home: Path) -> None:
    # Execute: eight processes race to create, migrate and write a fresh store.
    with ProcessPoolExecutor(max_workers=8) as pool:
        modes = list(pool.map(_open_and_write, [(str(home), i) for i in range(8)]))
    # Assert
    assert modes == ["wal"] * 8
    with Store.open(home) as store:
        assert {f"k{i}" for i in range(8)} <= set(store.settings())
