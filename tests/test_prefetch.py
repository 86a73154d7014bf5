"""Prefetch re-runs only what the user allowed, says what it will run first, and
prune and list agree on what has expired."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import sqlite3
import time
from pathlib import Path

import pytest

from tests.conftest import FAKE_AI, Cli

pytestmark = pytest.mark.e2e


def _expired_entries(cli: Cli, tmp_path: Path) -> str:
    """A user who runs make all day, with expired answers of make and of fake-ai."""
    history = cli.cwd / "history"
    history.write_text("make\nmake test\ngit status\n" * 10)
    assert cli.run("import", "history", "--shell", "bash", str(history)).returncode == 0
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    shutil.copy(FAKE_AI, bin_dir / "make")
    path = os.pathsep.join([str(bin_dir), cli.env["PATH"]])
    cli.run("run", "--ttl", "1s", "--", "make", "release notes", PATH=path)
    cli.run("run", "--ttl", "1s", "--", "fake-ai", "a paid question", PATH=path)
    time.sleep(1.2)
    return path


def test_prefetch_runs_nothing_the_user_did_not_allow(cli: Cli, tmp_path: Path) -> None:
    # Prepare
    path = _expired_entries(cli, tmp_path)
    calls = cli.invocations()
    # Execute
    refused = cli.run("prefetch", "--yes", PATH=path)
    cli.run("config", "set", "prefetch-tools", "make")
    not_asked = cli.run("prefetch", PATH=path)
    # Assert
    assert refused.returncode == 2
    assert b"no tool is allowed to be prefetched" in refused.stderr
    assert b"config set prefetch-tools" in refused.stderr
    assert not_asked.returncode == 2
    assert b"Prefetch will run 1 command: 1 \xc3\x97 make." in not_asked.stdout
    assert b"no terminal to ask on" in not_asked.stderr and b"--yes" in not_asked.stderr
    assert cli.invocations() == calls


def test_prefetch_with_yes_refreshes_only_allowed_tools(cli: Cli, tmp_path: Path) -> None:
    # Prepare
    path = _expired_entries(cli, tmp_path)
    cli.run("config", "set", "prefetch-tools", "make, llm")
    calls = cli.invocations()
    started = time.time()
    # Execute
    ran = cli.run("prefetch", "--yes", PATH=path, timeout=120)
    # Assert
    assert ran.returncode == 0, ran.stderr
    assert b"1 \xc3\x97 make" in ran.stdout and b"refreshed: make release notes" in ran.stdout
    assert b"fake-ai" not in ran.stdout
    assert cli.invocations() == calls + 1
    entries = {e["tool"]: e for e in json.loads(cli.run("list", "--json").stdout)}
    assert entries["make"]["created_at"] >= started  # stored anew by the re-run
    assert entries["fake-ai"]["created_at"] < started


def test_prune_and_list_agree_on_what_expired(cli: Cli, tmp_path: Path) -> None:
    # Prepare
    _expired_entries(cli, tmp_path)
    cli.run("config", "set", "prefetch-tools", "make")
    # Execute
    pruned = cli.run("prune")
    listed = cli.run("list").stdout.decode()
    # Assert
    assert pruned.returncode == 0, pruned.stderr
    said = pruned.stdout.decode().replace("\n", " ")
    assert "Pruned 1 expired" in said
    assert "Kept 1 expired entry of make for `aicache prefetch`" in said
    assert [e["tool"] for e in json.loads(cli.run("list", "--json").stdout)] == ["make"]
    assert "expired" in listed


def test_prefetch_tools_names_a_bad_value(cli: Cli) -> None:
    # Execute
    bad = cli.run("config", "set", "prefetch-tools", "make, my tool")
    good = cli.run("config", "set", "prefetch-tools", " llm ,make,")
    shown = cli.run("config", "show", COLUMNS="200")
    # Assert
    assert bad.returncode == 2
    assert b"invalid tool name 'my tool'" in bad.stderr and b"Traceback" not in bad.stderr
    assert good.returncode == 0 and b"prefetch-tools = llm,make" in good.stdout
    assert "llm,make" in shown.stdout.decode()


def test_an_entry_that_read_an_empty_input_is_refreshed_once(cli: Cli, tmp_path: Path) -> None:
    # Prepare: an answer of make keyed on an empty input, expired an hour ago.
    history = cli.cwd / "history"
    history.write_text("make\nmake test\n" * 10)
    assert cli.run("import", "history", "--shell", "bash", str(history)).returncode == 0
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    shutil.copy(FAKE_AI, bin_dir / "make")
    path = os.pathsep.join([str(bin_dir), cli.env["PATH"]])
    stored = cli.run("run", "--ttl", "1h", "--stdin", "--", "make", "notes", input=b"", PATH=path)
    assert stored.returncode == 0, stored.stderr
    with sqlite3.connect(cli.home / "store.db") as conn:
        conn.execute(
            "UPDATE cache_entries SET created_at = created_at - 7200, "
            "expires_at = expires_at - 7200"
        )
    conn.close()
    cli.run("config", "set", "prefetch-tools", "make")
    calls = cli.invocations()
    # Execute
    first = cli.run("prefetch", "--yes", "--within", "1m", PATH=path, timeout=120)
    second = cli.run("prefetch", "--yes", "--within", "1m", PATH=path, timeout=120)
    # Assert: the re-run replaced the entry under its own key, so nothing is left to refresh.
    assert first.returncode == second.returncode == 0, first.stderr + second.stderr
    assert b"refreshed: make notes" in first.stdout
    assert b"Nothing to refresh" in second.stdout
    assert cli.invocations() == calls + 1
    entries = json.loads(cli.run("list", "--json").stdout)
    assert len(entries) == 1 and entries[0]["expires_at"] > time.time()


def test_prefetch_tools_refuses_what_config_show_prints_for_none(cli: Cli) -> None:
    # Execute: "(none)" is how an empty list is shown, not a program name.
    shown_none = cli.run("config", "set", "prefetch-tools", "(none)")
    other = cli.run("config", "set", "prefetch-tools", "make,$(rm)")
    # Assert
    assert shown_none.returncode == other.returncode == 2
    assert b"invalid tool name '(none)'" in shown_none.stderr
    assert b"invalid tool name '$(rm)'" in other.stderr
    assert b"Traceback" not in shown_none.stderr + other.stderr


def test_a_stored_non_name_in_prefetch_tools_allows_nothing(cli: Cli) -> None:
    # Prepare: "(none)" kept by an aicache that accepted it.
    assert cli.run("config", "set", "prefetch-tools", "make").returncode == 0
    with sqlite3.connect(cli.home / "store.db") as conn:
        conn.execute("UPDATE settings SET value = '(none)' WHERE key = 'prefetch-tools'")
    conn.close()
    # Execute
    refused = cli.run("prefetch", "--yes")
    # Assert: read as an empty list, with a clear refusal instead of a traceback.
    assert refused.returncode == 2
    assert b"no tool is allowed to be prefetched" in refused.stderr


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


def test_a_rerun_past_its_timeout_ends_the_command_too(cli: Cli, tmp_path: Path) -> None:
    # Prepare: an expired answer of make, whose next run hangs.
    history = cli.cwd / "history"
    history.write_text("make\nmake test\n" * 10)
    assert cli.run("import", "history", "--shell", "bash", str(history)).returncode == 0
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    hang, pid_file = tmp_path / "hang", tmp_path / "pid"
    make = bin_dir / "make"
    make.write_text(
        f"#!/bin/sh\n[ -f {hang} ] && echo $$ > {pid_file} && exec sleep 300\necho ok\n"
    )
    make.chmod(0o755)
    path = os.pathsep.join([str(bin_dir), cli.env["PATH"]])
    assert cli.run("run", "--ttl", "1s", "--", "make", "all", PATH=path).returncode == 0
    cli.run("config", "set", "prefetch-tools", "make")
    hang.touch()
    time.sleep(1.2)
    pid = 0
    try:
        # Execute
        ran = cli.run("prefetch", "--yes", "--timeout", "3s", PATH=path, timeout=120)
        pid = int(pid_file.read_text())
        # Assert: the hanging command was ended with the re-run, not left behind.
        assert ran.returncode == 1 and b"failed (124): make all" in ran.stdout
        deadline = time.monotonic() + 30
        while _running(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _running(pid)
    finally:
        if pid:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
