"""The one rule for what looks like a secret, and how argv is stored without one."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aicache.local.secrets import looks_like_secret, redact_argv, secret_hash

KEY = bytes(range(32))  # a fixed home key: these tests are about what is redacted

# Shapes of real credentials (made up, never valid).
SECRETS = [
    "sk-ant-api03-Zx9Kq2Lm7Pw4Rt8Vb1Nc6Hd3Jf5Gs0Ya",
    "sk-proj-4fT9kLmQ2xWz8RbN1cVd7HjY3pSg6",
    "ghp_0123456789abcdefABCDEF0123456789abcd",
    "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuv",
    "xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx",
    "AKIAIOSFODNN7EXAMPLE",
    "AIzaSyD-9tSrke72PouQMnMX-a7eZSW0jkFMBWY",
    "glpat-xYz123AbC456dEf789gH",
    "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N",
    "a8F3kLm92Qx7Zp1Rt6Vb4Nw0",  # no prefix: random-looking
    "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    "3f2a9c1d4e5b6a7c8d9e0f1a2b3c4d5e6f7a8b9c",
    "Bearer sk-ant-api03-Zx9Kq2Lm7Pw4Rt8Vb1Nc6Hd3Jf5Gs0Ya",
]
NOT_SECRETS = [
    "git",
    "x86_64-linux-gnu-gcc-12",
    "python3.11-minimal",
    "docker-compose.override.yml",
    "550e8400-e29b-41d4-a716-446655440000",
    "/home/alice/projects/my-app/src/main_2024.py",
    "https://example.com/releases/v1.2.3/download",
    "--format=json",
    "my-secret-project-codename-2024",
    "HUNTER2",
]


@pytest.mark.parametrize("word", SECRETS)
def test_keys_and_tokens_look_like_secrets(word: str) -> None:
    assert looks_like_secret(word)


@pytest.mark.parametrize("word", NOT_SECRETS)
def test_names_paths_and_ids_do_not(word: str) -> None:
    assert not looks_like_secret(word)


def test_argv_keeps_secret_values_only_hashed() -> None:
    # Prepare
    argv = (
        "deploy",
        "--api-key=sk-ant-api03-Zx9Kq2Lm7Pw4Rt8Vb1Nc6Hd3Jf5Gs0Ya",
        "--token",
        "plainword",
        "--password=hunter2",
        "OPENAI_API_KEY=abc",
        "Authorization: Basic dXNlcjpwYXNz",
        "https://bob:hunter2@example.com/x",
        "--author",
        "Alice",
        "explain this",
    )
    # Execute
    stored = redact_argv(argv, KEY)
    # Assert
    assert stored == (
        "deploy",
        "--api-key=" + secret_hash("sk-ant-api03-Zx9Kq2Lm7Pw4Rt8Vb1Nc6Hd3Jf5Gs0Ya", KEY),
        "--token",
        secret_hash("plainword", KEY),
        "--password=" + secret_hash("hunter2", KEY),
        "OPENAI_API_KEY=" + secret_hash("abc", KEY),
        "Authorization: " + secret_hash("Basic dXNlcjpwYXNz", KEY),
        "https://bob:" + secret_hash("hunter2", KEY) + "@example.com/x",
        "--author",
        "Alice",
        "explain this",
    )


def test_a_password_glued_to_mysql_p_is_hashed() -> None:
    assert redact_argv(("mysql", "-pHUNTER2PASS", "-u", "root"), KEY) == (
        "mysql",
        "-p" + secret_hash("HUNTER2PASS", KEY),
        "-u",
        "root",
    )


def test_the_password_of_curl_user_is_hashed() -> None:
    assert redact_argv(("curl", "-u", "bob:hunter2", "https://example.com"), KEY) == (
        "curl",
        "-u",
        "bob:" + secret_hash("hunter2", KEY),
        "https://example.com",
    )


def test_the_hash_is_stable_and_short() -> None:
    assert secret_hash("x", KEY) == secret_hash("x", KEY) != secret_hash("y", KEY)
    assert len(secret_hash("x", KEY)) == len("<secret:>") + 12


@given(st.sampled_from(SECRETS), st.sampled_from(["--api-key=", "--key ", "KEY=", ""]))
def test_no_planted_secret_survives_in_stored_argv(secret: str, form: str) -> None:
    words = ["tool", *(form + secret).split(" ", 1)] if form.endswith(" ") else ["tool"]
    if not form.endswith(" "):
        words.append(form + secret)
    bare = secret.removeprefix("Bearer ")
    assert all(bare not in word for word in redact_argv(words, KEY))


@pytest.mark.parametrize(
    ("argv", "stored"),
    [
        (("curl", "--user=bob:hunter2", "u"), ("curl", "--user=bob:<h>", "u")),
        (("curl", "-ubob:hunter2", "u"), ("curl", "-ubob:<h>", "u")),
        (("docker", "login", "-p", "hunter2", "reg"), ("docker", "login", "-p", "<h>", "reg")),
        (("docker", "login", "-phunter2"), ("docker", "login", "-p<h>")),
        (("sshpass", "-p", "hunter2", "ssh", "host"), ("sshpass", "-p", "<h>", "ssh", "host")),
        (("sshpass", "-phunter2", "ssh"), ("sshpass", "-p<h>", "ssh")),
        (("curl", "--header=Authorization: hunter2"), ("curl", "--header=Authorization: <h>")),
        (("curl", "-HAuthorization: hunter2"), ("curl", "-HAuthorization: <h>")),
    ],
)
def test_passwords_in_the_other_places_tools_take_them_are_hashed(
    argv: tuple[str, ...], stored: tuple[str, ...]
) -> None:
    hashed = secret_hash("hunter2", KEY)
    assert redact_argv(argv, KEY) == tuple(w.replace("<h>", hashed) for w in stored)


@pytest.mark.parametrize(
    "argv",
    [
        ("docker", "run", "-p", "8080:80", "nginx"),  # -p publishes a port outside login
        ("docker", "ps", "-p"),
        ("docker", "run", "-p8080:80", "nginx"),
        ("curl", "--header=Accept: text/plain", "u"),
        ("grep", "-p", "pattern"),
    ],
)
def test_the_same_flags_elsewhere_are_kept(argv: tuple[str, ...]) -> None:
    assert redact_argv(argv, KEY) == argv
