"""The warm semantic service with real processes: started by a miss, one per home, serving
later misses warm, stopping when idle, asked or killed, and never costing the user an answer.

Refusing a client of another uid (SO_PEERCRED) cannot be shown here: it takes a
second user account; the test below reads the peer's uid of a real socket pair.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

from aicache.local import semantic_client as client
from aicache.local.semantic_client import PID_NAME, SOCKET_NAME
from aicache.local.store import Store
from tests.conftest import Cli
from tests.test_semantic_cli_e2e import PARAPHRASE, STORED, decision, semantic_cli

__all__ = ["decision", "semantic_cli"]  # the fixtures this module shares

pytestmark = pytest.mark.e2e


def _daemons(home: Path) -> list[int]:
    """The pids of this home's semantic service processes, from /proc."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            words = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if client.DAEMON_MODULE.encode() in words and os.fsencode(home) in words:
            found.append(int(entry.name))
    return found


def _gone(pid: int, within_s: float = 20.0) -> bool:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        if not Path(f"/proc/{pid}").exists():
            return True
        time.sleep(0.05)
    return False


@pytest.fixture
def service_home(home: Path) -> Iterator[Path]:
    """An aicache home whose semantic service, if one was started, is stopped afterwards."""
    yield home
    client.stop(home)
    for pid in _daemons(home):  # one a test killed the socket of: ended by its id
        os.kill(pid, signal.SIGTERM)


@pytest.mark.needs_extra("semantic")
def test_a_miss_starts_the_service_and_the_next_miss_is_served_warm(semantic_cli: Cli) -> None:
    cli = semantic_cli
    # Execute: a miss stores an answer, a paraphrase is asked, with imports listed
    first = cli.run("run", "--", "fake-ai", "ask", *STORED.split(), PYTHONPROFILEIMPORTTIME="1")
    status_1 = json.loads(cli.run("semantic", "service", "status", "--json").stdout)
    second = cli.run(
        "run", "--", "fake-ai", "ask", *PARAPHRASE.split(), PYTHONPROFILEIMPORTTIME="1"
    )
    status_2 = json.loads(cli.run("semantic", "service", "status", "--json").stdout)
    # Assert: one service, which answered both lookups and holds the stored prompt
    assert first.returncode == 0 and second.returncode == 0, second.stderr.decode()[-2000:]
    assert second.stdout.decode().startswith(f"Answer to: ask {STORED}\n")
    assert "semantic hit (score" in second.stderr.decode()
    assert status_1["running"] and status_2["running"] and status_1["pid"] == status_2["pid"]
    assert status_2["served"] == status_1["served"] + 1 and status_2["vectors"] == 1
    assert _daemons(cli.home) == [status_1["pid"]]
    # the CLI processes loaded no model: numpy was imported by the service only
    for result in (first, second):
        imported = [line.split("|")[-1].strip() for line in result.stderr.decode().splitlines()]
        assert "numpy" not in imported and "aicache.local.semantic_client" in imported
    # the socket and its folder are the owner's only
    assert (cli.home / SOCKET_NAME).stat().st_mode & 0o777 == 0o600
    assert cli.home.stat().st_mode & 0o777 == 0o700


@pytest.mark.needs_extra("semantic")  # the service loads the embedder at start
def test_clients_racing_to_start_it_start_one(service_home: Path) -> None:
    # Execute: four misses at once find no service and start one each
    errors: list[BaseException] = []

    def connect() -> None:
        try:
            client.connect(service_home, wait_s=60)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=connect) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # Assert: all were answered, by the one service left
    assert errors == []
    found = client.status(service_home)
    assert found is not None
    deadline = time.monotonic() + 20  # the starts that lost may still be on their way out
    while _daemons(service_home) != [found.pid] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _daemons(service_home) == [found.pid]
    assert (service_home / PID_NAME).read_text().strip() == str(found.pid)


@pytest.mark.needs_extra("semantic")  # the service loads the embedder at start
def test_an_idle_service_exits_and_removes_its_files(service_home: Path) -> None:
    # Prepare: a short idle time
    with Store.open(service_home) as store:
        store.set_setting("semantic-service-idle", "1s")
    client.connect(service_home, wait_s=60)
    found = client.status(service_home)
    assert found is not None and found.idle_s == 1.0
    # Execute: nothing asks it
    exited = _gone(found.pid)
    # Assert
    assert exited
    assert not (service_home / SOCKET_NAME).exists() and not (service_home / PID_NAME).exists()


