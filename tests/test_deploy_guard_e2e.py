"""Who may do what on a deployed federation, on loopback with real Flower processes: a
SuperLink started by `aicache server start` (TLS, node authentication), one real SuperNode.

- From the network, the SuperLink's port answers the Fleet API only: `flwr` Control
  calls (list, register a key, run an app) and Runtime calls are refused there, while
  the operator's `aicache server` commands and the node keep working.
- Only the federation's signed app runs: the SuperLink refuses a foreign app even from
  the operator, and a node refuses it even from a SuperLink that let it through; the
  foreign app's code never runs on the node (its marker file never appears).
- The ServerApp works where no private key lies, and models are still signed (by the
  operator's `server run`) and verified by the node.
- A key registered with Flower outside `enroll` shows up as unknown and can be revoked.

Every process started is ended.
"""

from __future__ import annotations

import json
import os
import shutil
import ssl
import subprocess
import sys
import tempfile
import time
import tomllib
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from tests.conftest import Cli
from tests.test_deploy_e2e import Federation, _fill_store, _free_port, _started_under, _text

pytestmark = pytest.mark.e2e

FOREIGN_PYPROJECT = """\
[build-system]
requires = ["setuptools"]
build-backend = "setuptools.build_meta"

[project]
name = "foreign"
version = "1.0.0"
dependencies = []

[tool.flwr.app]
publisher = "mallory"

[tool.flwr.app.components]
serverapp = "foreign_app:server"
clientapp = "foreign_app:client"

[tool.flwr.app.config]
marker-dir = ""
aicache-app-signature = ""
"""

# Importing this module leaves a marker in $AICACHE_HOME: the proof that its code ran.
FOREIGN_APP = """\
import json
import os
import time
from pathlib import Path

from flwr.app import Context, Message, RecordDict
from flwr.clientapp import ClientApp
from flwr.serverapp import Grid, ServerApp

if os.environ.get("AICACHE_HOME"):
    (Path(os.environ["AICACHE_HOME"]) / "foreign-imported").write_text(str(os.getpid()))

server = ServerApp()
client = ClientApp()


@server.main()
def main(grid: Grid, context: Context) -> None:
    out = Path(str(context.run_config["marker-dir"]))
    nodes = []
    for _ in range(600):
        nodes = list(grid.get_node_ids())
        if nodes:
            break
        time.sleep(0.2)
    messages = [Message(RecordDict(), message_type="query", dst_node_id=n) for n in nodes]
    replies = grid.send_and_receive(messages, timeout=90)
    answers = [r.error.reason if r.has_error() else "ran" for r in replies]
    (out / "replies.json").write_text(json.dumps(answers))


@client.query()
def query(message: Message, context: Context) -> Message:
    (Path(os.environ["AICACHE_HOME"]) / "foreign-ran").write_text("foreign code ran")
    return Message(RecordDict(), reply_to=message)
"""


@pytest.fixture(scope="module")
def federation(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Federation]:
    base = tmp_path_factory.mktemp("guard")
    for folder in ("user", "work", "foreign", "markers"):
        (base / folder).mkdir()
    (base / "foreign" / "pyproject.toml").write_text(FOREIGN_PYPROJECT)
    (base / "foreign" / "foreign_app.py").write_text(FOREIGN_APP)
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
        enrolled = fed.server("enroll", "alice", "--dir", str(fed.root))
        assert enrolled.returncode == 0, enrolled.stderr.decode()
        _fill_store(fed, "alice", 0)
        joined = fed.node("alice", "join", str(fed.bundle("alice")), "--detach")
        assert joined.returncode == 0, _text(joined)
        yield fed
    finally:
        fed.node("alice", "leave")
        fed.server("stop", str(fed.root))
        psutil.wait_procs(_started_under(base), timeout=15)
        left = _started_under(base)
        for process in left:
            process.kill()
        assert not left, f"processes left running: {[p.cmdline() for p in left]}"


def _base(federation: Federation) -> Path:
    return federation.root.parent


