"""The launch path of a deployed node: ClientApps are forked from one warm SuperExec.

A real SuperLink (TLS, node authentication) and one real SuperNode on
loopback run two rounds (four messages to the node). Every message's
ClientApp must be a child forked from the same warm process, alive before
the run and after it: no message starts a new interpreter. Every process
started is ended.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import psutil
import pytest

from tests.conftest import Cli
from tests.test_deploy_e2e import _free_port, _started_under

pytestmark = [pytest.mark.e2e, pytest.mark.needs_extra("server")]

_FORKED = re.compile(r"ClientApp task started in pid (\d+), forked from warm pid (\d+)")


def _warm_superexec(home: Path) -> psutil.Process:
    """The node's SuperExec: the one child of its SuperNode that runs aicache's entry point."""
    record = json.loads((home / "federation" / "supernode.pid").read_text())
    supernode = psutil.Process(int(record["pid"]))
    found = [
        child
        for child in supernode.children()
        if "aicache.deploy.superexec" in " ".join(child.cmdline())
    ]
    assert len(found) == 1, [c.cmdline() for c in supernode.children()]
    return found[0]


def test_every_message_is_forked_from_one_warm_process(tmp_path: Path) -> None:
    (tmp_path / "user").mkdir()
    (tmp_path / "work").mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AICACHE_", "XDG_"))}
    env.update(AICACHE_HOME=str(tmp_path / "operator-home"), HOME=str(tmp_path / "user"))
    cli = Cli(
        home=tmp_path / "operator-home", env=env, counter=tmp_path / "n", cwd=tmp_path / "work"
    )
    root, home = tmp_path / "fed", tmp_path / "home-alice"
    created = cli.run(
        "server", "init", str(root), "--host", "127.0.0.1", "--port", str(_free_port())
    )
    assert created.returncode == 0, created.stderr.decode()
    try:
        assert cli.run("server", "start", str(root), "--detach", timeout=120).returncode == 0
        bundle = tmp_path / "work" / "alice.bundle"
        enrolled = cli.run("server", "enroll", "alice", "--dir", str(root), "-o", str(bundle))
        assert enrolled.returncode == 0, enrolled.stderr.decode()
        from aicache.simulation.sources import SyntheticSource

        history = tmp_path / "alice.history"
        items = SyntheticSource(seed=7, clients=1).history(0)
        history.write_text("".join(f"{item.command}\n" for item in items))
        imported = cli.run(
            "import", "history", str(history), "--shell", "bash", AICACHE_HOME=str(home)
        )
        assert imported.returncode == 0, imported.stderr.decode()
        joined = cli.run("join", str(bundle), "--detach", timeout=90, AICACHE_HOME=str(home))
        assert joined.returncode == 0, joined.stderr.decode()
        warm = _warm_superexec(home)
        born = warm.create_time()
        log = home / "federation" / "supernode.log"
        offset = log.stat().st_size

        ran = cli.run(
            "server", "run", str(root), "--rounds", "2", "--min-clients", "1",
            "--round-timeout", "120", "--wait", "600", timeout=700,
        )  # fmt: skip
        assert ran.returncode == 0, (ran.stdout + ran.stderr).decode()

        forks = _FORKED.findall(log.read_bytes()[offset:].decode(errors="replace"))
        # Two rounds, each a train and an evaluate message, each its own ClientApp child.
        assert len(forks) >= 4, forks
        assert {int(parent) for _, parent in forks} == {warm.pid}
        assert len({child for child, _ in forks}) == len(forks)
        assert warm.is_running() and warm.create_time() == born
        assert _warm_superexec(home).pid == warm.pid
        assert "flwr-clientapp" not in " ".join(warm.cmdline())
        sent = (home / "federation" / "sent.jsonl").read_text().splitlines()
        assert [json.loads(line)["round"] for line in sent] == [1, 2]
    finally:
        cli.run("leave", AICACHE_HOME=str(home))
        cli.run("server", "stop", str(root))
        psutil.wait_procs(_started_under(tmp_path), timeout=15)
        left = _started_under(tmp_path)
        assert not left, f"processes left running: {[p.cmdline() for p in left]}"


def test_an_idle_node_polls_at_flowers_pace_and_a_busy_one_at_aicaches(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import time

    from aicache.deploy import supernode
    from aicache.deploy.polling import IDLE_NODE_POLL

    asked: list[float] = []
    monkeypatch.setattr(time, "sleep", asked.append)
    clock = supernode._CappedTime(0.2)
    clock.sleep(3)  # Flower's idle poll, no message yet
    clock.sleep(0.5)  # Flower's wait for a ClientApp's reply
    clock.busy()
    clock.sleep(3)
    clock.sleep(0.5)
    assert asked == [IDLE_NODE_POLL, 0.5, 0.2, 0.2]


def test_the_superexec_sleeps_until_woken_and_keeps_a_wakeup_sent_while_busy(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import signal
    import threading

    from aicache.deploy import superexec

    monkeypatch.setattr(superexec, "IDLE_SUPEREXEC_POLL", 600.0)
    previous = signal.getsignal(signal.SIGUSR1)
    clock = superexec._WakeableTime()
    try:
        os.kill(os.getpid(), signal.SIGUSR1)  # sent while "busy": kept for the next sleep
        kept = clock.sleep(0.1)
        timer = threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGUSR1))
        timer.start()
        woken = clock.sleep(0.1)  # returns on the wake-up, not after the 600 s fallback
        timer.join()
        assert (kept, woken) == (True, True)
    finally:
        clock.close()
        signal.signal(signal.SIGUSR1, previous)
