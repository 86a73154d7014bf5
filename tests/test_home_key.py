"""Stored hashes are keyed by a per-home secret: no offline guessing of what was hashed."""

# ruff: noqa: S105 (the made-up password below is what the test plants)

from __future__ import annotations

import hashlib
import json
import stat
from dataclasses import replace
from pathlib import Path

import pytest

from aicache.local.cache import make_key
from aicache.local.home_key import KEY_BYTES, KEY_FILENAME, home_key
from aicache.local.secrets import secret_hash
from tests.conftest import Cli

PASSWORD = "hunter2"


def _stored_password_hash(cli: Cli) -> str:
    ran = cli.run("run", "--", "fake-ai", f"--password={PASSWORD}", "connect")
    assert ran.returncode == 0, ran.stderr
    listed = json.loads(cli.run("list", "--json").stdout)
    argv = listed[0]["argv"]
    assert argv[1].startswith("--password=<secret:"), argv
    return str(argv[1].removeprefix("--password="))


@pytest.mark.e2e
def test_a_stored_password_is_keyed_by_its_home_not_a_plain_sha256(
    cli: Cli, tmp_path: Path
) -> None:
    # Prepare: a second home for the same user
    other_home = tmp_path / "other-home"
    other = replace(cli, home=other_home, env={**cli.env, "AICACHE_HOME": str(other_home)})
    # Execute
    stored = _stored_password_hash(cli)
    stored_elsewhere = _stored_password_hash(other)
    # Assert: not the dictionary-known SHA-256, different per home, the HMAC under the key
    plain = "<secret:" + hashlib.sha256(PASSWORD.encode()).hexdigest()[:12] + ">"
    assert stored != plain
    assert stored_elsewhere != plain
    assert stored != stored_elsewhere
    key = (cli.home / KEY_FILENAME).read_bytes()
    assert stored == secret_hash(PASSWORD, key)


@pytest.mark.e2e
def test_a_hit_still_works_across_runs_in_one_home_and_the_key_is_private(cli: Cli) -> None:
    # Execute
    first = cli.run("run", "--", "fake-ai", f"--password={PASSWORD}", "connect")
    second = cli.run("run", "--", "fake-ai", f"--password={PASSWORD}", "connect")
    # Assert
    assert first.returncode == second.returncode == 0
    assert first.stdout == second.stdout
    assert cli.invocations() == 1
    key_file = cli.home / KEY_FILENAME
    assert len(key_file.read_bytes()) == KEY_BYTES
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600


@pytest.mark.e2e
def test_forget_erases_the_key_and_a_new_one_is_made(cli: Cli) -> None:
    # Prepare
    cli.run("run", "--", "fake-ai", "what is a monad")
    key_file = cli.home / KEY_FILENAME
    old_key = key_file.read_bytes()
    # Execute
    forgotten = cli.run("privacy", "forget", "--yes")
    # Assert
    assert forgotten.returncode == 0, forgotten.stderr
    assert not key_file.exists()
    assert KEY_FILENAME.encode() in forgotten.stdout + forgotten.stderr
    cli.run("run", "--", "fake-ai", "what is a monad")
    assert cli.invocations() == 2
    assert key_file.read_bytes() != old_key


@pytest.mark.e2e
@pytest.mark.parametrize("shape", ["short", "link"])
def test_an_unusable_key_file_runs_the_command_without_the_cache(
    cli: Cli, tmp_path: Path, shape: str
) -> None:
    # Prepare: a key file of the wrong size, or a link to someone else's file
    cli.home.mkdir(mode=0o700)
    key_file = cli.home / KEY_FILENAME
    if shape == "short":
        key_file.write_bytes(b"short")
    else:
        target = tmp_path / "elsewhere"
        target.write_bytes(bytes(KEY_BYTES))
        key_file.symlink_to(target)
    # Execute
    ran = cli.run("run", "--", "fake-ai", "hello")
    again = cli.run("run", "--", "fake-ai", "hello")
    # Assert: the command ran each time, with a one-line reason, and the file is left alone
    assert ran.returncode == again.returncode == 0
    assert ran.stdout.startswith(b"Answer to: hello")
    assert b"key file" in ran.stderr and b"Traceback" not in ran.stderr
    assert cli.invocations() == 2
    assert key_file.is_symlink() if shape == "link" else key_file.read_bytes() == b"short"


def test_the_stored_stdin_hash_is_keyed(tmp_path: Path) -> None:
    # Prepare
    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir()
    second.mkdir()
    # Execute
    key = make_key(["llm"], b"my diary", {}, secret=home_key(first))
    same = make_key(["llm"], b"my diary", {}, secret=home_key(first))
    elsewhere = make_key(["llm"], b"my diary", {}, secret=home_key(second))
    # Assert
    assert key == same
    assert key.stdin_sha256 != hashlib.sha256(b"my diary").hexdigest()
    assert key.stdin_sha256 != elsewhere.stdin_sha256
    assert key.digest != elsewhere.digest
