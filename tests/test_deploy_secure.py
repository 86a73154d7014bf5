"""The deployed secure modes' pieces that need no federation: who may hold which CKKS key,
how a node's privacy report names the secure mode its updates went through, and the
options a deployed secure run is planned with. The end-to-end runs are in
test_deploy_secure_e2e.py.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Cli


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from aicache.privacy.key_authority import write_keys

    folder = tmp_path_factory.mktemp("key-authority")
    write_keys(folder)
    return folder


def test_the_server_refuses_the_secret_context_and_a_node_the_public_one(
    keys: Path, tmp_path: Path
) -> None:
    from aicache.deploy import he_keys
    from aicache.errors import AicacheError

    with pytest.raises(AicacheError, match="holds the CKKS secret key: the server must never"):
        he_keys.install(keys / "clients.ckks", tmp_path / "server" / "he.ckks", secret=False)
    with pytest.raises(AicacheError, match="is the public CKKS context: a node needs the secret"):
        he_keys.install(keys / "server.ckks", tmp_path / "node" / "he.ckks", secret=True)
    assert not (tmp_path / "server").exists() and not (tmp_path / "node").exists()
    garbage = tmp_path / "garbage.ckks"
    garbage.write_bytes(b"not a context")
    with pytest.raises(AicacheError, match="is not a CKKS context"):
        he_keys.install(garbage, tmp_path / "node" / "he.ckks", secret=True)
    installed = he_keys.install(keys / "clients.ckks", tmp_path / "node" / "he.ckks", secret=True)
    assert installed.stat().st_mode & 0o777 == 0o600
    assert installed.read_bytes() == (keys / "clients.ckks").read_bytes()


def test_join_refuses_a_public_context_as_the_node_key(cli: Cli, keys: Path) -> None:
    bundle = cli.cwd / "missing.bundle"
    refused = cli.run("join", str(bundle), "--he-key", str(keys / "server.ckks"))
    text = " ".join((refused.stdout + refused.stderr).decode().split())
    assert refused.returncode != 0
    assert "is the public CKKS context: a node needs the secret one" in text
    assert "Traceback" not in text
    assert not (cli.home / "federation" / "he.ckks").exists()


def test_privacy_report_says_how_each_update_left(cli: Cli) -> None:
    folder = cli.home / "federation"
    folder.mkdir(parents=True)
    entries = [
        {"dp": "distributed", "secure": "secagg", "run": 1, "round": 1},
        {"dp": "distributed", "secure": "secagg", "run": 1, "round": 2},
        {"dp": "off", "secure": "he", "run": 2, "round": 1},
        {"dp": "off", "run": 3, "round": 1},  # written before secure modes were recorded
    ]
    lines = [
        json.dumps({"time": 1.0e9 + i, "task": "next-command", "bytes": 100, **entry})
        for i, entry in enumerate(entries)
    ]
    (folder / "sent.jsonl").write_text("\n".join(lines) + "\n")
    shown = cli.run("privacy", "report", "--json")
    assert shown.returncode == 0, shown.stderr.decode()
    [row] = json.loads(shown.stdout)["tasks"]
    assert row["secure"] == {"he": 1, "off": 1, "secagg": 2}
    text = " ".join(cli.run("privacy", "report").stdout.decode().split())
    assert "2 update(s) masked with SecAgg+: the server saw only the sum" in text
    assert "1 update(s) encrypted with CKKS: the server added ciphertexts it cannot read" in text
    assert "1 update(s) in the clear to the server (over TLS): it saw each update" in text


def test_a_deployed_secure_plan_keeps_the_simulations_refusals() -> None:
    from aicache.errors import AicacheError
    from aicache.federation.options import plan_from_options

    common: dict[str, Any] = {
        "population": 3,
        "task": "next-command",
        "rounds": 1,
        "min_clients": 3,
    }
    for deployed in (False, True):
        with pytest.raises(AicacheError) as refused:
            plan_from_options(**common, secure="he", strategy="median", deployed=deployed)
        assert "--secure he runs FedAvg" in str(refused.value)
    plan = plan_from_options(
        **common, secure="secagg", dp="distributed", noise_multiplier=1.0, deployed=True
    )
    assert plan.secure == "secagg" and plan.dp.min_survivors == 2


def test_secagg_sampling_gives_up_after_the_round_timeout() -> None:
    import time

    from aicache.federation.secure_aggregation import BoundedClientManager

    # Flower's own manager would wait a day for nodes that died; a deployed round must not.
    manager = BoundedClientManager(timeout=1.0)
    started = time.monotonic()
    assert manager.sample(num_clients=3, min_num_clients=3) == []
    assert time.monotonic() - started < 30
