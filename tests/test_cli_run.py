"""End-to-end tests of ``aicache run`` with a real, counting fake AI CLI."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.conftest import Cli

pytestmark = pytest.mark.e2e


def entries(cli: Cli) -> int:
    with sqlite3.connect(cli.home / "store.db") as conn:
        count = int(conn.execute("SELECT count(*) FROM cache_entries").fetchone()[0])
    conn.close()
    return count


def test_second_identical_call_is_served_without_starting_the_tool(cli: Cli) -> None:
    # Execute
    first = cli.run("run", "--", "fake-ai", "how do I undo a commit")
    second = cli.run("run", "--", "fake-ai", "how do I undo a commit")
    # Assert
    assert first.returncode == second.returncode == 0
    assert b"Answer to: how do I undo a commit" in first.stdout
    assert second.stdout == first.stdout
    assert second.stderr == first.stderr == b"fake-ai: thinking done\n"
    assert cli.invocations() == 1


def test_refresh_runs_the_tool_again(cli: Cli) -> None:
    cli.run("run", "--", "fake-ai", "q")
    refreshed = cli.run("run", "--refresh", "--", "fake-ai", "q")
    assert refreshed.returncode == 0
    assert cli.invocations() == 2
    assert entries(cli) == 1


def test_a_failing_call_is_passed_through_and_not_cached(cli: Cli) -> None:
    first = cli.run("run", "--", "fake-ai", "please fail")
    second = cli.run("run", "--", "fake-ai", "please fail")
    assert first.returncode == second.returncode == 3
    assert b"model overloaded" in second.stderr
    assert cli.invocations() == 2
    assert entries(cli) == 0


def test_standard_input_is_part_of_the_key(cli: Cli) -> None:
    a = cli.run("run", "--", "fake-ai", "summarise", input=b"file one")
    b = cli.run("run", "--", "fake-ai", "summarise", input=b"file two")
    a_again = cli.run("run", "--", "fake-ai", "summarise", input=b"file one")
    assert b"read 8 bytes" in a.stdout
    assert a.stdout != b.stdout
    assert a_again.stdout == a.stdout
    assert cli.invocations() == 2


def test_the_project_is_part_of_the_key_unless_scope_is_global(cli: Cli, tmp_path: Path) -> None:
    # Prepare: two git projects
    for name in ("alpha", "beta"):
        (tmp_path / name / ".git").mkdir(parents=True)
    # Execute
    cli.cwd = tmp_path / "alpha"
    cli.run("run", "--", "fake-ai", "explain")
    cli.cwd = tmp_path / "beta"
    cli.run("run", "--", "fake-ai", "explain")
    cli.run("run", "--scope", "global", "--", "fake-ai", "explain")
    cli.cwd = tmp_path / "alpha"
    cli.run("run", "--scope=global", "--", "fake-ai", "explain")
    # Assert: one run per project, then one shared global run
    assert cli.invocations() == 3


def test_no_store_keeps_the_result_out(cli: Cli) -> None:
    cli.run("run", "--no-store", "--", "fake-ai", "private question")
    cli.run("run", "--no-store", "--", "fake-ai", "private question")
    assert cli.invocations() == 2
    assert entries(cli) == 0


def test_an_expired_entry_is_a_miss(cli: Cli) -> None:
    cli.run("run", "--ttl", "1s", "--", "fake-ai", "weather")
    time.sleep(1.2)
    cli.run("run", "--", "fake-ai", "weather")
    assert cli.invocations() == 2


def test_command_not_found_behaves_like_the_shell(cli: Cli) -> None:
    result = cli.run("run", "--", "no-such-ai-tool", "hi")
    assert result.returncode == 127
    assert result.stderr == b"aicache: no-such-ai-tool: command not found\n"


def test_a_file_that_is_not_executable_gives_126(cli: Cli, tmp_path: Path) -> None:
    script = tmp_path / "notexec"
    script.write_text("#!/bin/sh\necho hi\n")
    result = cli.run("run", "--", str(script))
    assert result.returncode == 126
    assert b"Permission denied" in result.stderr
    assert b"Traceback" not in result.stderr


def test_output_above_the_limit_is_passed_through_but_not_stored(cli: Cli) -> None:
    # Prepare
    assert cli.run("config", "set", "max-output", "64k").returncode == 0
    # Execute
    big = cli.run("run", "--", "fake-ai", "big", FAKE_AI_BYTES=str(200_000))
    stats = json.loads(cli.run("stats", "--json").stdout)
    # Assert
    assert big.returncode == 0
    assert len(big.stdout) == 200_000
    assert entries(cli) == 0
    assert stats["total"]["not_stored_too_large"] == 1


def test_concurrent_identical_calls_all_finish_with_one_entry(cli: Cli) -> None:
    # Execute: six processes race on the same key against a fresh store.
    with ThreadPoolExecutor(max_workers=6) as pool:
        results = list(pool.map(lambda _: cli.run("run", "--", "fake-ai", "race"), range(6)))
    # Assert
    assert [r.returncode for r in results] == [0] * 6
    assert all(b"Answer to: race" in r.stdout for r in results)
    assert not any(b"locked" in r.stderr or b"Traceback" in r.stderr for r in results)
    assert entries(cli) == 1
    stats = json.loads(cli.run("stats", "--json").stdout)
    assert stats["total"]["calls"] == 6


def test_ctrl_c_mid_run_leaves_no_entry(cli: Cli) -> None:
    # Prepare: a slow answer
    process = cli.popen("run", "--", "fake-ai", "slow question", FAKE_AI_DELAY="30")
    deadline = time.monotonic() + 20
    while cli.invocations() == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    # Execute: Ctrl-C reaches the whole foreground process group, as in a terminal.
    os.killpg(process.pid, signal.SIGINT)
    _, stderr = process.communicate(timeout=20)
    # Assert
    assert process.returncode == 130
    assert b"Traceback" not in stderr
    assert entries(cli) == 0
    assert cli.run("run", "--", "fake-ai", "slow question").returncode == 0
    assert entries(cli) == 1


def test_bad_options_are_named(cli: Cli) -> None:
    unknown = cli.run("run", "--bogus", "--", "fake-ai", "x")
    bad_ttl = cli.run("run", "--ttl", "soon", "--", "fake-ai", "x")
    nothing = cli.run("run", "--refresh")
    for result in (unknown, bad_ttl, nothing):
        assert result.returncode == 2
        assert b"Traceback" not in result.stderr
    assert b"--bogus" in unknown.stderr
    assert b"'soon'" in bad_ttl.stderr
    assert b"no command given" in nothing.stderr
    assert cli.invocations() == 0


def test_events_keep_tokens_not_the_prompt(cli: Cli) -> None:
    cli.run("run", "--", "fake-ai", "-p", "my secret project codename")
    with sqlite3.connect(cli.home / "store.db") as conn:
        tokens, raw = conn.execute("SELECT tokens, raw_prompt FROM events").fetchone()
    conn.close()
    assert tokens == "fake-ai -p"
    assert raw is None


def test_raw_storage_keeps_the_prompt_when_turned_on(cli: Cli) -> None:
    cli.run("config", "set", "raw-storage", "on")
    cli.run("run", "--", "fake-ai", "remember this")
    with sqlite3.connect(cli.home / "store.db") as conn:
        (raw,) = conn.execute("SELECT raw_prompt FROM events").fetchone()
    conn.close()
    assert raw == "remember this"


def test_stats_count_hits_misses_and_time_saved(cli: Cli) -> None:
    cli.run("run", "--", "fake-ai", "a", FAKE_AI_DELAY="0.5")
    cli.run("run", "--", "fake-ai", "a")
    cli.run("run", "--", "fake-ai", "a")
    cli.run("run", "--", "fake-ai", "fail")
    stats = json.loads(cli.run("stats", "--json").stdout)
    total = stats["total"]
    assert (total["calls"], total["hits"], total["misses"], total["errors"]) == (4, 2, 1, 1)
    assert total["hit_rate"] == pytest.approx(2 / 3)
    assert total["time_saved_s"] > 0.5
    assert total["bytes_saved"] > 0
    assert [t["tool"] for t in stats["tools"]] == ["fake-ai"]


def test_list_inspect_clear(cli: Cli) -> None:
    cli.run("run", "--", "fake-ai", "first")
    cli.run("run", "--", "fake-ai", "second")
    listed = json.loads(cli.run("list", "--json").stdout)
    assert [e["argv"] for e in listed] == [["fake-ai", "second"], ["fake-ai", "first"]]
    detail = json.loads(cli.run("inspect", listed[0]["key"][:10], "--json").stdout)
    assert detail["stdout"].startswith("Answer to: second")
    missing = cli.run("inspect", "ffffffff")
    assert missing.returncode == 2 and b"no cache entry" in missing.stderr
    assert cli.run("clear", "--yes").returncode == 0
    assert json.loads(cli.run("list", "--json").stdout) == []
