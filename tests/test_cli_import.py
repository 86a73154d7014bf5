"""Importing real shell usage through the CLI."""

from __future__ import annotations

import re
import sqlite3
import subprocess
from pathlib import Path

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


def _trace_lines(user: str) -> list[str]:
    """A real user's command lines, to stand in for a plain bash history."""
    commands = parse_greenberg(read_text(shared_data("greenberg") / user))
    return [c.line for c in commands if c.line.strip() and not c.line.startswith("#")]


def _imported(result: subprocess.CompletedProcess[bytes]) -> int:
    assert result.returncode == 0, result.stderr
    found = re.search(rb"Imported (\d+) commands", result.stdout)
    assert found, result.stdout
    return int(found.group(1))


def test_a_rotated_history_adds_only_its_new_commands(cli: Cli) -> None:
    # Prepare: a 300-line history, then the shell drops its oldest line
    lines = _trace_lines("experienced-1")[:301]
    history = cli.cwd / "bash_history"
    history.write_text("\n".join(lines[:300]) + "\n")
    first = _imported(cli.run("import", "history", "--shell", "bash", str(history)))
    # Execute
    history.write_text("\n".join(lines[1:300]) + "\n")
    rotated = _imported(cli.run("import", "history", "--shell", "bash", str(history)))
    history.write_text("\n".join(lines[2:301]) + "\n")
    rotated_and_grown = _imported(cli.run("import", "history", "--shell", "bash", str(history)))
    # Assert
    assert first == 300
    assert rotated == 0
    assert rotated_and_grown == 1
    assert len(commands(cli)) == 301


def test_a_second_file_adds_all_its_commands(cli: Cli) -> None:
    # Prepare: two different stretches of one user's real usage, as two files
    lines = _trace_lines("experienced-1")
    first, second = cli.cwd / "first_history", cli.cwd / "second_history"
    first.write_text("\n".join(lines[:300]) + "\n")
    second.write_text("\n".join(lines[1000:1080]) + "\n")
    _imported(cli.run("import", "history", "--shell", "bash", str(first)))
    # Execute
    added = _imported(cli.run("import", "history", "--shell", "bash", str(second)))
    again = _imported(cli.run("import", "history", "--shell", "bash", str(second)))
    # Assert
    assert added == 80
    assert again == 0
    assert len(commands(cli)) == 380


def test_zsh_extended_history_is_keyed_by_time_and_text(cli: Cli) -> None:
    # Prepare: the same command twice in one second, then the file rotates
    entries = [
        ": 1700000000:0;git add -A",
        ": 1700000001:0;git commit -m wip",
        ": 1700000001:0;git commit -m wip",
        ": 1700000002:0;ls",
        ": 1700000003:0;make test",
    ]
    history = cli.cwd / "zsh_history"
    history.write_text("\n".join(entries[:4]) + "\n")
    first = _imported(cli.run("import", "history", "--shell", "zsh", str(history)))
    # Execute: the oldest line dropped, one new line, and a second file that
    # types the same command at another time
    history.write_text("\n".join(entries[1:]) + "\n")
    rotated = _imported(cli.run("import", "history", "--shell", "zsh", str(history)))
    other = cli.cwd / "other_history"
    other.write_text(": 1700009999:0;ls\n: 1700000002:0;ls\n")
    second = _imported(cli.run("import", "history", "--shell", "zsh", str(other)))
    # Assert
    assert (first, rotated, second) == (4, 1, 1)
    assert [p for p, _, _ in commands(cli)] == ["git", "git", "git", "ls", "make", "ls"]


def test_fish_history_is_keyed_by_time_and_text(cli: Cli) -> None:
    # Prepare
    entries = [f"- cmd: git status\n  when: {1700000000 + i}\n" for i in range(3)]
    history = cli.cwd / "fish_history"
    history.write_text("".join(entries[:2]))
    first = _imported(cli.run("import", "history", "--shell", "fish", str(history)))
    # Execute: rotated by one, one command more
    history.write_text("".join(entries[1:]))
    rotated = _imported(cli.run("import", "history", "--shell", "fish", str(history)))
    # Assert
    assert (first, rotated) == (2, 1)
    assert len(commands(cli)) == 3


def test_a_loop_typed_many_times_is_kept_as_often_as_typed(home: Path) -> None:
    # Prepare: the same short loop again and again, no timestamps
    from aicache.local.history import parse_bash
    from aicache.local.importer import import_commands
    from aicache.local.store import Store

    lines = ["make", "./run --fast", "vim main.c"] * 10 + ["git diff"]
    with Store.open(home) as store:
        # Execute
        first = import_commands(
            store, list(parse_bash("\n".join(lines))), source="bash", origin="a"
        )
        again = import_commands(
            store, list(parse_bash("\n".join(lines))), source="bash", origin="a"
        )
        grown = import_commands(
            store, list(parse_bash("\n".join([*lines[3:], "make"]))), source="bash", origin="a"
        )
        stored = store.conn.execute("SELECT count(*) FROM commands").fetchone()[0]
    # Assert
    assert (first.added, again.added, grown.added) == (31, 0, 1)
    assert stored == 32


def test_commands_imported_by_an_older_aicache_are_recognised(home: Path) -> None:
    # Prepare: rows as the previous schema keyed them (source, position, text),
    # without the neighbourhood hashes
    import hashlib

    from aicache.local.history import parse_bash
    from aicache.local.importer import import_commands
    from aicache.local.store import Store

    lines = [f"make target{i}" for i in range(12)] + ["#1700000000", "git push"]
    text = "\n".join(lines)
    with Store.open(home) as store:
        import_commands(store, list(parse_bash(text)), source="bash", origin="a")
        with store.write() as conn:
            rows = conn.execute("SELECT id, seq, raw FROM commands ORDER BY seq").fetchall()
            for (row_id, seq, _), command in zip(rows, parse_bash(text), strict=True):
                material = f"bash\0\0{seq}\0{command.line}".encode()
                conn.execute(
                    "UPDATE commands SET fingerprint = ?, before_hash = NULL, after_hash = NULL "
                    "WHERE id = ?",
                    (hashlib.sha256(material).hexdigest(), row_id),
                )
        # Execute
        again = import_commands(store, list(parse_bash(text)), source="bash", origin="a")
        rotated_text = "\n".join(lines[1:])
        rotated = import_commands(store, list(parse_bash(rotated_text)), source="bash", origin="a")
        stored = store.conn.execute("SELECT count(*) FROM commands").fetchone()[0]
    # Assert
    assert (again.added, rotated.added, stored) == (0, 0, 13)
