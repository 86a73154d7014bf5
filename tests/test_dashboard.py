"""The dashboard's command, its token, TLS, /metrics and the reads beneath the pages."""

from __future__ import annotations

import datetime as dt
import json
import math
import ssl
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from aicache.deploy.server import ServerDirectory
from aicache.errors import AicacheError
from aicache.local.cache import Event, record
from aicache.local.stats import WEEK_S, weekly_savings
from aicache.local.store import Store
from aicache.registry import ModelRegistry
from aicache.security.federation_dir import CA_CERT, SERVER_CERT, SERVER_KEY, init_federation
from aicache.web.auth import TOKEN_FILE, read_token, write_token
from aicache.web.operator_app import operator_app
from aicache.web.operator_data import OperatorData
from aicache.web.prometheus import metrics_text
from aicache.web.serve import Tls, is_loopback
from tests.browser_support import free_port
from tests.conftest import Cli


@pytest.fixture
def federation(tmp_path: Path) -> ServerDirectory:
    """A federation directory with two runs: one without DP (ε = ∞), one that failed."""
    init_federation(tmp_path / "fed", name="demo", hosts=[], port=9092)
    write_token(tmp_path / "fed" / TOKEN_FILE)
    server = ServerDirectory(tmp_path / "fed")
    plan = {"rounds": 2, "selection": {"fraction": 1.0, "min_clients": 2, "min_available": 3}}
    with ModelRegistry(server.registry) as registry:
        run = registry.start_run("next-command", {"plan": plan, "federation": "f"})
        for round_ in (1, 2):
            registry.record_spend(
                run_id=run, task="next-command", federation="f", spend={"mode": "off"},
                rounds=round_, epsilon=math.inf, delta=1e-5,
            )  # fmt: skip
            registry.register(
                "next-command", [np.zeros(3)], run_id=run, round=round_, parent=round_ - 1 or None,
                strategy="fedavg", strategy_config={}, num_clients=3 - round_ + 1,
                metrics={"eval.top1": 0.25 * round_, "eval.top3": 0.5}, privacy={"dp": "off"},
            )  # fmt: skip
        registry.finish_run(run, "finished")
        failed = registry.start_run("next-command", {"plan": plan})
        registry.finish_run(failed, "failed", 'ray "died"')
    return server


@pytest.fixture
def data(federation: ServerDirectory) -> Iterator[OperatorData]:
    """The dashboard's reads of ``federation`` (its registry closed after the test)."""
    reads = OperatorData(federation)
    yield reads
    reads.close()


def test_runs_show_rounds_clients_and_headline_metrics(data: OperatorData) -> None:
    runs = data.runs()
    assert [r["status"] for r in runs] == ["failed", "finished"]  # newest first
    finished = runs[1]
    assert [m["key"] for m in finished["headline"]] == ["eval.top1", "eval.top3"]
    assert [
        (r["round"], r["sampled"], r["accepted"], r["not_accepted"]) for r in finished["rounds"]
    ] == [
        (1, 3, 3, 0),
        (2, 3, 2, 1),
    ]
    assert finished["rounds"][1]["metrics"]["eval.top1"] == 0.5


def test_alerts_name_the_failed_run_and_the_missing_update_and_can_be_acknowledged(
    data: OperatorData,
) -> None:
    kinds = sorted(a["kind"] for a in data.alerts())
    assert kinds == ["run-failed", "updates-not-accepted"]
    failed = next(a for a in data.alerts() if a["kind"] == "run-failed")
    assert 'ray "died"' in failed["text"] and not failed["acknowledged"]
    assert data.acknowledge(failed["id"]) and not data.acknowledge("no-such-alert")
    assert next(a for a in data.alerts() if a["id"] == failed["id"])["acknowledged"]


def test_a_certificate_expiring_within_30_days_is_an_alert(
    federation: ServerDirectory, data: OperatorData
) -> None:
    from aicache.security.certificates import (
        certificate_pem,
        issue_server_certificate,
        key_pem,
        load_issued,
        write_private,
    )

    ca = load_issued(federation.path("ca.key"), federation.path(CA_CERT))
    soon = issue_server_certificate(ca, ["localhost"], days=10)
    federation.path(SERVER_CERT).write_bytes(certificate_pem(soon.certificate))
    write_private(federation.path(SERVER_KEY), key_pem(soon.key))
    (alert,) = [a for a in data.alerts() if a["kind"] == "certificate"]
    assert alert["id"] == f"certificate:{SERVER_CERT}" and "expires in 10 day" in alert["text"]


def test_metrics_text_is_prometheus_with_infinite_epsilon(data: OperatorData) -> None:
    text = metrics_text(data)
    lines = text.splitlines()
    assert 'aicache_privacy_epsilon{task="next-command",federation="f"} +Inf' in lines
    assert any(
        line.startswith("aicache_run_updates_not_accepted_total{") and line.endswith(" 1.0")
        for line in lines
    )
    assert "aicache_alerts_open 2.0" in lines
    samples = [line for line in lines if not line.startswith("# ")]
    values = [float(line.rsplit(" ", 1)[1]) for line in samples]  # +Inf parses too
    assert all(math.isfinite(v) or v == math.inf for v in values)
    families = {line.split("{")[0].split(" ")[0] for line in samples}
    assert all(f"# TYPE {family} " in text for family in families)


