"""End-to-end tests of ``aicache run`` with a real, counting fake AI CLI."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.conftest import FAKE_AI, Cli

pytestmark = pytest.mark.e2e


def entries(cli: Cli) -> int:
    if not (cli.home / "store.db").exists():
        return 0  # a call that passed through never opened the store
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
    a = cli.run("run", "--stdin", "--", "fake-ai", "summarise", input=b"file one")
    b = cli.run("run", "--stdin", "--", "fake-ai", "summarise", input=b"file two")
    a_again = cli.run("run", "--stdin", "--", "fake-ai", "summarise", input=b"file one")
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


# --- Standard input, sessions and the adapter table -------------------------------------

PROBE = """#!/usr/bin/env python3
import os, sys
with open(os.environ["PROBE_LOG"], "a") as log:
    log.write(" ".join(sys.argv[1:]) + "\\n")
ttys = " ".join(str(os.isatty(fd)) for fd in (0, 1, 2))
sys.stdout.write(f"{os.path.basename(sys.argv[0])} {' '.join(sys.argv[1:])} tty {ttys}\\n")
"""


def probe(directory: Path, name: str) -> Path:
    """A program called ``name`` that logs its calls and says which of its fds are terminals."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(PROBE)
    path.chmod(0o755)
    return path


def probe_calls(log: Path) -> list[str]:
    return log.read_text().splitlines() if log.exists() else []


def test_input_is_left_to_a_command_that_does_not_take_its_prompt_from_it(cli: Cli) -> None:
    # Prepare: the classic shell loop; each command must leave the rest of the input alone.
    aicache = f"{sys.executable} -m aicache"
    script = f'printf "a\\nb\\nc\\n" | while read x; do {aicache} run --no-store -- echo "$x"; done'
    # Execute
    result = subprocess.run(
        ["sh", "-c", script], env=cli.env, cwd=cli.cwd, capture_output=True, timeout=120
    )
    # Assert
    assert result.returncode == 0, result.stderr
    assert result.stdout == b"a\nb\nc\n"


