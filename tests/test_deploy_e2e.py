"""Deployment end to end on loopback: a real SuperLink with TLS and node authentication,
three real SuperNodes on their own stores, two rounds, a signed model pulled and verified
on a client, then every refusal the issue lists. Every process started is ended.
"""

from __future__ import annotations

import base64
import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import pytest

from tests.conftest import SHARED_DATA, Cli

pytestmark = pytest.mark.e2e

NODES = ("alice", "bob", "carol")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _started_under(base: Path) -> list[psutil.Process]:
    """Live processes whose FLWR_HOME lies under ``base``: every Flower process this
    module's commands started (SuperLink, SuperNodes, SuperExecs, app processes)."""
    found = []
    for process in psutil.process_iter():
        try:
            home = process.environ().get("FLWR_HOME", "")
            if home.startswith(str(base)) and process.status() != psutil.STATUS_ZOMBIE:
                found.append(process)
        except psutil.Error:
            continue
    return found


@dataclass
class Federation:
    """The operator's directory and three developers' homes, driven through the real CLI."""

    cli: Cli
    root: Path
    work: Path

    def server(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[bytes]:
        return self.cli.run("server", *args, timeout=timeout)

    def node(
        self, name: str, *args: str, timeout: float = 90
    ) -> subprocess.CompletedProcess[bytes]:
        return self.cli.run(*args, timeout=timeout, AICACHE_HOME=str(self.work / f"home-{name}"))

    def home(self, name: str) -> Path:
        return self.work / f"home-{name}"

    def bundle(self, name: str) -> Path:
        return self.work / f"{name}.bundle"

    def forged(self, name: str, **changes: Any) -> Path:
        data = json.loads(self.bundle("alice").read_text())
        data.update(changes)
        path = self.work / f"{name}.bundle"
        path.write_text(json.dumps(data))
        return path


def _fill_store(federation: Federation, name: str, index: int) -> None:
    greenberg = SHARED_DATA / "greenberg"
    if greenberg.is_dir():
        users = sorted(p.name for p in greenberg.iterdir())
        result = federation.node(name, "import", "greenberg", str(greenberg / users[index]))
    else:  # the embedded generator, as a bash history
        from aicache.simulation.sources import SyntheticSource

        history = federation.work / f"{name}.history"
        items = SyntheticSource(seed=7, clients=3).history(index)
        history.write_text("".join(f"{item.command}\n" for item in items))
        result = federation.node(name, "import", "history", str(history), "--shell", "bash")
    assert result.returncode == 0, result.stderr.decode()


def _text(result: subprocess.CompletedProcess[bytes]) -> str:
    return " ".join((result.stdout + result.stderr).decode().split())


@pytest.fixture(scope="module")
def federation(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Federation]:
    base = tmp_path_factory.mktemp("deploy")
    (base / "user").mkdir()
    (base / "work").mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AICACHE_", "XDG_"))}
    env.update(AICACHE_HOME=str(base / "operator-home"), HOME=str(base / "user"))
    cli = Cli(home=base / "operator-home", env=env, counter=base / "count", cwd=base / "work")
    fed = Federation(cli=cli, root=base / "fed", work=base / "work")
    port = _free_port()
    created = fed.server("init", str(fed.root), "--host", "127.0.0.1", "--port", str(port))
    assert created.returncode == 0, created.stderr.decode()
    try:
        started = fed.server("start", str(fed.root), "--detach")
        assert started.returncode == 0, started.stderr.decode()
        for index, name in enumerate(NODES):
            enrolled = fed.server("enroll", name, "--dir", str(fed.root))
            assert enrolled.returncode == 0, enrolled.stderr.decode()
            _fill_store(fed, name, index)
            joined = fed.node(name, "join", str(fed.bundle(name)), "--detach")
            assert joined.returncode == 0, _text(joined)
        yield fed
    finally:
        for name in (*NODES, "dave"):
            fed.node(name, "leave")
        fed.server("stop", str(fed.root))
        psutil.wait_procs(_started_under(base), timeout=15)
        left = _started_under(base)
        assert not left, f"processes left running: {[p.cmdline() for p in left]}"


def test_bundle_and_keys_are_owner_only(federation: Federation) -> None:
    assert federation.bundle("alice").stat().st_mode & 0o777 == 0o600
    assert (federation.root / "nodes" / "alice.key").stat().st_mode & 0o777 == 0o600
    node_key = federation.home("alice") / "federation" / "node.key"
    assert node_key.stat().st_mode & 0o777 == 0o600


def test_two_rounds_land_signed_in_the_registry(federation: Federation) -> None:
    ran = federation.server(
        "run",
        str(federation.root),
        "--rounds",
        "2",
        "--min-clients",
        "3",
        "--round-timeout",
        "120",
        "--wait",
        "600",
        timeout=700,
    )
    assert ran.returncode == 0, _text(ran)
    assert "round 2" in _text(ran)
    listed = federation.cli.run(
        "models", "list", "--json", "--registry", str(federation.root / "registry")
    )
    versions = json.loads(listed.stdout)
    assert [v["round"] for v in versions] == [1, 2]
    assert all(v["num_clients"] == 3 for v in versions)
    assert all(0.0 < v["metrics"]["eval.top1"] <= 1.0 for v in versions)
    from aicache.security import signing

    key = signing.load_public((federation.root / "signing.pub").read_bytes())
    with sqlite3.connect(federation.root / "registry" / "registry.db") as db:
        rows = db.execute("SELECT version, manifest, signature FROM signatures").fetchall()
    db.close()
    assert sorted(r[0] for r in rows) == [1, 2]
    for version, manifest, signature in rows:
        signing.verify(key, manifest.encode(), signature, what=f"version {version}")
        assert json.loads(manifest)["sha256"] == versions[version - 1]["sha256"]
    nodes = json.loads(federation.server("nodes", str(federation.root), "--json").stdout)
    assert {n["name"]: n["last_round"] for n in nodes} == {name: 2 for name in NODES}
    assert all(n["status"] == "online" for n in nodes)


def test_client_pulls_verifies_and_uses_the_model(federation: Federation) -> None:
    status = json.loads(federation.node("alice", "node", "status", "--json").stdout)
    assert status["connected"] and status["last_round"]["round"] == 2
    assert status["updates_sent"] == 2 and status["bytes_sent"] > 0
    pulled = federation.node("alice", "models", "pull")
    assert pulled.returncode == 0, _text(pulled)
    assert "installed version 2" in _text(pulled) and "signature verified" in _text(pulled)
    again = federation.node("alice", "models", "pull")
    assert "already in use" in _text(again)
    verified = federation.node("alice", "models", "verify", "--json")
    assert verified.returncode == 0 and json.loads(verified.stdout) == [
        {"task": "next-command", "version": 1, "ok": True}
    ]
    suggested = federation.node("alice", "suggest", "--json")
    assert suggested.returncode == 0, _text(suggested)
    assert len(json.loads(suggested.stdout)["suggestions"]) == 3


def test_tampered_delivery_is_refused_and_the_previous_model_stays(
    federation: Federation,
) -> None:
    inbox = federation.home("bob") / "federation" / "inbox" / "next-command" / "v2.json"
    first = federation.node("bob", "models", "pull")
    assert first.returncode == 0, _text(first)
    delivery = json.loads(inbox.read_text())
    manifest = json.loads(delivery["manifest"])
    manifest["version"] = 3
    manifest["privacy"] = {"dp": "central", "epsilon": 0.1}  # a better privacy claim
    forged = federation.home("bob") / "federation" / "inbox" / "next-command" / "v3.json"
    forged.write_text(json.dumps({**delivery, "manifest": json.dumps(manifest)}))
    altered = bytearray(base64.b64decode(delivery["artifact"]))
    altered[-40] ^= 0xFF  # one byte of the model itself
    bad_bytes = federation.home("bob") / "federation" / "inbox" / "next-command" / "v4.json"
    bad_bytes.write_text(
        json.dumps({**delivery, "artifact": base64.b64encode(bytes(altered)).decode()})
    )
    refused = federation.node("bob", "models", "pull")
    assert refused.returncode == 1
    assert "the model's bytes do not match the signed hash" in _text(refused)  # v4
    assert "does not match its signature" in _text(refused)  # v3
    assert "local version 1 (pulled from federation" in _text(refused)
    assert "stays in use" in _text(refused)
    assert "version 2 is already in use" in _text(refused)  # v2: verified, kept
    versions = json.loads(federation.node("bob", "models", "list", "--json").stdout)
    assert len(versions) == 1 and versions[0]["privacy"].get("dp") == "off"


def test_altered_installed_model_fails_verification_and_is_not_used(
    federation: Federation,
) -> None:
    pulled = federation.node("carol", "models", "pull")
    assert pulled.returncode == 0, _text(pulled)
    registry = federation.home("carol") / "registry" / "registry.db"
    with sqlite3.connect(registry) as db:
        db.execute("UPDATE signatures SET signature = zeroblob(64)")
    db.close()
    verified = federation.node("carol", "models", "verify")
    assert verified.returncode == 1 and "FAILED" in _text(verified)
    suggested = federation.node("carol", "suggest")
    assert suggested.returncode != 0 and "does not match its signature" in _text(suggested)
    assert "Traceback" not in _text(suggested)


def test_privacy_report_says_what_left_the_machine(federation: Federation) -> None:
    report = json.loads(federation.node("alice", "privacy", "report", "--json").stdout)
    (row,) = report["tasks"]
    assert row["task"] == "next-command" and row["updates_sent"] == 2 and row["rounds"] == 2
    assert (
        row["bytes_sent"]
        == json.loads(federation.node("alice", "node", "status", "--json").stdout)["bytes_sent"]
    )
    # The run had no differential privacy: no finite ε may be claimed for it.
    assert row["updates_without_dp"] == 2 and row["epsilon"] is None
    shown = federation.node("alice", "privacy", "report")
    assert "ε = ∞" in _text(shown) and "without differential privacy" in _text(shown)


def _registry_rounds(federation: Federation) -> list[tuple[str, int]]:
    listed = federation.cli.run(
        "models", "list", "--json", "--registry", str(federation.root / "registry")
    )
    return [(v["run_id"], v["round"]) for v in json.loads(listed.stdout)]


def test_server_away_mid_run_then_resume(federation: Federation) -> None:
    before = len(_registry_rounds(federation))
    args = ["server", "run", str(federation.root), "--rounds", "3", "--min-clients", "3"]
    running = federation.cli.popen(*args, "--round-timeout", "60", "--wait", "600")
    try:
        deadline = time.monotonic() + 300
        while len(_registry_rounds(federation)) == before and time.monotonic() < deadline:
            time.sleep(0.5)
        assert len(_registry_rounds(federation)) > before, "no round was registered"
        assert federation.server("stop", str(federation.root)).returncode == 0
        _, err = running.communicate(timeout=120)
    finally:
        if running.poll() is None:
            running.kill()
    assert running.returncode == 1
    assert b"stopped during the run" in err and b"Traceback" not in err
    assert federation.server("start", str(federation.root), "--detach").returncode == 0
    resumed = federation.server(
        "run",
        str(federation.root),
        "--resume",
        "--round-timeout",
        "60",
        "--wait",
        "600",
        timeout=700,
    )
    assert resumed.returncode == 0, _text(resumed)
    assert "resuming after round" in _text(resumed)
    run_id = _registry_rounds(federation)[-1][0]
    rounds = [r for run, r in _registry_rounds(federation) if run == run_id]
    assert rounds == sorted(set(rounds)) and rounds[-1] == 3 and len(rounds) == 3


def test_node_status_moved_and_the_old_spelling_still_shows_it(federation: Federation) -> None:
    # Execute
    old = federation.node("alice", "status")
    new = federation.node("alice", "node", "status")
    # Assert: `status` is the cache's, then the node's after a note; `node status` the node's.
    assert old.returncode == new.returncode == 0, _text(old) + _text(new)
    assert b"Store:" in old.stdout
    assert "moved to `aicache node status`" in _text(old)
    assert b"alice in " in old.stdout and b"alice in " in new.stdout
    assert b"moved" not in new.stderr


def test_ctrl_c_stops_the_followed_run_and_says_how_to_resume(federation: Federation) -> None:
    from aicache.deploy.runs import flower_status
    from aicache.deploy.server import ServerDirectory

    # Prepare: a run followed by `server run`, interrupted as a terminal's Ctrl-C does
    # (SIGINT to the command's process group) once its first round is registered. Enough
    # rounds remain after the first that a loaded machine cannot finish them before the stop.
    before = len(_registry_rounds(federation))
    args = ["server", "run", str(federation.root), "--rounds", "6", "--min-clients", "3"]
    running = federation.cli.popen(*args, "--round-timeout", "60", "--wait", "600")
    try:
        deadline = time.monotonic() + 300
        while len(_registry_rounds(federation)) == before and time.monotonic() < deadline:
            time.sleep(0.5)
        assert len(_registry_rounds(federation)) > before, "no round was registered"
        # Execute
        os.killpg(running.pid, signal.SIGINT)
        _, err = running.communicate(timeout=60)  # a bound against a hang, not a timing
    finally:
        if running.poll() is None:
            running.kill()
            running.communicate()
    # Assert: exit 130 and one line that says the run is stopped and how to continue it
    lines = [line for line in err.decode().splitlines() if line.strip()]
    assert running.returncode == 130, err.decode()[-2000:]
    assert len(lines) == 1, lines
    assert re.search(r"the run is (stopped|being stopped) on the server", lines[0]), lines
    assert f"aicache server run --resume {federation.root}" in lines[0]
    # Flower ends the run (a slow `flwr stop` may finish after the command).
    server = ServerDirectory(federation.root)
    # Flower's run ids are random: the followed run is found by its registered round.
    followed = _registry_rounds(federation)[-1][0]
    flower_run = json.loads((federation.root / "runs.json").read_text())[followed]
    deadline = time.monotonic() + 60
    while flower_status(server, flower_run) != "finished:stopped" and time.monotonic() < deadline:
        time.sleep(1)
    assert flower_status(server, flower_run) == "finished:stopped"
    # The run no longer holds the server: --resume continues it to its last round.
    resumed = federation.server(
        "run",
        str(federation.root),
        "--resume",
        "--round-timeout",
        "60",
        "--wait",
        "600",
        timeout=700,
    )
    assert resumed.returncode == 0, _text(resumed)
    run_id = _registry_rounds(federation)[-1][0]
    assert [r for run, r in _registry_rounds(federation) if run == run_id] == [1, 2, 3, 4, 5, 6]


def test_a_node_that_vanishes_mid_run_does_not_stall_it(federation: Federation) -> None:
    # Prepare: bob's SuperNode dies without a word (SIGKILL), so the SuperLink still
    # counts it as connected and samples it.
    pid = json.loads((federation.home("bob") / "federation" / "supernode.pid").read_text())["pid"]
    node = psutil.Process(pid)
    tree = [node, *node.children(recursive=True)]
    before = len(_registry_rounds(federation))
    running = federation.cli.popen(
        "server",
        "run",
        str(federation.root),
        "--rounds",
        "2",
        "--min-clients",
        "2",
        # Long enough for a live node's reply on a loaded machine; a round still ends
        # without the dead node's reply, and a run stalled by it would outlast --wait.
        "--round-timeout",
        "40",
        "--wait",
        "300",
    )
    for member in tree:
        member.kill()
    # Execute
    out, err = running.communicate(timeout=400)
    # Assert: both rounds done with the two nodes left, each wait bounded by the timeout
    assert running.returncode == 0, (out + err).decode()[-2000:]
    listed = federation.cli.run(
        "models", "list", "--json", "--registry", str(federation.root / "registry")
    )
    new = json.loads(listed.stdout)[before:]
    assert [v["round"] for v in new] == [1, 2]
    assert all(v["num_clients"] == 2 for v in new)


def test_unregistered_key_is_refused(federation: Federation) -> None:
    from aicache.security.node_keys import new_node_key

    bundle = federation.forged("mallory", node_private_key=new_node_key()[0].decode())
    joined = federation.node("mallory", "join", str(bundle), "--detach")
    assert joined.returncode == 2
    assert "refused this node's key" in _text(joined)


def test_plaintext_client_is_refused(federation: Federation) -> None:
    bundle = str(federation.forged("plain", insecure=True))
    unasked = federation.node("plain", "join", bundle)
    assert unasked.returncode == 2 and "--insecure" in _text(unasked)
    joined = federation.node("plain", "join", bundle, "--insecure")
    assert joined.returncode == 2
    assert "requires TLS" in _text(joined) and "plaintext" in _text(joined)


def test_wrong_ca_is_refused(federation: Federation) -> None:
    from aicache.security.certificates import certificate_pem, create_ca

    other = certificate_pem(create_ca("another federation").certificate).decode()
    joined = federation.node("stranger", "join", str(federation.forged("stranger", ca_pem=other)))
    assert joined.returncode == 2
    assert "not signed by the CA in the bundle" in _text(joined)


def test_revoked_node_is_refused_at_its_next_connection(federation: Federation) -> None:
    revoked = federation.server("revoke", "carol", "--dir", str(federation.root))
    assert revoked.returncode == 0, _text(revoked)
    federation.node("carol", "leave")
    joined = federation.node("carol", "join", str(federation.bundle("carol")), "--detach")
    assert joined.returncode == 2
    assert "refused this node's key" in _text(joined)
    nodes = json.loads(federation.server("nodes", str(federation.root), "--json").stdout)
    assert {n["name"]: n["status"] for n in nodes}["carol"] == "revoked"


def test_certificate_rotation_and_a_ca_roll_keep_bundles_working(
    federation: Federation,
) -> None:
    def rejoin(name: str, bundle: Path) -> subprocess.CompletedProcess[bytes]:
        federation.node(name, "leave")
        return federation.node(name, "join", str(bundle), "--detach")

    rotated = federation.server("rotate-certs", str(federation.root))
    assert rotated.returncode == 0, _text(rotated)
    assert rejoin("alice", federation.bundle("alice")).returncode == 0  # same CA
    rolled = federation.server("rotate-certs", str(federation.root), "--ca")
    assert rolled.returncode == 0 and "bridge" in _text(rolled)
    old_ca = rejoin("alice", federation.bundle("alice"))
    assert old_ca.returncode == 0, _text(old_ca)  # the old CA, through the bridge
    enrolled = federation.server("enroll", "dave", "--dir", str(federation.root))
    assert enrolled.returncode == 0, _text(enrolled)
    _fill_store(federation, "dave", 0)
    new_ca = rejoin("dave", federation.bundle("dave"))
    assert new_ca.returncode == 0, _text(new_ca)  # both CAs
    ended = federation.server("rotate-certs", str(federation.root), "--end-overlap")
    assert ended.returncode == 0, _text(ended)
    refused = rejoin("alice", federation.bundle("alice"))
    assert refused.returncode == 2 and "not signed by the CA in the bundle" in _text(refused)
    assert rejoin("dave", federation.bundle("dave")).returncode == 0
    federation.node("dave", "leave")


def test_expired_server_certificate_is_refused(federation: Federation) -> None:
    import datetime as dt

    from aicache.security import certificates as certs

    ca = certs.load_issued(federation.root / "keys" / "ca.key", federation.root / "ca.pem")
    expired = certs.issue_server_certificate(
        ca,
        ["localhost", "127.0.0.1"],
        days=1,
        valid_from=dt.datetime.now(dt.UTC) - dt.timedelta(days=3),
    )
    certs.write_private(federation.root / "server.key", certs.key_pem(expired.key))
    (federation.root / "server.pem").write_bytes(certs.certificate_pem(expired.certificate))
    assert federation.server("stop", str(federation.root)).returncode == 0
    assert federation.server("start", str(federation.root), "--detach").returncode == 0
    joined = federation.node("dave", "join", str(federation.bundle("dave")), "--detach")
    assert joined.returncode == 2
    assert "certificate has expired" in _text(joined)
