"""GDPR-style controls through the real CLI."""

from __future__ import annotations

import json
import stat

import pytest

from tests.conftest import Cli

pytestmark = pytest.mark.e2e


def test_export_then_forget_then_export_shows_nothing(cli: Cli) -> None:
    # Prepare
    cli.run("run", "--", "fake-ai", "what is a monad")
    history = cli.cwd / "history"
    history.write_text("git status\nmake test\n")
    cli.run("import", "history", "--shell", "bash", str(history))
    (cli.home / "models").mkdir()
    (cli.home / "models" / "personal.npz").write_bytes(b"weights")
    # Execute
    before = json.loads(cli.run("privacy", "export").stdout)
    forgotten = cli.run("privacy", "forget", "--yes")
    after = json.loads(cli.run("privacy", "export").stdout)
    stats = json.loads(cli.run("stats", "--json").stdout)
    # Assert
    assert before["format"] == "aicache-export"
    assert before["cache_entries"][0]["stdout"]["text"].startswith("Answer to: what is a monad")
    assert len(before["events"]) == 1
    assert [c["program"] for c in before["commands"]] == ["git", "make"]
    assert before["models"] == [{"path": "personal.npz", "bytes": 7}]
    assert forgotten.returncode == 0
    for table in ("cache_entries", "events", "commands", "imports", "models"):
        assert after[table] == [], table
    assert stats["total"]["calls"] == 0 and stats["entries"] == 0


def test_export_to_a_file_is_private(cli: Cli) -> None:
    cli.run("run", "--", "fake-ai", "x")
    target = cli.cwd / "me.json"
    result = cli.run("privacy", "export", "-o", str(target))
    assert result.returncode == 0
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert json.loads(target.read_text())["events"][0]["tool"] == "fake-ai"


def test_forget_asks_and_refuses_without_a_terminal(cli: Cli) -> None:
    cli.run("run", "--", "fake-ai", "x")
    result = cli.run("privacy", "forget")
    assert result.returncode == 2
    assert b"--yes" in result.stderr
    assert json.loads(cli.run("stats", "--json").stdout)["total"]["calls"] == 1


def test_show_reports_what_is_kept_and_for_how_long(cli: Cli) -> None:
    cli.run("run", "--", "fake-ai", "x")
    cli.run("config", "set", "max-age", "10d")
    shown = json.loads(cli.run("privacy", "show", "--json").stdout)
    kinds = {k["kind"].split(" (")[0]: k for k in shown["kept"]}
    assert kinds["cache entries"]["rows"] == 1
    assert "10d" in kinds["cache entries"]["retention"]
    assert kinds["events"]["rows"] == 1
    assert shown["settings"]["raw-storage"] == "off"


def test_prune_drops_prompts_and_answers_past_the_window(cli: Cli) -> None:
    cli.run("run", "--", "fake-ai", "old question")
    import sqlite3

    with sqlite3.connect(cli.home / "store.db") as conn:
        conn.execute("UPDATE cache_entries SET created_at = created_at - 40 * 86400")
    conn.close()
    cli.run("run", "--", "fake-ai", "new question")
    result = cli.run("prune")
    assert result.returncode == 0
    listed = json.loads(cli.run("list", "--json").stdout)
    assert [e["argv"][1] for e in listed] == ["new question"]


def test_config_rejects_unknown_settings_and_values(cli: Cli) -> None:
    unknown = cli.run("config", "set", "colour", "blue")
    bad = cli.run("config", "set", "max-age", "forever")
    assert unknown.returncode == bad.returncode == 2
    assert b"unknown setting 'colour'" in unknown.stderr
    assert b"'forever'" in bad.stderr