def _port(federation: Federation) -> int:
    config = tomllib.loads((federation.root / "aicache-server.toml").read_text())
    return int(config["federation"]["address"].rsplit(":", 1)[1])


def _flwr(
    federation: Federation, flwr_home: Path, *args: str, timeout: float = 120
) -> subprocess.CompletedProcess[bytes]:
    env = dict(federation.cli.env)
    env.update(FLWR_HOME=str(flwr_home), FLWR_TELEMETRY_ENABLED="0", FLWR_DISABLE_UPDATE_CHECK="1")
    flwr = str(Path(sys.executable).parent / "flwr")
    return subprocess.run(
        [flwr, *args],
        env=env,
        capture_output=True,
        timeout=timeout,
        check=False,
        cwd=_base(federation),
    )


def _outsider_home(federation: Federation, port: int, name: str = "outsider") -> Path:
    """A Flower home of someone who has the CA certificate (every bundle carries it)."""
    home = _base(federation) / name
    home.mkdir(exist_ok=True)
    (home / "config.toml").write_text(
        f'[superlink]\ndefault = "x"\n\n[superlink.x]\naddress = "127.0.0.1:{port}"\n'
        f"root-certificates = {json.dumps(str(federation.root / 'ca.pem'))}\n"
    )
    return home


def _nodes(federation: Federation) -> list[dict[str, object]]:
    listed = federation.server("nodes", str(federation.root), "--json")
    assert listed.returncode == 0, _text(listed)
    rows: list[dict[str, object]] = json.loads(listed.stdout)
    return rows


def _https_status(port: int, path: str, ca: Path) -> int:
    return _https_answer(port, path, ca)[0]


def _https_answer(port: int, path: str, ca: Path) -> tuple[int, str]:
    """The status and body of an empty POST (a GET outside ``/v1/``) to ``path``."""
    context = ssl.create_default_context(cafile=str(ca))
    request = urllib.request.Request(
        f"https://127.0.0.1:{port}{path}",
        data=b"",
        headers={"content-type": "application/protobuf"},
        method="POST" if path.startswith("/v1/") else "GET",
    )
    try:
        with urllib.request.urlopen(request, context=context, timeout=30) as answer:  # noqa: S310
            return int(answer.status), answer.read().decode(errors="replace")
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.read().decode(errors="replace")


def test_the_public_port_answers_the_fleet_api_only(federation: Federation) -> None:
    port = _port(federation)
    outsider = _outsider_home(federation, port)
    key = _base(federation) / "mallory.pub"
    from aicache.security.node_keys import new_node_key

    key.write_bytes(new_node_key()[1])
    # Execute: what Flower's CLI lets anyone with the CA certificate try
    attempts = {
        "ls": _flwr(federation, outsider, "ls", "x"),
        "supernode list": _flwr(federation, outsider, "supernode", "list", "x"),
        "supernode register": _flwr(federation, outsider, "supernode", "register", str(key), "x"),
        "run": _flwr(federation, outsider, "run", str(_base(federation) / "foreign"), "x"),
    }
    # Assert: every Control call refused on the port the nodes use
    for what, result in attempts.items():
        assert result.returncode != 0, what
        assert "[code: 9]" in _text(result) and "Fleet API" in _text(result), what
    ca = federation.root / "ca.pem"
    for path in ("/v1/control/list-runs", "/v1/runtime/acquire-task", "/docs", "/health"):
        assert _https_status(port, path, ca) == 403, path
    assert not (federation.home("alice") / "foreign-imported").exists()
    # ... while the operator's commands and the node work, and nothing was registered
    nodes = _nodes(federation)
    assert [(n["name"], n["status"], n["unknown"]) for n in nodes] == [("alice", "online", False)]
    # The SuperLink listens on the public port and on the operator's loopback port only.
    record = json.loads((federation.root / "superlink.pid").read_text())
    operator_port = json.loads((federation.root / "superlink.json").read_text())["operator_port"]
    listening = {
        (c.laddr.ip, c.laddr.port)
        for c in psutil.Process(record["pid"]).net_connections(kind="inet")
        if c.status == psutil.CONN_LISTEN
    }
    assert listening == {("127.0.0.1", port), ("127.0.0.1", operator_port)}


