from __future__ import annotations

import pytest

from aicache.local.history import (
    parse_bash,
    parse_fish,
    parse_greenberg,
    parse_history,
    parse_zsh,
    read_text,
)
from tests.conftest import shared_data


def test_bash_history_with_and_without_timestamps() -> None:
    text = "#1700000000\ngit status\nls\n\n#1700000100\nmake test\n"
    commands = list(parse_bash(text))
    assert [c.line for c in commands] == ["git status", "ls", "make test"]
    assert [c.ts for c in commands] == [1700000000.0, None, 1700000100.0]


def test_zsh_extended_history_and_continuations() -> None:
    text = ": 1700000000:0;git status\n: 1700000005:2;echo one \\\ntwo\nplain line\n"
    commands = list(parse_zsh(text))
    assert [c.line for c in commands] == ["git status", "echo one \ntwo", "plain line"]
    assert commands[1].ts == 1700000005.0
    assert commands[2].ts is None


def test_fish_history() -> None:
    text = "- cmd: git push\n  when: 1700000000\n- cmd: ls\n  when: 1700000009\n  paths:\n"
    commands = list(parse_fish(text))
    assert [(c.line, c.ts) for c in commands] == [("git push", 1700000000.0), ("ls", 1700000009.0)]


def test_unknown_shell_is_named() -> None:
    with pytest.raises(ValueError, match="unknown shell 'tcsh'"):
        parse_history("ls\n", "tcsh")


GREENBERG_SAMPLE = """S Fri Mar  6 14:08:30 1987
E NIL

C ls
D /user/alice
A ls -Fg
H NIL
X NIL

C cat nothere
D /user/alice
A NIL
H NIL
X N  10

S Sat Mar  7 09:00:00 1987
E Sat Mar  7 10:00:00 1987

C cd work
D NIL
A NIL
H NIL
X NIL
"""


def test_greenberg_records_sessions_directories_and_errors() -> None:
    commands = parse_greenberg(GREENBERG_SAMPLE)
    assert [c.line for c in commands] == ["ls", "cat nothere", "cd work"]
    assert [c.session for c in commands] == [0, 0, 1]
    assert [c.failed for c in commands] == [False, True, False]
    assert commands[0].directory == "/user/alice"
    assert commands[2].directory is None
    assert commands[0].ts is not None and commands[2].ts is not None
    assert commands[2].ts > commands[0].ts


def test_greenberg_rejects_other_text() -> None:
    with pytest.raises(ValueError, match="not a Greenberg trace"):
        parse_greenberg("just some\nrandom text\n")


def test_greenberg_real_traces_parse_every_command_record() -> None:
    # Prepare
    folder = shared_data("greenberg")
    for path in sorted(p for p in folder.iterdir() if p.is_file()):
        text = read_text(path)
        expected = sum(1 for line in text.split("\n") if line.startswith("C "))
        # Execute
        commands = parse_greenberg(text)
        # Assert
        assert len(commands) == expected, path.name
        assert all(c.line for c in commands)
        assert commands[-1].session is not None and commands[-1].session > 0