def test_versions_report_signature_status(federation: ServerDirectory, data: OperatorData) -> None:
    from aicache.deploy.distribution import sign_version
    from aicache.security import signing

    key = signing.load_private(federation.signing_key_path().read_bytes())
    other = signing.new_signing_key()
    with ModelRegistry(federation.registry) as registry:
        first, second = registry.versions("next-command")
        sign_version(registry, second, key, "demo")
        sign_version(registry, first, other, "demo")  # signed, but not by this federation
    (task,) = data.versions()
    assert {v["version"]: v["signature"] for v in task["versions"]} == {2: "valid", 1: "invalid"}


def test_read_token_refuses_a_missing_or_weak_token(tmp_path: Path) -> None:
    with pytest.raises(AicacheError, match="no dashboard token"):
        read_token(tmp_path / "absent")
    (tmp_path / "weak").write_text("1234\n")
    with pytest.raises(AicacheError, match="not usable"):
        read_token(tmp_path / "weak")
    token = write_token(tmp_path / "good")
    assert read_token(tmp_path / "good") == token
    assert (tmp_path / "good").stat().st_mode & 0o777 == 0o600


def test_only_loopback_counts_as_loopback() -> None:
    assert all(is_loopback(h) for h in ("127.0.0.1", "127.0.0.2", "::1", "localhost"))
    beyond = ("0.0.0.0", "192.168.1.4", "::", "example.org")  # noqa: S104
    assert not any(is_loopback(h) for h in beyond)


@pytest.fixture
def tls_dashboard(federation: ServerDirectory) -> Iterator[str]:
    """The dashboard served with the federation's server certificate, as beyond loopback."""
    import uvicorn

    token = read_token(federation.root / TOKEN_FILE)
    tls = Tls(federation.path(SERVER_CERT), federation.path(SERVER_KEY))
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            operator_app(federation, token, tls=True), host="127.0.0.1", port=port,
            log_level="warning", ws="none", lifespan="on",
            ssl_certfile=str(tls.certificate), ssl_keyfile=str(tls.key),
        )
    )  # fmt: skip
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "the dashboard did not start"
        time.sleep(0.05)
    yield f"https://localhost:{port}"
    server.should_exit = True
    thread.join(timeout=10)


def test_tls_with_the_federation_certificate_and_the_token(
    federation: ServerDirectory, tls_dashboard: str
) -> None:
    context = ssl.create_default_context(cafile=str(federation.path(CA_CERT)))
    token = read_token(federation.root / TOKEN_FILE)

    def status(path: str, bearer: str | None) -> int:
        request = urllib.request.Request(tls_dashboard + path)  # noqa: S310 - https on loopback
        if bearer:
            request.add_header("Authorization", f"Bearer {bearer}")
        try:
            with urllib.request.urlopen(request, context=context, timeout=10) as answer:  # noqa: S310
                return int(answer.status)
        except urllib.error.HTTPError as error:
            return int(error.code)

    assert status("/api/v1/runs", None) == 401
    assert status("/api/v1/runs", token) == 200
    with pytest.raises(urllib.error.URLError, match="CERTIFICATE_VERIFY_FAILED"):
        urllib.request.urlopen(tls_dashboard + "/metrics", timeout=10)  # noqa: S310 - no CA given


def test_dashboard_command_refuses_bad_input_in_one_line(cli: Cli, tmp_path: Path) -> None:
    init_federation(tmp_path / "fed", name="demo", hosts=[], port=9092)
    fed = str(tmp_path / "fed")
    cases = {
        ("--port", "0"): "is not a TCP port",
        ("--token-file", str(tmp_path / "none")): "no dashboard token",
    }
    for args, message in cases.items():
        result = cli.run("server", "dashboard", fed, *args, timeout=60)
        error = result.stderr.decode()
        assert result.returncode != 0 and message in error and "Traceback" not in error, error
    assert cli.run("server", "dashboard", fed, "--port", "0").returncode == 2


def test_server_init_prints_and_keeps_the_token(cli: Cli, tmp_path: Path) -> None:
    result = cli.run("server", "init", str(tmp_path / "fed"), timeout=60)
    assert result.returncode == 0, result.stderr
    token_file = tmp_path / "fed" / TOKEN_FILE
    assert token_file.stat().st_mode & 0o777 == 0o600
    assert read_token(token_file) in result.stdout.decode().replace("\n", "")


def test_weekly_savings_count_hits_and_seconds_per_tool_and_week(home: Path) -> None:
    with Store.open(home) as store:
        for tool, outcome, saved in (
            ("llm", "hit", 2.5),
            ("llm", "miss", 0.0),
            ("claude", "hit", 1.0),
        ):
            record(
                store,
                Event(tool, "k", outcome, 1.0, 10, 0, outcome == "miss", "", saved_s=saved),
            )
        weeks = weekly_savings(store, since=time.time() - WEEK_S)
    assert [(w.tool, w.calls_saved, w.time_saved_s) for w in weeks] == [
        ("claude", 1, 1.0),
        ("llm", 1, 2.5),
    ]
    start = dt.datetime.fromtimestamp(weeks[0].week_start, dt.UTC)
    assert (start.weekday(), start.hour, start.minute) == (0, 0, 0)  # a Monday, midnight UTC
    assert weeks[0].week_start <= time.time() < weeks[0].week_start + WEEK_S


def test_the_api_is_versioned_and_described(federation: ServerDirectory) -> None:
    schema = operator_app(federation, "x" * 32).openapi()
    paths = set(schema["paths"])
    assert {"/api/v1/runs", "/api/v1/versions", "/api/v1/privacy", "/api/v1/nodes"} <= paths
    assert {"/api/v1/alerts", "/api/v1/alerts/{alert_id}/ack", "/metrics"} <= paths
    assert json.dumps(schema)  # plain JSON
