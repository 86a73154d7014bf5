"""`aicache models ...` through the real CLI: pulling signed deliveries, rollback, export."""

from __future__ import annotations

import json
import sqlite3
import subprocess
from pathlib import Path

import numpy as np
import pytest

from aicache.deploy.distribution import Inbox, delivery_for, sign_version
from aicache.registry import ModelRegistry
from aicache.security import signing
from tests.conftest import Cli

TASK = "next-command"
FEDERATION = "acme"


class Server:
    """A federation's signed versions, built with the server's own code (no SuperLink)."""

    def __init__(self, root: Path) -> None:
        self.key = signing.new_signing_key()
        self.registry_root = root

    def version(self, number: int) -> bytes:
        """Register and sign server versions up to ``number``; the delivery of ``number``."""
        with ModelRegistry(self.registry_root) as registry:
            while (latest := registry.latest(TASK)) is None or latest.version < number:
                arrays = [np.full(3, float((latest.version if latest else 0) + 1))]
                made = registry.register(
                    TASK,
                    arrays,
                    run_id="run-1",
                    round=1,
                    parent=None,
                    strategy="fedavg",
                    strategy_config={},
                    num_clients=3,
                    metrics={},
                    privacy={"dp": "off"},
                )
                sign_version(registry, made, self.key, FEDERATION)
            return delivery_for(registry, registry.resolve(TASK, str(number))).to_json().encode()


def _joined(cli: Cli, server: Server) -> Inbox:
    federation = cli.home / "federation"
    federation.mkdir(parents=True, mode=0o700)
    (federation / "signing.pub").write_bytes(signing.public_pem(server.key))
    return Inbox(federation / "inbox")


def _deliver(inbox: Inbox, server: Server, number: int) -> Path:
    path = inbox.root / TASK / f"v{number}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(server.version(number))
    return path


def _text(result: subprocess.CompletedProcess[bytes]) -> str:
    """Output and errors as one line (the console wraps long lines)."""
    return " ".join((result.stdout + result.stderr).decode().split())


def _serving(cli: Cli) -> list[str]:
    return [v["note"] for v in cli.versions(cli.home / "registry")]


def test_a_broken_newest_delivery_does_not_install_an_older_one(cli: Cli, tmp_path: Path) -> None:
    # Prepare: v3 then v5 installed; v5's file is then damaged, v3's is still there.
    server = Server(tmp_path / "server")
    inbox = _joined(cli, server)
    _deliver(inbox, server, 3)
    assert cli.run("models", "pull").returncode == 0
    newest = _deliver(inbox, server, 5)
    assert cli.run("models", "pull").returncode == 0
    newest.write_text("{broken")
    # Execute
    pulled = cli.run("models", "pull")
    # Assert: refused, nothing installed, and the message names what really serves.
    assert pulled.returncode == 1, _text(pulled)
    assert "v5.json is not a model delivery" in _text(pulled)
    assert "version 3 was not installed: it is older than version 5" in _text(pulled)
    assert "local version 2 (pulled from federation acme version 5) stays in use" in _text(pulled)
    assert "Traceback" not in _text(pulled)
    assert _serving(cli) == [
        "pulled from federation acme version 3",
        "pulled from federation acme version 5",
    ]


def test_a_replayed_old_delivery_is_refused_even_with_the_inbox_emptied(
    cli: Cli, tmp_path: Path
) -> None:
    # Prepare: v3 installed, its file gone, then a genuine but old v2 arrives.
    server = Server(tmp_path / "server")
    inbox = _joined(cli, server)
    current = _deliver(inbox, server, 3)
    assert cli.run("models", "pull").returncode == 0
    current.unlink()
    _deliver(inbox, server, 2)
    # Execute
    pulled = cli.run("models", "pull", "--json")
    # Assert
    assert pulled.returncode == 1
    assert json.loads(pulled.stdout) == [
        {
            "task": TASK,
            "server_version": 2,
            "local_version": None,
            "status": "stale",
            "problem": "version 2 was not installed: it is older than version 3, the newest "
            "this node has verified from acme (a stale or replayed delivery)",
        }
    ]
    assert _serving(cli) == ["pulled from federation acme version 3"]


def test_the_newest_verified_version_survives_a_new_registry(cli: Cli, tmp_path: Path) -> None:
    # Prepare: v4 pulled into the default registry; then pull into an empty one.
    server = Server(tmp_path / "server")
    inbox = _joined(cli, server)
    current = _deliver(inbox, server, 4)
    assert cli.run("models", "pull").returncode == 0
    current.unlink()
    _deliver(inbox, server, 1)
    # Execute
    pulled = cli.run("models", "pull", "--registry", str(tmp_path / "fresh"))
    # Assert: the floor is the node's, not the registry's.
    assert pulled.returncode == 1
    assert "older than version 4" in _text(pulled)
    assert "next-command: no model is installed." in _text(pulled)


