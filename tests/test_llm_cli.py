"""End to end with a real third-party AI CLI: Simon Willison's ``llm`` and its offline Markov model.

``llm`` and ``llm-markov`` come from PyPI with the dev extras; each test gives
llm its own user folder (``LLM_USER_PATH``), where llm keeps its default
model and its log database. The log database tells whether llm really ran.
"""

from __future__ import annotations

import json
import os
import select
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import Cli

pytestmark = pytest.mark.e2e

BIN = Path(sys.executable).parent
AICACHE = [sys.executable, "-m", "aicache"]
TEXT = "the cat sat on the mat and the dog sat on the log"


@pytest.fixture
def llm(cli: Cli, tmp_path: Path) -> Cli:
    """The ``cli`` fixture with llm on PATH, its own user folder, and markov as default model."""
    assert (BIN / "llm").is_file(), "llm is missing: install the dev extras (pip install -e .[dev])"
    cli.env.update(
        LLM_USER_PATH=str(tmp_path / "llm-user"),
        PATH=os.pathsep.join([str(BIN), cli.env["PATH"]]),
    )
    cli.env.pop("LLM_MODEL", None)
    chosen = subprocess.run(
        [BIN / "llm", "models", "default", "markov"], env=cli.env, capture_output=True, timeout=120
    )
    assert chosen.returncode == 0, chosen.stderr
    return cli


def llm_runs(cli: Cli) -> int:
    """How many prompts llm has answered (it logs each one)."""
    database = Path(cli.env["LLM_USER_PATH"]) / "logs.db"
    if not database.exists():
        return 0
    with sqlite3.connect(database) as conn:
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
        table = "turns" if "turns" in tables else "responses"  # llm >= 0.36 logs turns
        count = int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
    conn.close()
    return count


def cached_tools(cli: Cli) -> list[list[str]]:
    listed = cli.run("list", "--json")
    assert listed.returncode == 0, listed.stderr
    return [entry["argv"] for entry in json.loads(listed.stdout)]