def _curl_status(port: int, path: str, ca: Path, *, user: int | None = None) -> str:
    """POST an empty protobuf request to the SuperLink with curl, as ``user``; the HTTP status."""
    done = subprocess.run(
        [
            "curl",
            "-sS",
            "-o",
            os.devnull,
            "-w",
            "%{http_code}",
            "--cacert",
            str(ca),
            "-X",
            "POST",
            "-H",
            "content-type: application/protobuf",
            "--data-binary",
            "",
            f"https://127.0.0.1:{port}{path}",
        ],
        capture_output=True,
        timeout=60,
        check=False,
        user=user,
    )
    return done.stdout.decode()


@pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() != 0 or shutil.which("curl") is None,
    reason="needs root (to act as another account) and curl",
)
def test_other_accounts_on_the_server_cannot_use_the_operator_port(
    federation: Federation,
) -> None:
    operator_port = json.loads((federation.root / "superlink.json").read_text())["operator_port"]
    # Prepare: the CA certificate where another account can read it
    shared = Path(tempfile.mkdtemp(prefix="aicache-ca-"))
    try:
        shared.chmod(0o755)
        ca = shared / "ca.pem"
        shutil.copy(federation.root / "ca.pem", ca)
        ca.chmod(0o644)
        # Execute: the same request, from the operator's account and from "nobody"
        mine = _curl_status(operator_port, "/v1/control/list-runs", ca)
        theirs = _curl_status(operator_port, "/v1/control/list-runs", ca, user=65534)
        runtime = _curl_status(operator_port, "/v1/runtime/get-nodes", ca, user=65534)
    finally:
        shutil.rmtree(shared)
    # Assert
    assert mine == "200"
    assert theirs == "000" and runtime == "000"  # no HTTP answer: the connection was closed
    log = (federation.root / "superlink.log").read_text()
    assert "refused a connection" in log and "another account" in log


def test_the_superlink_refuses_a_foreign_app_even_from_the_operator(
    federation: Federation,
) -> None:
    operator = federation.root / "flower"  # the operator's own Flower home and connection
    before = json.loads(_flwr(federation, operator, "ls", "aicache", "--format", "json").stdout)
    foreign = str(_base(federation) / "foreign")
    markers = f"marker-dir='{_base(federation) / 'markers'}'"
    from aicache.security.app_signing import sign_app
    from aicache.security.signing import new_signing_key

    # Execute: unsigned, then signed by a key that is not the federation's
    unsigned = _flwr(federation, operator, "run", foreign, "aicache", "--run-config", markers)
    forged = sign_app(b"any app", new_signing_key())
    other_key = _flwr(
        federation,
        operator,
        "run",
        foreign,
        "aicache",
        "--run-config",
        f"{markers} aicache-app-signature='{forged}'",
    )
    # Assert
    assert unsigned.returncode != 0 and "is not signed by the federation" in _text(unsigned)
    assert other_key.returncode != 0 and "does not match the federation's signature" in _text(
        other_key
    )
    after = json.loads(_flwr(federation, operator, "ls", "aicache", "--format", "json").stdout)
    assert len(after["runs"]) == len(before["runs"])
    # Nor can a run come in by a side door: automations (by Control or Runtime), tasks created
    # by the Runtime API and stored apps are refused by the gate, before Flower reads them.
    port = json.loads((federation.root / "superlink.json").read_text())["operator_port"]
    ca = federation.root / "ca.pem"
    assert _https_status(port, "/v1/control/list-runs", ca) == 200
    for side_door in (
        "/v1/control/start-automation",
        "/v1/control/add-app",
        "/v1/runtime/start-automation",
        "/v1/runtime/create-task",
        "/V1/RUNTIME/START-AUTOMATION",
        "/v1/fleet/%2e%2e/runtime/start-automation",
    ):
        status, body = _https_answer(port, side_door, ca)
        assert status == 403 and "refused" in body, (side_door, status, body)
    time.sleep(2)
    assert not (federation.cli.home / "foreign-imported").exists()
    assert not list((_base(federation) / "markers").iterdir())


