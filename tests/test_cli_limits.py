"""Out-of-range input and hostile paths get one clear error, never a traceback."""

from __future__ import annotations

import json
import os
import sqlite3

import pytest

from tests.conftest import Cli

pytestmark = pytest.mark.e2e


def test_a_huge_ttl_is_refused_naming_the_maximum(cli: Cli) -> None:
    # Prepare / Execute
    result = cli.run("run", "--ttl", "999999999999999999999999w", "--", "fake-ai", "hi")
    # Assert
    assert result.returncode == 2
    assert b"Traceback" not in result.stderr
    assert b"longest accepted is 5200w" in result.stderr
    assert cli.invocations() == 0


def test_a_stored_infinite_expiry_does_not_break_list_or_inspect(cli: Cli) -> None:
    # Prepare: an entry whose expiry an older aicache stored as inf, and one far past year 9999
    assert cli.run("run", "--", "fake-ai", "first").returncode == 0
    assert cli.run("run", "--", "fake-ai", "second").returncode == 0
    with sqlite3.connect(cli.home / "store.db") as conn:
        keys = [k for (k,) in conn.execute("SELECT key FROM cache_entries ORDER BY key")]
        conn.execute("UPDATE cache_entries SET expires_at = ? WHERE key = ?", (1e400, keys[0]))
        conn.execute("UPDATE cache_entries SET expires_at = ? WHERE key = ?", (6.048e29, keys[1]))
    conn.close()
    # Execute
    listed = cli.run("list")
    as_json = cli.run("list", "--json")
    inspected = [cli.run("inspect", key[:12]) for key in keys]
    # Assert
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.count(b"never") == 2
    assert as_json.returncode == 0, as_json.stderr
    entries = json.loads(as_json.stdout)  # strict JSON: Infinity would not parse below
    json.loads(as_json.stdout, parse_constant=lambda name: pytest.fail(f"not JSON: {name}"))
    assert [e["expires_at"] for e in entries] == [None, None]
    for result in inspected:
        assert result.returncode == 0, result.stderr
        assert b"never" in result.stdout
    # the entries still serve hits
    assert cli.run("run", "--", "fake-ai", "first").returncode == 0
    assert cli.invocations() == 2


def test_a_home_that_is_a_file_gets_one_clear_error_everywhere(cli: Cli) -> None:
    # Prepare
    home_file = cli.home.parent / "not-a-directory"
    home_file.write_text("keep me\n")
    bad = str(home_file)
    # Execute
    models = cli.run("models", "list", AICACHE_HOME=bad)
    listed = cli.run("list", AICACHE_HOME=bad)
    shown = cli.run("privacy", "show", AICACHE_HOME=bad)
    doctor = cli.run("doctor", AICACHE_HOME=bad)
    ran = cli.run("run", "--", "fake-ai", "hi", AICACHE_HOME=bad)
    # Assert
    for result in (models, listed, shown):
        assert result.returncode == 2, result.stderr
        assert b"Traceback" not in result.stderr
        assert b"is a file, not a directory" in result.stderr
        assert b"AICACHE_HOME" in result.stderr
    assert doctor.returncode == 1
    assert b"problem" in doctor.stdout and b"is a file, not a directory" in doctor.stdout
    assert ran.returncode == 0 and b"Answer to: hi" in ran.stdout
    assert b"running without the cache" in ran.stderr
    assert home_file.read_text() == "keep me\n"


def test_a_store_linked_to_another_file_is_not_written_through(cli: Cli) -> None:
    # Prepare: the store path is a link to a file that is not aicache's to write
    victim = cli.home.parent / "victim.db"
    victim.write_bytes(b"")
    cli.home.mkdir(mode=0o700)
    (cli.home / "store.db").symlink_to(victim)
    # Execute
    ran = cli.run("run", "--", "fake-ai", "my private prompt")
    listed = cli.run("list")
    doctor = cli.run("doctor")
    # Assert
    assert ran.returncode == 0 and b"running without the cache" in ran.stderr
    assert listed.returncode == 2 and b"symbolic link" in listed.stderr
    assert b"Traceback" not in listed.stderr
    assert doctor.returncode == 1 and b"symbolic link" in doctor.stdout
    assert victim.read_bytes() == b""
    assert not (cli.home / "store.db-wal").exists()


def test_a_wal_file_linked_elsewhere_is_refused(cli: Cli) -> None:
    # Prepare: a working store whose write-ahead log is then replaced by a link
    assert cli.run("run", "--", "fake-ai", "first").returncode == 0
    victim = cli.home.parent / "victim-wal"
    victim.write_bytes(b"")
    wal = cli.home / "store.db-wal"
    wal.unlink(missing_ok=True)
    wal.symlink_to(victim)
    # Execute
    ran = cli.run("run", "--", "fake-ai", "second")
    # Assert
    assert ran.returncode == 0 and b"symbolic link" in ran.stderr
    assert victim.read_bytes() == b""


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a file to another user needs root")
def test_a_store_owned_by_another_user_is_refused(cli: Cli) -> None:
    # Prepare
    assert cli.run("run", "--", "fake-ai", "first").returncode == 0
    store = cli.home / "store.db"
    before = store.read_bytes()
    os.chown(store, 65534, 65534)
    # Execute
    ran = cli.run("run", "--", "fake-ai", "second")
    # Assert
    assert ran.returncode == 0 and b"belongs to another user" in ran.stderr
    assert store.read_bytes() == before


def test_a_max_age_stored_before_durations_were_bounded_still_works(cli: Cli) -> None:
    # Prepare: a setting an older aicache accepted
    assert cli.run("run", "--", "fake-ai", "first").returncode == 0
    with sqlite3.connect(cli.home / "store.db") as conn:
        conn.execute("INSERT OR REPLACE INTO settings VALUES ('max-age', '99999999999w')")
    conn.close()
    # Execute
    ran = cli.run("run", "--", "fake-ai", "second")
    shown = cli.run("config", "show")
    refused = cli.run("config", "set", "max-age", "99999999999w")
    # Assert
    assert ran.returncode == 0, ran.stderr
    assert shown.returncode == 0 and b"5200w" in shown.stdout
    assert refused.returncode == 2 and b"longest accepted is 5200w" in refused.stderr
