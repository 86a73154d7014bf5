"""Everyday use of the cache through the real CLI: racing misses, a damaged store's
statistics, and turning raw storage off."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest

from tests.conftest import Cli

pytestmark = pytest.mark.e2e


def test_identical_misses_started_together_run_the_tool_once(cli: Cli) -> None:
    # Execute: two identical calls, the second started while the first is thinking.
    first = cli.popen("run", "--", "fake-ai", "same question", FAKE_AI_DELAY="3")
    deadline = time.monotonic() + 30
    while cli.invocations() == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    second = cli.popen("run", "--", "fake-ai", "same question", FAKE_AI_DELAY="3")
    out_first, _ = first.communicate(timeout=60)
    out_second, err_second = second.communicate(timeout=60)
    # Assert: the second waited for the first's answer instead of starting the tool.
    assert first.returncode == second.returncode == 0, err_second
    assert b"Answer to: same question" in out_first
    assert out_second == out_first
    assert cli.invocations() == 1
    with sqlite3.connect(cli.home / "store.db") as conn:
        outcomes = sorted(row[0] for row in conn.execute("SELECT outcome FROM events"))
    conn.close()
    assert outcomes == ["hit", "miss"]
    assert not list((cli.home / "locks").iterdir()), "a lock file outlived its run"


def _damage_entries(path: Path) -> None:
    """Overwrite the root page of the cache entries' key index, as a disk fault would."""
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        root = conn.execute(
            "SELECT rootpage FROM sqlite_master WHERE name = 'sqlite_autoindex_cache_entries_1'"
        ).fetchone()[0]
        page_size = conn.execute("PRAGMA page_size").fetchone()[0]
    conn.close()
    data = bytearray(path.read_bytes())
    start = (root - 1) * page_size
    data[start : start + page_size] = b"\xff" * page_size
    path.write_bytes(bytes(data))


def test_stats_refuses_a_store_that_run_refuses(cli: Cli) -> None:
    # Prepare: a store with answers and events, then a damaged key index.
    for index in range(5):
        assert cli.run("run", "--", "fake-ai", f"q{index}", FAKE_AI_DELAY="0").returncode == 0
    _damage_entries(cli.home / "store.db")
    refused = cli.run("run", "--", "fake-ai", "q1", FAKE_AI_DELAY="0")
    assert b"running without the cache" in refused.stderr
    # Execute
    stats = cli.run("stats")
    # Assert: the same verdict, with the way out, and no numbers
    message = stats.stderr.decode()
    assert stats.returncode == 2, stats.stdout
    assert "cannot be used" in message and "aicache doctor" in message
    assert stats.stdout == b""


def test_turning_raw_storage_off_erases_the_raw_text_kept_so_far(cli: Cli, tmp_path: Path) -> None:
    # Prepare: raw storage on, a prompt and an imported command line kept raw.
    assert cli.run("config", "set", "raw-storage", "on").returncode == 0
    # (--no-store: the fake tool's answer repeats the prompt, and answers are not raw text)
    assert cli.run("run", "--no-store", "--", "fake-ai", "zebra-secret-prompt").returncode == 0
    history = tmp_path / "history"
    history.write_text("grep zebra-secret-line notes.txt\nls\n")
    imported = cli.run("import", "history", str(history), "--shell", "bash")
    assert imported.returncode == 0, imported.stderr
    store = cli.home / "store.db"
    with sqlite3.connect(store) as conn:
        assert conn.execute("SELECT count(*) FROM events WHERE raw_prompt IS NOT NULL").fetchone()[
            0
        ]
        assert conn.execute("SELECT count(*) FROM commands WHERE raw IS NOT NULL").fetchone()[0]
    conn.close()
    # Execute
    turned = cli.run("config", "set", "raw-storage", "off")
    # Assert: it said so, and neither text is left anywhere in the store's files.
    assert turned.returncode == 0, turned.stderr
    said = " ".join(turned.stdout.decode().split())
    assert "erasing the raw text kept so far (1 prompt(s), 2 imported command line(s))" in said
    with sqlite3.connect(store) as conn:
        assert conn.execute(
            "SELECT count(*) FROM events WHERE raw_prompt IS NOT NULL"
        ).fetchone() == (0,)
        assert conn.execute("SELECT count(*) FROM commands WHERE raw IS NOT NULL").fetchone() == (
            0,
        )
    conn.close()
    for path in cli.home.glob("store.db*"):
        content = path.read_bytes()
        assert b"zebra-secret-prompt" not in content, path
        assert b"zebra-secret-line" not in content, path
    again = cli.run("config", "set", "raw-storage", "off")
    assert b"erasing" not in again.stdout