def _serverapp(federation: Federation) -> psutil.Process | None:
    record = json.loads((federation.root / "superlink.pid").read_text())
    for child in psutil.Process(record["pid"]).children(recursive=True):
        try:
            if "flwr-serverapp" in " ".join(child.cmdline()):
                return child
        except psutil.Error:
            continue
    return None


def test_the_serverapp_runs_where_no_private_key_is_and_models_are_still_signed(
    federation: Federation,
) -> None:
    keys = federation.root / "keys"
    running = federation.cli.popen(
        "server",
        "run",
        str(federation.root),
        "--rounds",
        "1",
        "--min-clients",
        "1",
        "--round-timeout",
        "120",
        "--wait",
        "600",
    )
    seen: dict[str, object] = {}
    try:
        deadline = time.monotonic() + 300
        while not seen and running.poll() is None and time.monotonic() < deadline:
            process = _serverapp(federation)
            try:
                if process is not None:
                    seen.update(cwd=process.cwd(), env=process.environ(), cmdline=process.cmdline())
            except psutil.Error:
                seen.clear()
            time.sleep(0.2)
        out, err = running.communicate(timeout=600)
    finally:
        if running.poll() is None:
            running.kill()
    assert running.returncode == 0, (out + err).decode()[-2000:]
    assert seen, "the ServerApp process was not seen"
    # The ServerApp's working directory holds no private key, and nothing it is given
    # (environment, command line) names a folder the keys are in.
    cwd = Path(str(seen["cwd"]))
    assert not keys.is_relative_to(cwd)
    assert not [p for p in cwd.rglob("*") if p.suffix == ".key"]
    env = seen["env"]
    assert isinstance(env, dict)
    values = [*env.values(), *seen["cmdline"]]  # type: ignore[misc]
    paths = [Path(p) for v in values for p in str(v).split(os.pathsep) if p.startswith("/")]
    assert [p for p in paths if keys.is_relative_to(p)] == []
    assert "signing.key" not in json.dumps(values)
    # The round's model is signed (by the operator's `server run`) and the node verifies it.
    pulled = federation.node("alice", "models", "pull")
    assert pulled.returncode == 0, _text(pulled)
    assert "signature verified" in _text(pulled)
    from aicache.security import signing

    key = signing.load_public((federation.root / "signing.pub").read_bytes())
    import sqlite3

    with sqlite3.connect(federation.root / "registry" / "registry.db") as db:
        rows = db.execute("SELECT version, manifest, signature FROM signatures").fetchall()
    db.close()
    assert [r[0] for r in rows] == [1]
    signing.verify(key, rows[0][1].encode(), rows[0][2], what="version 1")


def test_a_key_registered_outside_enroll_is_shown_unknown_and_can_be_revoked(
    federation: Federation,
) -> None:
    from aicache.security.node_keys import new_node_key

    key = _base(federation) / "extra.pub"
    key.write_bytes(new_node_key()[1])
    # Prepare: registered straight through Flower (only possible on the server itself)
    registered = _flwr(
        federation,
        federation.root / "flower",
        "supernode",
        "register",
        str(key),
        "aicache",
        "--format",
        "json",
    )
    assert registered.returncode == 0, _text(registered)
    node_id = int(json.loads(registered.stdout)["node-id"])
    # Execute
    listed = _nodes(federation)
    shown = federation.server("nodes", str(federation.root))
    revoked = federation.server("revoke", str(node_id), "--dir", str(federation.root))
    # Assert
    unknown = [n for n in listed if n["unknown"]]
    assert [(n["node_id"], n["name"], n["status"]) for n in unknown] == [
        (node_id, None, "registered")
    ]
    assert "(unknown)" in _text(shown) and "not enrolled by aicache" in _text(shown)
    assert revoked.returncode == 0, _text(revoked)
    assert not [n for n in _nodes(federation) if n["unknown"]]
    flower = json.loads(
        _flwr(
            federation,
            federation.root / "flower",
            "supernode",
            "list",
            "aicache",
            "--format",
            "json",
        ).stdout
    )
    assert {int(n["node-id"]): n["status"] for n in flower["nodes"]}[node_id] == "unregistered"
    again = federation.server("revoke", str(node_id), "--dir", str(federation.root))
    assert again.returncode == 2 and "no unknown node with that id" in _text(again)


