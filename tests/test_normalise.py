from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aicache.local.normalise import command_tokens, error_signature


@pytest.mark.parametrize(
    ("line", "command", "flags"),
    [
        ("ls -la /home/alice/secret", "ls", ("-la",)),
        ("git commit -m 'fix the bug'", "git commit", ("-m",)),
        ("git -C /repo status", "git status", ("-C",)),
        ("FOO=1 sudo make test", "make test", ()),
        ("/usr/bin/python3 script.py --fast", "python3", ("--fast",)),
        ("cd ass/rough ; ls -Fg", "cd", ()),
        ("claude -p 'explain this stack trace'", "claude", ("-p",)),
        ("docker run --rm -it img", "docker run", ("--rm", "-it")),
        ("echo 'unbalanced", "echo", ()),
    ],
)
def test_command_tokens_keep_shape_not_values(
    line: str, command: str, flags: tuple[str, ...]
) -> None:
    tokens = command_tokens(line)
    assert tokens.command == command
    assert tokens.flags == flags
    assert "secret" not in tokens.render() and "bug" not in tokens.render()


def test_command_tokens_accepts_an_argv_and_empty_input() -> None:
    assert command_tokens(["/opt/bin/llm", "hello"]).command == "llm hello"
    assert command_tokens("").program == ""
    assert command_tokens("   ").program == ""


def test_error_signature_drops_paths_numbers_and_quotes() -> None:
    stderr = (
        "Traceback (most recent call last):\n"
        '  File "/home/alice/proj/app.py", line 12, in <module>\n'
        "FileNotFoundError: [Errno 2] No such file or directory: '/home/alice/.ssh/id_rsa'\n"
    )
    signature = error_signature(stderr)
    assert signature == "FileNotFoundError: [Errno <n>] No such file or directory: <str>"


def test_error_signature_of_nothing_is_none() -> None:
    assert error_signature("") is None
    assert error_signature("\n  \n") is None


@given(
    st.lists(st.from_regex(r"[a-z]{3,10}", fullmatch=True), min_size=1, max_size=4),
    st.integers(min_value=0, max_value=10**9),
)
def test_error_signature_never_keeps_a_path_or_number(parts: list[str], number: int) -> None:
    path = "/" + "/".join(parts)
    signature = error_signature(f"error: cannot open {path} at offset {number}")
    assert signature is not None
    assert path not in signature
    assert str(number) not in signature.replace("<n>", "")