class Terminal:
    """A command running on a new pseudo-terminal, driven like a person at a keyboard."""

    def __init__(self, argv: list[str], env: dict[str, str], cwd: Path) -> None:
        self.leader, follower = os.openpty()
        self.tty = os.ttyname(follower)
        try:
            self.process = subprocess.Popen(
                argv,
                stdin=follower,
                stdout=follower,
                stderr=follower,
                env=env,
                cwd=cwd,
                start_new_session=True,
            )
        finally:
            os.close(follower)
        self.output = b""

    def read_until(self, marker: bytes, timeout: float = 120) -> bytes:
        """Read the terminal until ``marker`` shows (or the command ends)."""
        deadline = time.monotonic() + timeout
        while marker not in self.output and time.monotonic() < deadline:
            ready, _, _ = select.select([self.leader], [], [], 0.5)
            if ready:
                try:
                    chunk = os.read(self.leader, 65536)
                except OSError:  # EIO: the command closed the terminal
                    break
                if not chunk:
                    break
                self.output += chunk
        return self.output

    def type(self, text: str) -> None:
        os.write(self.leader, text.encode())

    def finish(self) -> tuple[int, bytes]:
        """Wait for the command to end; its exit status and everything it printed."""
        self.read_until(b"\0never\0")
        try:
            code = self.process.wait(timeout=120)
        finally:
            self.close()
        return code, self.output.replace(b"\r\n", b"\n")

    def close(self) -> None:
        """End the command (and anything it started) if it still runs; release the terminal."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        if self.leader >= 0:
            os.close(self.leader)
            self.leader = -1


def in_terminal(cli: Cli, *args: str) -> tuple[int, bytes]:
    return Terminal([*AICACHE, "run", "--", *args], cli.env, cli.cwd).finish()


def test_a_prompt_is_answered_once_then_replayed_without_starting_llm(llm: Cli) -> None:
    # Execute
    first = llm.run("run", "--", "llm", TEXT)
    second = llm.run("run", "--", "llm", TEXT)
    other_model_flag = llm.run("run", "--", "llm", "-m", "markov", TEXT)
    # Assert
    assert first.returncode == second.returncode == other_model_flag.returncode == 0
    assert first.stdout.strip() and second.stdout == first.stdout
    assert llm_runs(llm) == 2  # the hit did not start llm; `-m markov` is another question
    assert cached_tools(llm) == [["llm", "-m", "markov", TEXT], ["llm", TEXT]]


def test_a_prompt_piped_to_llm_is_part_of_the_key(llm: Cli) -> None:
    one = llm.run("run", "--", "llm", "continue:", input=b"one fish two fish")
    two = llm.run("run", "--", "llm", "continue:", input=b"red fish blue fish")
    one_again = llm.run("run", "--", "llm", "continue:", input=b"one fish two fish")
    assert one.returncode == two.returncode == one_again.returncode == 0
    assert one_again.stdout == one.stdout
    assert llm_runs(llm) == 2


def test_logs_and_models_run_on_the_terminal_and_are_never_replayed(llm: Cli) -> None:
    # Prepare
    assert llm.run("run", "--", "llm", "alpha beta alpha gamma").returncode == 0
    # Execute
    first_code, first_logs = in_terminal(llm, "llm", "logs", "-n", "1")
    assert llm.run("run", "--", "llm", "delta epsilon delta zeta").returncode == 0
    second_code, second_logs = in_terminal(llm, "llm", "logs", "-n", "1")
    models_code, models = in_terminal(llm, "llm", "models")
    # Assert: the second `llm logs` shows the new prompt, not a replay of the first.
    assert first_code == second_code == models_code == 0
    assert b"alpha beta alpha gamma" in first_logs
    assert b"delta epsilon delta zeta" in second_logs
    assert b"markov" in models.lower()
    assert cached_tools(llm) == [
        ["llm", "delta epsilon delta zeta"],
        ["llm", "alpha beta alpha gamma"],
    ]


def test_chat_is_a_live_session_on_the_terminal_every_time(llm: Cli) -> None:
    for turn in range(2):
        # Prepare / Execute: start a chat through aicache, as a person would.
        session = Terminal([*AICACHE, "run", "--", "llm", "chat"], llm.env, llm.cwd)
        try:
            session.read_until(b"exit or quit")
            # Assert: llm itself holds the terminal on stdin, stdout and stderr.
            pid = session.process.pid
            fds = [Path(f"/proc/{pid}/fd/{fd}").readlink() for fd in (0, 1, 2)]
            assert fds == [Path(session.tty)] * 3
            session.type("one two one three one two\n")
            time.sleep(0.5)
            session.type("quit\n")
            code, output = session.finish()
        finally:
            session.close()
        assert code == 0, output
        assert b"Chatting with markov" in output
        assert llm_runs(llm) == turn + 1  # the session really ran, both times
    assert cached_tools(llm) == []


def test_changing_the_default_model_changes_the_key(llm: Cli) -> None:
    # Prepare: an answer from markov, then a default model that needs an API key.
    assert llm.run("run", "--", "llm", TEXT).returncode == 0
    switched = llm.run("run", "--", "llm", "models", "default", "gpt-4o-mini")
    # Execute
    after = llm.run("run", "--", "llm", TEXT, OPENAI_API_KEY="")
    # Assert: llm ran with the new model (and failed without a key); nothing was replayed.
    assert switched.returncode == 0
    assert (Path(llm.env["LLM_USER_PATH"]) / "default_model.txt").read_text().strip() == (
        "gpt-4o-mini"
    )
    assert after.returncode != 0
    assert b"key" in after.stderr.lower()
    assert llm_runs(llm) == 1


def test_llm_calls_that_do_not_read_input_leave_it_to_the_shell(llm: Cli) -> None:
    # Prepare: a loop that reads its lines while calling llm through aicache each time.
    aicache = " ".join(AICACHE)
    script = (
        'printf "a\\nb\\nc\\n" | while read x; do '
        f'{aicache} run -- llm models default; echo "got $x"; done'
    )
    # Execute
    result = subprocess.run(
        ["sh", "-c", script], env=llm.env, cwd=llm.cwd, capture_output=True, timeout=300
    )
    # Assert
    assert result.returncode == 0, result.stderr
    assert result.stdout.decode().split() == [
        *("markov", "got", "a"),
        *("markov", "got", "b"),
        *("markov", "got", "c"),
    ]