def test_an_explicit_rollback_goes_back_and_pull_keeps_it(cli: Cli, tmp_path: Path) -> None:
    # Prepare
    server = Server(tmp_path / "server")
    inbox = _joined(cli, server)
    _deliver(inbox, server, 2)
    assert cli.run("models", "pull").returncode == 0
    _deliver(inbox, server, 5)
    assert cli.run("models", "pull").returncode == 0
    # Execute: the developer goes back to the v2 model, then pulls again.
    rolled = cli.run("models", "rollback", "--to", "1")
    again = cli.run("models", "pull")
    # Assert
    assert rolled.returncode == 0, _text(rolled)
    assert "version 3 now serves the model of version 1" in _text(rolled)
    assert again.returncode == 0, _text(again)
    assert "version 5 was installed before (local version 2); local version 3 stays in use" in (
        _text(again)
    )
    assert _serving(cli)[-1] == "rollback to version 1"
    verified = cli.run("models", "verify", "--json")
    assert verified.returncode == 0 and all(row["ok"] for row in json.loads(verified.stdout))


def test_a_newer_delivery_still_installs_after_a_rollback(cli: Cli, tmp_path: Path) -> None:
    server = Server(tmp_path / "server")
    inbox = _joined(cli, server)
    _deliver(inbox, server, 2)
    assert cli.run("models", "pull").returncode == 0
    _deliver(inbox, server, 3)
    assert cli.run("models", "pull").returncode == 0
    assert cli.run("models", "rollback", "--to", "1").returncode == 0
    _deliver(inbox, server, 6)
    pulled = cli.run("models", "pull")
    assert pulled.returncode == 0, _text(pulled)
    assert "installed version 6 of the federation (local version 4)" in _text(pulled)


def _local_model(cli: Cli) -> None:
    """One version trained here, in the CLI's default registry."""
    with ModelRegistry(cli.home / "registry") as registry:
        registry.register(
            TASK,
            [np.ones(3)],
            run_id="run-1",
            round=1,
            parent=None,
            strategy="fedavg",
            strategy_config={},
            num_clients=3,
            metrics={},
            privacy={"dp": "off"},
        )


HUGE = "99999999999999999999999"


@pytest.mark.parametrize(
    "args",
    [
        ("models", "show", HUGE),
        ("models", "export", "out.npz", "--version", HUGE),
        ("models", "rollback", "--to", HUGE),
        ("evaluate", "--model", HUGE),
    ],
)
def test_a_version_number_too_large_for_the_registry_is_named(
    cli: Cli, args: tuple[str, ...]
) -> None:
    _local_model(cli)
    result = cli.run(*args)
    assert result.returncode == 2, _text(result)
    assert f"invalid model version '{HUGE}': use latest or a version number from 1 to" in (
        _text(result)
    )
    assert "Traceback" not in _text(result)
    assert len(cli.versions(cli.home / "registry")) == 1


def test_export_refuses_to_overwrite_without_force(cli: Cli) -> None:
    # Prepare: an existing file where the metadata would go.
    _local_model(cli)
    sibling = cli.cwd / "model.json"
    sibling.write_text("my notes\n")
    # Execute
    refused = cli.run("models", "export", "model.npz")
    forced = cli.run("models", "export", "model.npz", "--force")
    # Assert
    assert refused.returncode == 2
    assert "error: model.json already exists" in _text(refused)
    assert "pass --force to overwrite" in _text(refused)
    assert forced.returncode == 0, _text(forced)
    assert json.loads(sibling.read_text())["version"] == 1
    again = cli.run("models", "export", "model.npz")
    assert again.returncode == 2
    assert "model.npz and model.json already exist" in _text(again)


def test_a_foreign_registry_file_is_named_not_the_store(cli: Cli) -> None:
    # Prepare
    foreign = cli.home / "registry" / "registry.db"
    foreign.parent.mkdir(parents=True)
    with sqlite3.connect(foreign) as db:
        db.execute("CREATE TABLE versions (id INTEGER, body TEXT)")
    db.close()
    before = foreign.read_bytes()
    # Execute
    result = cli.run("models", "list")
    # Assert
    assert result.returncode == 2
    assert f"the model registry {foreign} cannot be used" in _text(result)
    assert "store.db" not in _text(result) and "doctor" not in _text(result)
    assert foreign.read_bytes() == before