def test_a_command_finishes_while_its_input_stays_open(cli: Cli) -> None:
    # Prepare: standard input is a pipe that nobody closes (like `(echo x; sleep 3) | ...`).
    process = subprocess.Popen(
        [sys.executable, "-m", "aicache", "run", "--", "echo", "hi"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env=cli.env,
        cwd=cli.cwd,
    )
    assert process.stdin is not None and process.stdout is not None
    process.stdin.write(b"first\n")
    process.stdin.flush()
    try:
        # Execute: aicache must not wait for the end of an input echo never reads.
        code = process.wait(timeout=60)
        output = process.stdout.read()
    finally:
        process.stdin.close()
        process.stdout.close()
        process.kill()
        process.wait()
    # Assert
    assert code == 0
    assert output == b"hi\n"


def test_a_known_tool_that_takes_its_prompt_from_stdin_is_keyed_on_it(
    cli: Cli, tmp_path: Path
) -> None:
    # Prepare: the fake AI CLI installed as claude, whose -p reads piped input.
    bin_dir = tmp_path / "tools"
    bin_dir.mkdir()
    shutil.copy(FAKE_AI, bin_dir / "claude")
    path = os.pathsep.join([str(bin_dir), cli.env["PATH"]])
    # Execute
    one = cli.run("run", "--", "claude", "-p", "review", input=b"diff one", PATH=path)
    two = cli.run("run", "--", "claude", "-p", "review", input=b"diff two", PATH=path)
    one_again = cli.run("run", "--", "claude", "-p", "review", input=b"diff one", PATH=path)
    # Assert
    assert b"read 8 bytes" in one.stdout
    assert one.stdout != two.stdout
    assert one_again.stdout == one.stdout
    assert cli.invocations() == 2


def test_piped_input_to_an_unknown_tool_without_stdin_option_is_never_replayed(
    cli: Cli,
) -> None:
    # Prepare: `git diff | aicache run -- mytool review` on two different diffs.
    assert cli.run("config", "set", "show-hits", "on").returncode == 0
    # Execute
    one = cli.run("run", "--", "fake-ai", "review", input=b"diff one")
    two = cli.run("run", "--", "fake-ai", "review", input=b"diff two!")
    # Assert: each review saw its own diff; nothing was kept, and the user was told why.
    assert b"read 8 bytes" in one.stdout
    assert b"read 9 bytes" in two.stdout
    assert cli.invocations() == 2
    assert entries(cli) == 0
    assert two.stderr.count(b"add --stdin") == 1


def test_a_cached_answer_is_not_served_for_piped_input_outside_the_key(cli: Cli) -> None:
    # Prepare: an answer stored for the command run without input.
    cli.run("run", "--", "fake-ai", "review")
    # Execute
    piped = cli.run("run", "--", "fake-ai", "review", input=b"diff one")
    # Assert: the tool ran on the input instead of the stored answer being replayed.
    assert b"read 8 bytes" in piped.stdout
    assert cli.invocations() == 2
    assert b"add --stdin" not in piped.stderr  # show-hits is off


def test_stdin_option_keys_an_unknown_tool_on_its_input(cli: Cli) -> None:
    a = cli.run("run", "--stdin", "--", "fake-ai", "summarise", input=b"file one")
    b = cli.run("run", "--stdin", "--", "fake-ai", "summarise", input=b"file two")
    assert b"read 8 bytes" in a.stdout
    assert a.stdout != b.stdout
    assert cli.invocations() == 2


def test_a_session_runs_directly_on_the_terminal_every_time(cli: Cli, tmp_path: Path) -> None:
    # Prepare: a bare `claude` is an interactive session; run it in a pseudo-terminal.
    probe(tmp_path / "tools", "claude")
    log = tmp_path / "probe.log"
    env = {**cli.env, "PROBE_LOG": str(log)}
    env["PATH"] = os.pathsep.join([str(tmp_path / "tools"), env["PATH"]])
    outputs = []
    for _ in range(2):
        # Execute
        code, output = run_in_pty([sys.executable, "-m", "aicache", "run", "--", "claude"], env)
        outputs.append((code, output))
    # Assert: the session saw a terminal on stdin, stdout and stderr, and was never replayed.
    for code, output in outputs:
        assert code == 0
        assert b"claude  tty True True True" in output
    assert probe_calls(log) == ["", ""]
    assert entries(cli) == 0


def run_in_pty(argv: list[str], env: dict[str, str], feed: bytes = b"") -> tuple[int, bytes]:
    """Run ``argv`` with a new pseudo-terminal as its stdin, stdout and stderr."""
    leader, follower = os.openpty()
    try:
        process = subprocess.Popen(
            argv, stdin=follower, stdout=follower, stderr=follower, env=env, start_new_session=True
        )
    finally:
        os.close(follower)
    if feed:
        os.write(leader, feed)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # EIO: every holder of the terminal has closed it
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    return process.wait(timeout=60), b"".join(chunks).replace(b"\r\n", b"\n")


@pytest.mark.parametrize(
    "argv",
    [
        ["claude", "-p", "--continue", "and then?"],
        ["claude", "mcp", "list"],
        ["claude", "--version"],
        ["gemini", "--yolo", "-p", "fix it"],
        ["ollama", "list"],
    ],
)
def test_stateful_calls_of_known_tools_are_never_cached(
    cli: Cli, tmp_path: Path, argv: list[str]
) -> None:
    # Prepare
    probe(tmp_path / "tools", argv[0])
    log = tmp_path / "probe.log"
    path = os.pathsep.join([str(tmp_path / "tools"), cli.env["PATH"]])
    # Execute
    results = [cli.run("run", "--", *argv, PATH=path, PROBE_LOG=str(log)) for _ in range(2)]
    # Assert
    assert [r.returncode for r in results] == [0, 0]
    assert len(probe_calls(log)) == 2
    assert entries(cli) == 0


def test_aicache_disable_runs_the_command_directly(cli: Cli) -> None:
    cli.run("run", "--", "fake-ai", "q")
    disabled = [cli.run("run", "--", "fake-ai", "q", AICACHE_DISABLE="1") for _ in range(2)]
    assert [r.returncode for r in disabled] == [0, 0]
    assert all(b"Answer to: q" in r.stdout for r in disabled)
    assert cli.invocations() == 3
    stats = json.loads(cli.run("stats", "--json").stdout)
    assert stats["total"]["calls"] == 1


def test_show_hits_marks_a_replayed_answer_on_stderr(cli: Cli) -> None:
    quiet_miss = cli.run("run", "--", "fake-ai", "q")
    quiet_hit = cli.run("run", "--", "fake-ai", "q")
    assert cli.run("config", "set", "show-hits", "on").returncode == 0
    marked_hit = cli.run("run", "--", "fake-ai", "q")
    marked_miss = cli.run("run", "--", "fake-ai", "other")
    assert quiet_hit.stderr == quiet_miss.stderr == b"fake-ai: thinking done\n"
    assert marked_hit.stdout == quiet_miss.stdout
    assert marked_hit.stderr.startswith(b"fake-ai: thinking done\naicache: cached answer from ")
    assert marked_miss.stderr == b"fake-ai: thinking done\n"


def test_two_programs_with_the_same_name_do_not_share_answers(cli: Cli, tmp_path: Path) -> None:
    # Prepare: /a/tool and /b/tool, two different programs.
    for name, answer in (("a", "from a"), ("b", "from b")):
        (tmp_path / name).mkdir()
        (tmp_path / name / "tool").write_text(f"#!/bin/sh\necho {answer}\n")
        (tmp_path / name / "tool").chmod(0o755)
    # Execute
    a = cli.run("run", "--", str(tmp_path / "a" / "tool"))
    b = cli.run("run", "--", str(tmp_path / "b" / "tool"))
    on_path = cli.run("run", "--", "tool", PATH=f"{tmp_path / 'b'}{os.pathsep}{cli.env['PATH']}")
    # Assert
    assert (a.stdout, b.stdout, on_path.stdout) == (b"from a\n", b"from b\n", b"from b\n")
    assert entries(cli) == 2


def test_a_known_tool_keeps_its_answers_when_it_moves(cli: Cli, tmp_path: Path) -> None:
    # Prepare: claude installed in one place, then in another (an upgrade, another machine).
    for name in ("old", "new"):
        (tmp_path / name).mkdir()
        shutil.copy(FAKE_AI, tmp_path / name / "claude")
    # Execute
    for name in ("old", "new"):
        path = os.pathsep.join([str(tmp_path / name), cli.env["PATH"]])
        assert cli.run("run", "--", "claude", "-p", "q", PATH=path).returncode == 0
    # Assert
    assert cli.invocations() == 1


IGNORES_SIGINT = """#!/bin/sh
trap '' INT
sleep 300 &
echo $! > "$1"
wait
"""


def test_ctrl_c_ends_what_a_tool_that_ignores_it_started(cli: Cli, tmp_path: Path) -> None:
    # Prepare: a tool that ignores SIGINT and starts a child that ignores it too.
    tool = tmp_path / "stubborn"
    tool.write_text(IGNORES_SIGINT)
    tool.chmod(0o755)
    pid_file = tmp_path / "child.pid"
    process = cli.popen("run", "--", str(tool), str(pid_file))
    deadline = time.monotonic() + 30
    while not (pid_file.exists() and pid_file.read_text().strip()):
        assert time.monotonic() < deadline, "the tool did not start"
        time.sleep(0.05)
    child = int(pid_file.read_text())
    try:
        # Execute: Ctrl-C on aicache's terminal process group.
        os.killpg(process.pid, signal.SIGINT)
        process.communicate(timeout=60)
        # Assert: aicache reports the interrupt and the tool's child is gone too.
        assert process.returncode == 130
        assert not alive(child)
    finally:
        if alive(child):
            os.kill(child, signal.SIGKILL)


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie waiting for its parent counts as ended)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


def test_terminating_aicache_ends_the_command_and_what_it_started(cli: Cli, tmp_path: Path) -> None:
    # Prepare: a tool (with a child of its own) running through aicache.
    tool = tmp_path / "stubborn"
    tool.write_text(IGNORES_SIGINT)
    tool.chmod(0o755)
    pid_file = tmp_path / "child.pid"
    process = cli.popen("run", "--", str(tool), str(pid_file))
    deadline = time.monotonic() + 30
    while not (pid_file.exists() and pid_file.read_text().strip()):
        assert time.monotonic() < deadline, "the tool did not start"
        time.sleep(0.05)
    child = int(pid_file.read_text())
    try:
        # Execute: `kill PID` of aicache alone, as a supervisor or a closed terminal would.
        process.terminate()
        process.communicate(timeout=60)
        # Assert
        assert process.returncode != 0
        assert not alive(child)
        assert entries(cli) == 0
    finally:
        if alive(child):
            os.kill(child, signal.SIGKILL)
