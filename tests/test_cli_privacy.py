"""GDPR-style controls through the real CLI."""

from __future__ import annotations

import json
import sqlite3
import stat
from pathlib import Path

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


def _damage_an_index_page(path: Path) -> None:
    """Overwrite one index page: the file stays recognisably aicache's, doctor calls it broken."""
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        root = conn.execute(
            "SELECT rootpage FROM sqlite_master WHERE name = 'cache_entries_created'"
        ).fetchone()[0]
        page_size = conn.execute("PRAGMA page_size").fetchone()[0]
    conn.close()
    data = bytearray(path.read_bytes())
    data[(root - 1) * page_size : root * page_size] = b"\xff" * page_size
    path.write_bytes(bytes(data))


def _files_holding(root: Path, needle: bytes) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and needle in p.read_bytes()]


def test_forget_erases_the_copies_doctor_kept(cli: Cli) -> None:
    # Prepare: a prompt in the store, a repair that keeps the damaged file aside,
    # a node's feature cache and inbox, and the federation's own files
    prompt = b"prompt-about-the-quarterly-layoffs"
    assert cli.run("run", "--", "fake-ai", prompt.decode()).returncode == 0
    _damage_an_index_page(cli.home / "store.db")
    assert cli.run("doctor", "--repair").returncode == 0
    assert list(cli.home.glob("store.db.broken-*"))
    assert _files_holding(cli.home, prompt)
    checked = cli.run("doctor")
    assert checked.returncode == 0 and b"kept by an earlier repair" in checked.stdout
    federation = cli.home / "federation"
    (federation / "examples").mkdir(parents=True)
    (federation / "examples" / "abc.npz").write_bytes(b"features")
    (federation / "inbox").mkdir()
    (federation / "inbox" / "next-command-v3.json").write_bytes(b"{}")
    (federation / "bundle.json").write_text("{}")
    (federation / "sent.jsonl").write_text("{}\n")
    # Execute
    forgotten = cli.run("privacy", "forget", "--yes")
    # Assert
    assert forgotten.returncode == 0, forgotten.stderr
    report = forgotten.stdout.decode().replace("\n", " ")
    assert "store.db.broken-" in report and "doctor --repair" in report
    assert "examples" in report and "inbox" in report
    assert _files_holding(cli.home, prompt) == []
    assert not list(cli.home.glob("store.db*"))
    assert not (federation / "examples").exists() and not (federation / "inbox").exists()
    assert (federation / "bundle.json").exists() and (federation / "sent.jsonl").exists()


def test_forget_refuses_a_file_that_is_not_an_aicache_store(cli: Cli) -> None:
    # Prepare: a garbage file moved aside by repair, and a store in use
    cli.home.mkdir(mode=0o700)
    garbage = b"not sqlite at all " * 50
    (cli.home / "store.db").write_bytes(garbage)
    assert cli.run("doctor", "--repair").returncode == 0
    assert cli.run("run", "--", "fake-ai", "x").returncode == 0
    before = sorted(p.name for p in cli.home.iterdir())
    # Execute
    refused = cli.run("privacy", "forget", "--yes")
    # Assert: nothing erased, the file named
    assert refused.returncode == 2
    assert b"store.db.broken-" in refused.stderr and b"not an SQLite database" in refused.stderr
    assert b"--force" in refused.stderr and b"Traceback" not in refused.stderr
    assert sorted(p.name for p in cli.home.iterdir()) == before
    assert json.loads(cli.run("stats", "--json").stdout)["total"]["calls"] == 1
    # Execute: told to
    forced = cli.run("privacy", "forget", "--yes", "--force")
    # Assert
    assert forced.returncode == 0, forced.stderr
    assert not list(cli.home.glob("store.db*"))


def test_forget_leaves_another_programs_database_alone(cli: Cli) -> None:
    cli.home.mkdir(mode=0o700)
    path = cli.home / "store.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE photos (id INTEGER PRIMARY KEY)")
    conn.close()
    before = path.read_bytes()
    refused = cli.run("privacy", "forget", "--yes")
    assert refused.returncode == 2
    assert b"another program" in refused.stderr
    assert path.read_bytes() == before


def test_forget_erases_the_registry_only_when_asked(cli: Cli) -> None:
    cli.run("run", "--", "fake-ai", "x")
    registry, simulations = cli.home / "registry", cli.home / "simulations"
    for folder in (registry, simulations):
        folder.mkdir()
        (folder / "registry.db").write_bytes(b"models")
    assert cli.run("privacy", "forget", "--yes").returncode == 0
    assert registry.exists() and simulations.exists()
    erased = cli.run("privacy", "forget", "--yes", "--registry")
    assert erased.returncode == 0 and b"model registry" in erased.stdout
    assert b"registry of your simulations" in erased.stdout
    assert not registry.exists() and not simulations.exists()
