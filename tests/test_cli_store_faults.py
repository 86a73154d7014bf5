"""A corrupt or foreign store: clear errors, nothing lost, a way out."""

from __future__ import annotations

import json
import sqlite3
import time

import pytest

from tests.conftest import Cli

pytestmark = pytest.mark.e2e


def _corrupt(cli: Cli) -> bytes:
    cli.home.mkdir(mode=0o700, exist_ok=True)
    garbage = b"\x13\x37 definitely not sqlite " * 200
    (cli.home / "store.db").write_bytes(garbage)
    return garbage


def test_commands_name_the_file_and_the_way_out(cli: Cli) -> None:
    # Prepare
    garbage = _corrupt(cli)
    for args in (("stats",), ("list",), ("privacy", "export"), ("import", "history", "/dev/null")):
        # Execute
        result = cli.run(*args)
        # Assert
        assert result.returncode == 2, args
        message = result.stderr.decode()
        assert str(cli.home / "store.db") in message.replace("\n", "")
        assert "aicache doctor" in message
        assert "Traceback" not in message
    assert (cli.home / "store.db").read_bytes() == garbage


def test_run_still_runs_the_command_and_warns(cli: Cli) -> None:
    garbage = _corrupt(cli)
    result = cli.run("run", "--", "fake-ai", "hello")
    assert result.returncode == 0
    assert b"Answer to: hello" in result.stdout
    assert b"running without the cache" in result.stderr
    assert (cli.home / "store.db").read_bytes() == garbage


def test_doctor_reports_then_repair_keeps_a_backup(cli: Cli) -> None:
    garbage = _corrupt(cli)
    check = cli.run("doctor")
    assert check.returncode == 1
    assert b"not an SQLite database" in check.stdout
    repaired = cli.run("doctor", "--repair")
    assert repaired.returncode == 0, repaired.stderr
    backups = list(cli.home.glob("store.db.broken-*"))
    assert len(backups) == 1 and backups[0].read_bytes() == garbage
    assert cli.run("doctor").returncode == 0
    assert json.loads(cli.run("stats", "--json").stdout)["total"]["calls"] == 0


def test_repair_salvages_the_readable_rows_of_a_damaged_store(cli: Cli) -> None:
    # Prepare: a store with entries, then damage one page of the entries table's index.
    for index in range(20):
        cli.run("run", "--", "fake-ai", f"question {index}", FAKE_AI_DELAY="0")
    path = cli.home / "store.db"
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        root = conn.execute(
            "SELECT rootpage FROM sqlite_master WHERE name = 'cache_entries_created'"
        ).fetchone()[0]
        page_size = conn.execute("PRAGMA page_size").fetchone()[0]
    conn.close()
    data = bytearray(path.read_bytes())
    start = (root - 1) * page_size
    data[start : start + page_size] = b"\xff" * page_size
    path.write_bytes(bytes(data))
    assert cli.run("doctor").returncode == 1
    # Execute
    repaired = cli.run("doctor", "--repair")
    # Assert
    assert repaired.returncode == 0, repaired.stderr
    listed = json.loads(cli.run("list", "--json").stdout)
    assert len(listed) == 20
    assert cli.run("doctor").returncode == 0


def test_a_foreign_database_is_not_touched(cli: Cli) -> None:
    cli.home.mkdir(mode=0o700)
    path = cli.home / "store.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE photos (id INTEGER PRIMARY KEY)")
    conn.close()
    before = path.read_bytes()
    result = cli.run("stats")
    assert result.returncode == 2
    assert b"another program" in result.stderr
    assert path.read_bytes() == before


def test_repair_never_overwrites_an_earlier_backup_and_moves_the_journal(cli: Cli) -> None:
    # Prepare: backups named for this second and the next minute already exist (a repair
    # earlier in the same second), and the damaged store has a rollback journal beside it.
    garbage = _corrupt(cli)
    (cli.home / "store.db-journal").write_bytes(b"journal of the damaged store")
    now = time.time()
    earlier = [
        cli.home / f"store.db.broken-{time.strftime('%Y%m%d-%H%M%S', time.localtime(now + s))}"
        for s in range(60)
    ]
    for backup in earlier:
        backup.write_bytes(b"an earlier backup")
    # Execute
    repaired = cli.run("doctor", "--repair")
    # Assert: every earlier backup is intact; the new one holds the store and its journal.
    assert repaired.returncode == 0, repaired.stderr
    assert all(b.read_bytes() == b"an earlier backup" for b in earlier)
    new = [
        b
        for b in cli.home.glob("store.db.broken-*")
        if b not in earlier and not b.name.endswith("-journal")
    ]
    assert len(new) == 1 and new[0].read_bytes() == garbage
    moved = new[0].with_name(new[0].name + "-journal")
    assert moved.read_bytes() == b"journal of the damaged store"
    assert not (cli.home / "store.db-journal").exists()