def _plain_superlink(federation: Federation) -> subprocess.Popen[bytes]:
    """Flower's own `flower-superlink` on the federation's port, state and certificates:
    a SuperLink without aicache's gate, which lets any app through."""
    from aicache.deploy.processes import flower_env

    base = _base(federation)
    env = flower_env(base / "plain-flower", {"AICACHE_HOME": str(base / "plain-home")})
    (base / "plain-home").mkdir(exist_ok=True)
    command = [
        str(Path(sys.executable).parent / "flower-superlink"),
        "--host",
        "127.0.0.1",
        "--port",
        str(_port(federation)),
        "--database",
        str(federation.root / "state.db"),
        "--disable-runtime-dependency-installation",
        "--ssl-ca-certfile",
        str(federation.root / "ca.pem"),
        "--ssl-certfile",
        str(federation.root / "server.pem"),
        "--ssl-keyfile",
        str(federation.root / "server.key"),
        "--enable-supernode-auth",
    ]
    with (base / "plain-superlink.log").open("ab") as log:
        return subprocess.Popen(
            command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )


def test_a_node_refuses_a_foreign_app_even_when_a_superlink_lets_it_through(
    federation: Federation,
) -> None:
    from aicache.deploy.processes import end_tree, wait_until

    base = _base(federation)
    node_log = federation.home("alice") / "federation" / "supernode.log"
    # Prepare: the operator's SuperLink replaced by Flower's own on the same port and state
    assert federation.server("stop", str(federation.root)).returncode == 0
    plain = _plain_superlink(federation)
    try:

        def healthy() -> bool:
            try:
                return (
                    _https_status(_port(federation), "/health", federation.root / "ca.pem") == 200
                )
            except (OSError, urllib.error.URLError):
                return False

        reachable = wait_until(healthy, 30, 0.3)
        assert reachable, (base / "plain-superlink.log").read_text()[-2000:]
        outsider = _outsider_home(federation, _port(federation), "plain-outsider")
        # Execute: the foreign app, submitted to the SuperLink that does not check it
        submitted = _flwr(
            federation,
            outsider,
            "run",
            str(base / "foreign"),
            "x",
            "--run-config",
            f"marker-dir='{base / 'markers'}'",
        )
        assert submitted.returncode == 0, _text(submitted)
        replies = base / "markers" / "replies.json"
        assert wait_until(replies.exists, 300, 0.5), (base / "plain-superlink.log").read_text()[
            -2000:
        ]
        answers = json.loads(replies.read_text())
    finally:
        end_tree(psutil.Process(plain.pid))
        plain.wait(timeout=30)
    restarted = federation.server("start", str(federation.root), "--detach")
    assert restarted.returncode == 0, _text(restarted)
    # Assert: the app is a working one (its ServerApp ran on the plain SuperLink) ...
    assert (base / "plain-home" / "foreign-imported").exists()
    # ... and the node answered with a refusal, without running any of its code.
    assert answers and all("aicache refused the run's app" in a for a in answers), answers
    assert "is not signed by the federation" in answers[0]
    assert not (federation.home("alice") / "foreign-imported").exists()
    assert not (federation.home("alice") / "foreign-ran").exists()
    assert "refused" in node_log.read_text()