@pytest.mark.needs_extra("semantic")  # the service loads the embedder at start
def test_a_killed_service_is_replaced_and_its_stale_files_removed(service_home: Path) -> None:
    # Prepare: a service killed without a chance to clean up
    client.connect(service_home, wait_s=60)
    first = client.status(service_home)
    assert first is not None
    os.kill(first.pid, signal.SIGKILL)
    assert _gone(first.pid) and (service_home / SOCKET_NAME).exists()
    # Execute: the next miss finds the stale socket
    client.connect(service_home, wait_s=60)
    second = client.status(service_home)
    assert second is not None
    os.kill(second.pid, signal.SIGKILL)
    assert _gone(second.pid)
    after_kill = client.status(service_home)
    # Assert: a new service answered; status cleaned the second one's files
    assert second.pid != first.pid
    assert after_kill is None
    assert not (service_home / SOCKET_NAME).exists() and not (service_home / PID_NAME).exists()


@pytest.mark.needs_extra("semantic")  # the service loads the embedder at start
def test_status_and_stop_commands(cli: Cli) -> None:
    # Prepare
    client.connect(cli.home, wait_s=60)
    # Execute
    running = cli.run("semantic", "service", "status")
    stopped = cli.run("semantic", "service", "stop")
    after = cli.run("semantic", "service", "status")
    again = cli.run("semantic", "service", "stop")
    # Assert
    pid = int(stopped.stdout.decode().split("process ")[1].split(")")[0])
    assert f"as process {pid}" in " ".join(running.stdout.decode().split())
    assert stopped.returncode == 0 and _gone(pid)
    assert "not running" in after.stdout.decode()
    assert again.returncode == 0 and "was not running" in again.stdout.decode()


def _raw(home: Path, data: bytes) -> dict[str, object]:
    with socket.socket(socket.AF_UNIX) as conn:
        conn.settimeout(30)
        conn.connect(str(home / SOCKET_NAME))
        conn.sendall(data)
        conn.shutdown(socket.SHUT_WR)
        reply = b""
        while chunk := conn.recv(65536):
            reply += chunk
    parsed = json.loads(reply)
    assert isinstance(parsed, dict)
    return parsed


@pytest.mark.needs_extra("semantic")  # the service loads the embedder at start
def test_bad_requests_get_an_error_and_the_service_keeps_serving(service_home: Path) -> None:
    # Prepare
    client.connect(service_home, wait_s=60)
    # Execute
    replies = [
        _raw(service_home, data)
        for data in (
            b"{not json\n",
            b"\xff\xfe\n",
            b"[1, 2]\n",
            b'{"op": "fly"}\n',
            b'{"op": "lookup", "prompt": 5, "frame": "f", "now": 1}\n',
        )
    ]
    pong = client.request(service_home, {"op": "ping"})
    # Assert
    assert [(r["ok"], r["error"]) for r in replies] == [(False, "bad-request")] * 5
    assert "not a JSON request" in str(replies[0]["message"])
    assert pong["ok"] is True


@contextmanager
def _broken_service(home: Path, replies: list[bytes]) -> Iterator[None]:
    """A socket where the service should be that answers each connection with the next of
    ``replies``, then closes: a service dying mid-request, or sending garbage."""
    home.mkdir(mode=0o700, exist_ok=True)
    listener = socket.socket(socket.AF_UNIX)
    folder = os.open(home, os.O_RDONLY | os.O_DIRECTORY)
    try:
        listener.bind(f"/proc/self/fd/{folder}/{SOCKET_NAME}")
    finally:
        os.close(folder)
    listener.listen(4)
    listener.settimeout(30)

    def answer() -> None:
        for reply in replies:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            with conn:
                conn.recv(65536)
                conn.sendall(reply)

    thread = threading.Thread(target=answer)
    thread.start()
    try:
        yield
    finally:
        listener.close()
        thread.join()


PONG = b'{"ok": true}\n'


