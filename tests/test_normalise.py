from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aicache.local.normalise import ERROR_VOCABULARY, command_tokens, error_signature


@pytest.mark.parametrize(
    ("line", "command", "flags"),
    [
        ("ls -la /home/alice/secret", "ls", ("-l",)),
        ("git commit -m 'fix the bug'", "git commit", ("-m",)),
        ("git -C /repo status", "git status", ("-C",)),
        ("FOO=1 sudo make test", "make test", ()),
        ("/usr/bin/python3 script.py --fast", "python3", ("--fast",)),
        ("cd ass/rough ; ls -Fg", "cd", ()),
        ("claude -p 'explain this stack trace'", "claude", ("-p",)),
        ("docker run --rm -it img", "docker run", ("--rm", "-i")),
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


@pytest.mark.parametrize(
    ("line", "flags"),
    [
        ("mysql -pHUNTER2PASS -u root db", ("-p", "-u")),
        ("claude -pWHAT-IS-MY-PLAN", ("-p",)),
        ("tool --api-key=sk-ant-api03-Zx9Kq2Lm7Pw4Rt8Vb1Nc6Hd3Jf5Gs0Ya", ("--api-key",)),
        ("tool --ghp_0123456789abcdefABCDEF0123456789abcd", ()),
    ],
)
def test_flags_keep_only_the_flag_name(line: str, flags: tuple[str, ...]) -> None:
    tokens = command_tokens(line)
    assert tokens.flags == flags
    for value in ("HUNTER2PASS", "WHAT-IS", "sk-ant", "ghp_"):
        assert value not in tokens.render()


@pytest.mark.parametrize(
    "line",
    [
        "sk-ant-api03-Zx9Kq2Lm7Pw4Rt8Vb1Nc6Hd3Jf5Gs0Ya",
        "ghp_0123456789abcdefABCDEF0123456789abcd",
        "  a8F3kLm92Qx7Zp1Rt6Vb4Nw0  ",
    ],
)
def test_a_pasted_key_is_not_a_program(line: str) -> None:
    assert command_tokens(line).program == ""


def test_a_key_is_not_a_subcommand() -> None:
    assert command_tokens("git a8f3klm92qx7zp1rt6vb4nw0zzq").subcommand is None


def test_error_signature_of_a_tool_echoing_its_prompt_keeps_no_prompt_word() -> None:
    # Prepare: a tool that repeats the prompt in its error
    prompt = "summarise the Nightjar acquisition memo for Dana before 3pm"
    stderr = f"assistant: Error: could not answer {prompt!r}\nassistant: Error: refused: {prompt}\n"
    # Execute
    signature = error_signature(stderr)
    # Assert
    assert signature == "error: <w>: Error: refused: <w>"
    for word in prompt.split():
        if word.lower() not in ERROR_VOCABULARY:
            assert word not in signature


@pytest.mark.parametrize(
    ("stderr", "signature"),
    [
        ("Error: model overloaded (HTTP 529), try again later", None),
        ("error[E0425]: cannot find value `foo` in this scope", "error[E0425]: cannot <w> value"),
        ("raise KeyError(customer_name)\nKeyError: 'alice@example.com'", "KeyError: <str>"),
        ("fatal: not a git repository: /srv/x", "fatal: not a <w>: <path>"),
    ],
)
def test_error_signature_is_a_class_and_a_template(stderr: str, signature: str | None) -> None:
    result = error_signature(stderr)
    assert result is not None
    if signature is None:
        assert result == "Error: model overloaded (HTTP <n>), try again later"
    else:
        assert result.startswith(signature)


@given(st.text(alphabet=st.characters(categories=["L"]), min_size=4, max_size=12))
def test_error_signature_keeps_no_free_word(word: str) -> None:
    signature = error_signature(f"RuntimeError: failed on {word} now")
    assert signature is not None
    if word.lower() not in ERROR_VOCABULARY:
        assert word not in signature.replace("RuntimeError", "").replace("failed", "")
