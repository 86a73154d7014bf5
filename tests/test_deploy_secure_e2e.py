"""Secure aggregation on a deployed federation, on loopback with real Flower processes: a
SuperLink started by `aicache server start` (TLS, node authentication), three real
SuperNodes on their own stores, and the CKKS key authority as a process of its own.

- SecAgg+ with distributed DP: one round, each node's update masked (the privacy report
  says so), the version registered with the accounted ε.
- CKKS: the server holds only the public context (it refuses the secret one), the nodes
  the secret one; a round aggregates ciphertexts and a node decrypts the sum.
- SecAgg+ with central DP and a node killed after key sharing: the round completes with
  the two survivors (the reconstruction threshold); with two of three killed it stops
  loudly, naming the stage, and registers nothing.

Every process started is ended.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator

import psutil
import pytest

from tests.conftest import Cli
from tests.test_deploy_e2e import Federation, _fill_store, _free_port, _started_under, _text

pytestmark = pytest.mark.e2e

NODES = ("alice", "bob", "carol")
# Each protocol stage waits this long for replies; a killed node is waited for as long,
# so the runs with one are given less (enough for a live node on a busy machine).
ROUND_TIMEOUT, DROPOUT_TIMEOUT = "120", "60"


@pytest.fixture(scope="module")
def federation(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Federation]:
    base = tmp_path_factory.mktemp("secure")
    (base / "user").mkdir()
    (base / "work").mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AICACHE_", "XDG_"))}
    env.update(AICACHE_HOME=str(base / "operator-home"), HOME=str(base / "user"))
    cli = Cli(home=base / "operator-home", env=env, counter=base / "count", cwd=base / "work")
    fed = Federation(cli=cli, root=base / "fed", work=base / "work")
    created = fed.server("init", str(fed.root), "--host", "127.0.0.1", "--port", str(_free_port()))
    assert created.returncode == 0, created.stderr.decode()
    # The key authority, as the operator would run it on a host of its own.
    keys = base / "key-authority"
    made = fed.server("key-authority", str(keys))
    assert made.returncode == 0, _text(made)
    try:
        started = fed.server("start", str(fed.root), "--detach")
        assert started.returncode == 0, started.stderr.decode()
        for index, name in enumerate(NODES):
            enrolled = fed.server("enroll", name, "--dir", str(fed.root))
            assert enrolled.returncode == 0, enrolled.stderr.decode()
            _fill_store(fed, name, index)
            joined = fed.node(
                name,
                "join",
                str(fed.bundle(name)),
                "--detach",
                "--he-key",
                str(keys / "clients.ckks"),
            )
            assert joined.returncode == 0, _text(joined)
        yield fed
    finally:
        for name in NODES:
            fed.node(name, "leave")
        fed.server("stop", str(fed.root))
        psutil.wait_procs(_started_under(base), timeout=15)
        left = _started_under(base)
        for process in left:
            process.kill()
        assert not left, f"processes left running: {[p.cmdline() for p in left]}"


def _run(federation: Federation, *flags: str, timeout: str = ROUND_TIMEOUT) -> str:
    ran = federation.server(
        "run",
        str(federation.root),
        "--rounds",
        "1",
        "--min-clients",
        "3",
        "--round-timeout",
        timeout,
        "--wait",
        "600",
        *flags,
        timeout=700,
    )
    text = _text(ran)
    return f"exit {ran.returncode}: {text}"


def _versions(federation: Federation) -> list[dict[str, object]]:
    listed = federation.cli.run(
        "models", "list", "--json", "--registry", str(federation.root / "registry")
    )
    return list(json.loads(listed.stdout))


def _report(federation: Federation, name: str) -> dict[str, object]:
    shown = federation.node(name, "privacy", "report", "--json")
    assert shown.returncode == 0, _text(shown)
    tasks = json.loads(shown.stdout)["tasks"]
    assert len(tasks) == 1
    return dict(tasks[0])


def test_secagg_with_distributed_dp_masks_every_update(federation: Federation) -> None:
    outcome = _run(
        federation, "--secure", "secagg", "--dp", "distributed", "--noise-multiplier", "1.0"
    )
    assert outcome.startswith("exit 0"), outcome
    [version] = _versions(federation)
    assert version["num_clients"] == 3
    privacy = version["privacy"]
    assert isinstance(privacy, dict) and privacy["dp"] == "distributed"
    assert 0 < float(privacy["epsilon"]) < float("inf")
    for name in NODES:
        assert _report(federation, name)["secure"] == {"secagg": 1}
    shown = _text(federation.node("alice", "privacy", "report"))
    assert "1 update(s) masked with SecAgg+: the server saw only the sum" in shown


def test_ckks_server_holds_only_the_public_key(federation: Federation) -> None:
    keys = federation.root.parent / "key-authority"
    refused = federation.server("he-key", str(keys / "clients.ckks"), "--dir", str(federation.root))
    assert refused.returncode != 0
    assert "holds the CKKS secret key: the server must never have it" in _text(refused)
    assert "Traceback" not in _text(refused)
    missing = _run(federation, "--secure", "he")
    assert missing.startswith("exit 2"), missing  # a usage error, before anything runs
    assert "needs the federation's public CKKS context" in missing
    installed = federation.server(
        "he-key", str(keys / "server.ckks"), "--dir", str(federation.root)
    )
    assert installed.returncode == 0, _text(installed)
    outcome = _run(federation, "--secure", "he")
    assert outcome.startswith("exit 0"), outcome
    newest = _versions(federation)[-1]
    assert newest["num_clients"] == 3 and newest["round"] == 1
    assert 0.0 < float(newest["metrics"]["eval.top1"]) <= 1.0  # type: ignore[index]
    for name in NODES:
        assert dict(_report(federation, name)["secure"]).get("he") == 1  # type: ignore[call-overload]


def _kill_after_key_sharing(federation: Federation, names: tuple[str, ...]) -> threading.Thread:
    """Kill each named SuperNode (and its ClientApp) once key sharing is over: when it
    receives its third training message of the run (setup, key sharing, then the request
    for its masked update, which it never answers)."""
    offsets = {}
    for name in names:
        log = federation.home(name) / "federation" / "supernode.log"
        offsets[name] = log.stat().st_size

    def watch() -> None:
        pending = set(names)
        deadline = time.monotonic() + 300
        while pending and time.monotonic() < deadline:
            for name in sorted(pending):
                folder = federation.home(name) / "federation"
                with (folder / "supernode.log").open("rb") as handle:
                    handle.seek(offsets[name])
                    text = handle.read().decode(errors="replace")
                if text.count("Receiving: train message") >= 3:
                    pid = json.loads((folder / "supernode.pid").read_text())["pid"]
                    node = psutil.Process(int(pid))
                    tree = [node, *node.children(recursive=True)]
                    for process in tree:
                        process.kill()
                    psutil.wait_procs(tree, timeout=10)
                    pending.discard(name)
            time.sleep(0.05)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


def _rejoin(federation: Federation, name: str) -> None:
    federation.node(name, "leave")
    joined = federation.node(name, "join", str(federation.bundle(name)), "--detach")
    assert joined.returncode == 0, _text(joined)


def _secagg_sent(federation: Federation, name: str) -> int:
    shown = federation.node(name, "privacy", "report", "--json")
    tasks = json.loads(shown.stdout)["tasks"]
    return int(tasks[0]["secure"].get("secagg", 0)) if tasks else 0


def test_secagg_round_survives_a_node_killed_after_key_sharing(federation: Federation) -> None:
    before = len(_versions(federation))
    sent = {name: _secagg_sent(federation, name) for name in ("alice", "carol")}
    watcher = _kill_after_key_sharing(federation, ("carol",))
    outcome = _run(federation, "--secure", "secagg", "--dp", "central", "--noise-multiplier", "1.0")
    watcher.join(timeout=60)
    assert outcome.startswith("exit 0"), outcome
    versions = _versions(federation)
    assert len(versions) == before + 1
    assert versions[-1]["num_clients"] == 2  # the survivors' masked sum
    assert _secagg_sent(federation, "alice") == sent["alice"] + 1
    assert _secagg_sent(federation, "carol") == sent["carol"]  # killed before it sent


def test_secagg_below_the_threshold_stops_loudly(federation: Federation) -> None:
    _rejoin(federation, "carol")
    before = len(_versions(federation))
    watcher = _kill_after_key_sharing(federation, ("bob", "carol"))
    outcome = _run(federation, "--secure", "secagg", timeout=DROPOUT_TIMEOUT)
    watcher.join(timeout=60)
    assert outcome.startswith("exit 1"), outcome
    assert "the run failed" in outcome and "secure aggregation halted" in outcome
    assert "Traceback" not in outcome
    assert len(_versions(federation)) == before
    for name in ("bob", "carol"):
        _rejoin(federation, name)