@pytest.mark.parametrize(
    "replies",
    [
        [b""],
        [b"garbage\n"],
        [b'{"ok": false, "error": "failed"}\n'],
        [PONG, b""],
        [PONG, b'{"ok": true, "vector": "not base64!"}\n'],
    ],
    ids=["dies", "garbage", "fails", "dies-mid-lookup", "garbled-vector"],
)
def test_a_broken_service_leaves_the_call_exact_only_with_one_warning(
    cli: Cli, replies: list[bytes]
) -> None:
    # Prepare
    assert cli.run("config", "set", "semantic-commands", "fake-ai ask").returncode == 0
    with _broken_service(cli.home, replies):
        # Execute
        result = cli.run("run", "--", "fake-ai", "ask", *STORED.split())
    again = cli.run("run", "--", "fake-ai", "ask", *STORED.split())
    # Assert: the tool ran and answered; one warning line, no traceback; the answer was kept
    assert result.returncode == 0
    assert result.stdout.decode().startswith(f"Answer to: ask {STORED}\n")
    lines = result.stderr.decode().splitlines()
    notes = [line for line in lines if line.startswith("aicache:")]
    assert len(notes) == 1 and "semantic lookup failed" in notes[0], lines
    assert "Traceback" not in result.stderr.decode()
    assert again.stdout == result.stdout and cli.invocations() == 1


def test_the_peer_uid_is_read_from_the_socket() -> None:
    from aicache.tasks.semantic_hit.service import peer_uid

    left, right = socket.socketpair(socket.AF_UNIX)
    with left, right:
        assert peer_uid(left) == os.getuid()


def test_the_vectors_in_memory_follow_the_store(home: Path) -> None:
    from aicache.cli.semantic_daemon import StoreBackend
    from aicache.local import semantic_store as semantic
    from aicache.local.cache import Event, NewEntry, clear, make_key, record
    from aicache.local.home_key import home_key
    from aicache.tasks.semantic_hit.service import FrameVectors

    def stored(store: Store, prompt: str, frame: str) -> None:
        key = make_key(["llm", prompt], None, {"scope": "global"}, secret=home_key(home))
        event = Event("llm", key.event_hash, "miss", 1.0, 10, 0, True, "llm")
        record(store, event, entry=NewEntry(key, b"answer", b"", 0, 1.0, None))
        vector = np.full(4, 0.5, dtype="<f2").tobytes()
        semantic.index_entry(
            store, key=key.digest, frame=frame, tool="llm", scope="global", prompt=prompt,
            vector=vector,
        )  # fmt: skip

    with Store.open(home) as store:
        backend = StoreBackend(home, store)
        index = FrameVectors(4)
        stored(store, "first", "f")
        stored(store, "other frame", "g")
        index.refresh(backend)
        loaded = list(index.frame(backend, "f").prompts)
        # Execute: a row appended, then one deleted and another written in its place
        stored(store, "second", "f")
        index.refresh(backend)
        appended = list(index.frame(backend, "f").prompts)
        store.conn.execute("DELETE FROM cache_entries WHERE key IN (SELECT key FROM "
                           "semantic_entries WHERE prompt = 'second')")  # fmt: skip
        stored(store, "third", "f")
        index.refresh(backend)
        replaced = list(index.frame(backend, "f").prompts)
        clear(store)
        index.refresh(backend)
        cleared = list(index.frame(backend, "f").prompts)
    # Assert
    assert loaded == ["first"]
    assert appended == ["first", "second"]
    assert replaced == ["first", "third"]
    assert cleared == []


@pytest.mark.needs_extra("semantic")
def test_a_newly_served_decision_is_used_by_the_running_service(
    semantic_cli: Cli, decision: list[np.ndarray]
) -> None:
    from aicache.registry import ModelRegistry

    cli = semantic_cli
    # Prepare: a hit through the running service
    assert cli.run("run", "--", "fake-ai", "ask", *STORED.split()).returncode == 0
    served = cli.run("run", "--", "fake-ai", "ask", *PARAPHRASE.split())
    assert "semantic hit" in served.stderr.decode()
    pid = json.loads(cli.run("semantic", "service", "status", "--json").stdout)["pid"]
    # Execute: a newer version that never serves (its bias far below zero) is registered
    never = [np.array(p, copy=True) for p in decision]
    never[1] = np.array([-1000.0])
    with ModelRegistry(cli.home / "registry") as registry:
        run = registry.start_run("semantic-hit", {"plan": {}, "federation": "test"})
        registry.register(
            "semantic-hit", never, run_id=run, round=2, parent=None, strategy="fedavg",
            strategy_config={}, num_clients=1, metrics={}, privacy={},
        )  # fmt: skip
    result = cli.run("run", "--", "fake-ai", "ask", *PARAPHRASE.split(), "please")
    # Assert: the same service, with the new decision, did not serve
    assert result.returncode == 0
    assert result.stdout.decode().startswith(f"Answer to: ask {PARAPHRASE} please\n")
    assert "semantic hit" not in result.stderr.decode()
    assert json.loads(cli.run("semantic", "service", "status", "--json").stdout)["pid"] == pid


