"""Importing real shell usage through the CLI."""

from __future__ import annotations

import sqlite3

import pytest

from aicache.local.history import parse_greenberg, read_text
from tests.conftest import Cli, shared_data

pytestmark = pytest.mark.e2e


def commands(cli: Cli) -> list[tuple[str, str | None, int | None]]:
    with sqlite3.connect(cli.home / "store.db") as conn:
        rows = conn.execute("SELECT program, subcommand, failed FROM commands ORDER BY seq")
        result = [(str(p), s, f) for p, s, f in rows]
    conn.close()
    return result


def test_bash_history_import_is_idempotent(cli: Cli) -> None:
    history = cli.cwd / "bash_history"
    history.write_text("#1700000000\ngit commit -m 'secret'\nls -la\n\n")
    first = cli.run("import", "history", "--shell", "bash", str(history))
    second = cli.run("import", "history", "--shell", "bash", str(history))
    assert first.returncode == second.returncode == 0
    assert b"Imported 2 commands" in first.stdout
    assert b"Imported 0 commands" in second.stdout
    assert commands(cli) == [("git", "commit", None), ("ls", None, None)]


def test_default_history_file_comes_from_the_shell(cli: Cli) -> None:
    home = cli.env["HOME"]
    (cli.cwd.parent / "user" / ".zsh_history").write_text(": 1700000000:0;make test\n")
    result = cli.run("import", "history", SHELL="/usr/bin/zsh")
    assert result.returncode == 0, result.stderr
    assert home in result.stdout.decode().replace("\n", "")
    assert commands(cli) == [("make", "test", None)]


def test_history_errors_are_clear(cli: Cli) -> None:
    missing = cli.run("import", "history", "--shell", "bash", "/nonexistent/history")
    bad_shell = cli.run("import", "history", "--shell", "tcsh", "/dev/null")
    assert missing.returncode == bad_shell.returncode == 2
    assert b"/nonexistent/history does not exist" in missing.stderr
    assert b"unknown shell 'tcsh'" in bad_shell.stderr


def test_greenberg_folder_needs_a_user_and_lists_them(cli: Cli) -> None:
    folder = shared_data("greenberg")
    result = cli.run("import", "greenberg", str(folder))
    assert result.returncode == 2
    assert b"--user" in result.stderr and b"novice-1" in result.stderr


def test_greenberg_user_import_matches_the_trace(cli: Cli) -> None:
    # Prepare
    folder = shared_data("greenberg")
    expected = [c for c in parse_greenberg(read_text(folder / "novice-2")) if c.line.strip()]
    # Execute
    result = cli.run("import", "greenberg", str(folder), "--user", "novice-2")
    # Assert
    assert result.returncode == 0, result.stderr
    stored = commands(cli)
    assert len(stored) == len(expected)
    assert sum(f for _, _, f in stored if f) == sum(1 for c in expected if c.failed)
    assert stored[0][0] == expected[0].line.split()[0]


def test_a_file_in_another_format_is_refused(cli: Cli) -> None:
    other = cli.cwd / "notes.txt"
    other.write_text("hello\nworld\n")
    result = cli.run("import", "greenberg", str(other))
    assert result.returncode == 2
    assert b"not a Greenberg trace" in result.stderr