@pytest.mark.needs_extra("semantic")  # the service loads the embedder at start
def test_the_service_exits_when_its_home_is_deleted(service_home: Path) -> None:
    import shutil

    # Prepare
    client.connect(service_home, wait_s=60)
    found = client.status(service_home)
    assert found is not None
    # Execute
    shutil.rmtree(service_home)
    # Assert
    assert _gone(found.pid)


@pytest.mark.needs_extra("semantic")  # the service loads the embedder at start
def test_a_removed_socket_of_a_live_service_is_replaced(service_home: Path) -> None:
    # Prepare: the socket file removed while its service still runs (until its next check)
    client.connect(service_home, wait_s=60)
    first = client.status(service_home)
    assert first is not None
    (service_home / SOCKET_NAME).unlink()
    # Execute: a miss now finds no socket, and a lock still held
    client.connect(service_home, wait_s=60)
    second = client.status(service_home)
    # Assert: the old one left, a new one answers
    assert _gone(first.pid)
    assert second is not None and second.pid != first.pid


@pytest.mark.needs_extra("semantic")
def test_without_a_decision_the_service_still_keeps_vectors_and_gives_no_warning(
    cli: Cli,
) -> None:
    from aicache.tasks.semantic_hit.decision import TASK_NAME

    # Prepare: the embedder but no semantic-hit model in the home (nor shipped, here)
    if (
        Path(client.__file__).parents[1] / "registry" / "shipped_models" / f"{TASK_NAME}.npz"
    ).exists():
        pytest.skip("a semantic-hit model ships with this install")
    assert cli.run("config", "set", "semantic-commands", "fake-ai ask").returncode == 0
    # Execute: a question with nothing near, then a paraphrase that needs the decision
    first = cli.run("run", "--", "fake-ai", "ask", *STORED.split())
    second = cli.run("run", "--", "fake-ai", "ask", *PARAPHRASE.split())
    # Assert: both ran and were kept with their vectors; the missing model is a notice
    assert first.returncode == second.returncode == 0
    assert second.stdout.decode().startswith(f"Answer to: ask {PARAPHRASE}\n")
    said = (first.stderr + second.stderr).decode()
    assert "warning" not in said and "Traceback" not in said
    assert "semantic hits are off" in second.stderr.decode()
    assert f"no {TASK_NAME} model" in second.stderr.decode()
    with Store.open(cli.home) as store:
        assert store.conn.execute("SELECT count(*) FROM semantic_entries").fetchone()[0] == 2


@pytest.mark.needs_extra("semantic")
def test_one_forward_pass_gives_the_sentence_and_word_piece_vectors() -> None:
    from aicache.features.embedding import load_embedder

    embedder = load_embedder()
    texts = [STORED, PARAPHRASE, "ls"]
    # Execute
    vectors, tokens = embedder.embed_with_tokens(texts)
    # Assert: the same as the two passes
    np.testing.assert_allclose(vectors, embedder.embed(texts), atol=1e-5)
    for (words, found), (words_2, found_2) in zip(
        tokens, embedder.token_vectors(texts), strict=True
    ):
        assert words == words_2
        np.testing.assert_allclose(found, found_2, atol=1e-5)


@pytest.mark.needs_extra("semantic")
def test_forget_stops_the_service_that_held_the_erased_store(semantic_cli: Cli) -> None:
    cli = semantic_cli
    # Prepare: a miss starts the service, which opens the store
    assert cli.run("run", "--", "fake-ai", "ask", *STORED.split()).returncode == 0
    status = json.loads(cli.run("semantic", "service", "status", "--json").stdout)
    assert status["running"]
    # Execute
    erased = cli.run("privacy", "forget", "--yes")
    # Assert: the erased store lives on in no process
    assert erased.returncode == 0, erased.stderr
    assert _gone(status["pid"]) and _daemons(cli.home) == []
