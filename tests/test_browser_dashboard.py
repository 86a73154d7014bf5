"""The operator's dashboard in a real browser, over a registry a real simulation filled.

One federation directory (``server init``), one dashboard process and one
Chromium for the module; a simulation runs while the runs page is open, so
the page is seen following it live.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from aicache.deploy.distribution import sign_version
from aicache.deploy.node_book import NodeBook
from aicache.registry import ModelRegistry
from aicache.security import signing
from tests.browser_support import (
    WebServer,
    browser,  # noqa: F401 - the module's Chromium fixture
    free_port,
    isolated_env,
    screenshot,
    start_web,
)

pytestmark = [pytest.mark.e2e, pytest.mark.needs_extra("simulation")]

ROUNDS = 5
BUDGET = 1000.0


@dataclass
class Federation:
    root: Path
    token: str
    web: WebServer
    env: dict[str, str]
    work: Path

    def registry(self) -> ModelRegistry:
        return ModelRegistry(self.root / "registry")

    def get(self, path: str, token: str | None = None) -> tuple[int, bytes]:
        request = urllib.request.Request(self.web.url + path)  # noqa: S310 - http on loopback
        if token is not None:
            request.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310
                return int(answer.status), bytes(answer.read())
        except urllib.error.HTTPError as error:
            return int(error.code), bytes(error.read())


@pytest.fixture(scope="module")
def federation(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Federation]:
    work = tmp_path_factory.mktemp("dashboard")
    env = isolated_env(work / "aicache-home")
    init = subprocess.run(
        [sys.executable, "-m", "aicache", "server", "init", "fed", "--name", "demo"],
        cwd=work,
        env=env,
        capture_output=True,
        check=False,
        timeout=60,
    )
    assert init.returncode == 0, init.stderr
    token = (work / "fed" / "dashboard.token").read_text().strip()
    assert token in init.stdout.decode().replace("\n", "")  # server init prints it
    web = start_web(["server", "dashboard", "fed", "--port", str(free_port())], env=env, cwd=work)
    yield Federation(work / "fed", token, web, env, work)
    web.stop()


@pytest.fixture(scope="module")
def page(browser: Any, federation: Federation) -> Iterator[Any]:  # noqa: F811
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    opened = context.new_page()
    opened.goto(f"{federation.web.url}/?token={federation.token}")
    yield opened
    context.close()


@pytest.fixture(scope="module")
def followed(federation: Federation, page: Any) -> dict[str, Any]:
    """Run a simulation while the runs page is open; what the page showed meanwhile."""
    page.goto(f"{federation.web.url}/runs")
    page.wait_for_selector("body[data-drawn]")
    page.evaluate("window.__notReloaded = true")
    simulation = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "aicache",
            "simulate",
            "--clients",
            "3",
            "--rounds",
            str(ROUNDS),
            "--dp",
            "central",
            "--noise-multiplier",
            "2.0",
            "--budget",
            str(BUDGET),
            "--registry",
            str(federation.root / "registry"),
            "--out",
            "report",
        ],
        cwd=federation.work,
        env=federation.env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    seen: list[tuple[str, int]] = []
    try:
        while simulation.poll() is None:
            section = page.query_selector("section[data-run]")
            if section is not None:
                state = (
                    section.get_attribute("data-status"),
                    int(section.get_attribute("data-round")),
                )
                if not seen or seen[-1] != state:
                    seen.append(state)
            time.sleep(0.1)
        _, error = simulation.communicate(timeout=60)
    finally:
        if simulation.poll() is None:
            simulation.kill()
            simulation.wait()
    assert simulation.returncode == 0, error.decode()[-2000:]
    with federation.registry() as registry:
        (run,) = registry.all_runs()
    page.wait_for_selector(f'section[data-run="{run.run_id}"][data-status="finished"]')
    return {"seen": seen, "run": run, "not_reloaded": page.evaluate("window.__notReloaded")}


def test_runs_page_shows_the_registry_numbers(
    federation: Federation, page: Any, followed: dict[str, Any], tmp_path: Path
) -> None:
    run = followed["run"]
    page.goto(f"{federation.web.url}/runs")
    section = page.wait_for_selector(f'section[data-run="{run.run_id}"]')
    with federation.registry() as registry:
        versions = registry.run_versions(run.run_id)
    assert [v.round for v in versions] == list(range(1, ROUNDS + 1))
    assert section.get_attribute("data-round") == str(ROUNDS)
    headers = [h.inner_text() for h in section.query_selector_all(".scroll thead th")]
    for version in versions:
        cells = [
            c.inner_text()
            for c in section.query_selector_all(f'tr[data-round="{version.round}"] td')
        ]
        row = dict(zip(headers, cells, strict=True))
        assert row["version"] == str(version.version)
        assert row["accepted"] == str(version.num_clients) == row["clients asked"] == "3"
        assert row["top-1"] == f"{version.metrics['eval.top1']:.4f}"
        assert row["ε"] == f"{version.privacy['epsilon']:.3f}"
    assert section.query_selector("[data-chart] canvas") is not None  # the headline chart
    screenshot(page, tmp_path, "dashboard-runs")


def test_versions_page_shows_lineage_signatures_and_privacy(
    federation: Federation, page: Any, followed: dict[str, Any], tmp_path: Path
) -> None:
    key = signing.load_private((federation.root / "keys" / "signing.key").read_bytes())
    with federation.registry() as registry:
        versions = registry.versions("next-command")
        signed = versions[-1]
        sign_version(registry, signed, key, "demo")  # what `server run` does to each version
    page.goto(f"{federation.web.url}/versions")
    section = page.wait_for_selector('section[data-task="next-command"]')
    rows = section.query_selector_all("tr[data-version]")
    assert len(rows) == len(versions)
    headers = [h.inner_text() for h in section.query_selector_all(".scroll thead th")]
    for version in versions:
        cells = [
            c.inner_text()
            for c in section.query_selector_all(f'tr[data-version="{version.version}"] td')
        ]
        row = dict(zip(headers, cells, strict=True))
        assert row["signature"] == ("valid" if version is signed else "unsigned")
        assert row["parent"] == ("–" if version.parent is None else str(version.parent))
        assert row["z"] == f"{version.privacy['noise_multiplier']:.3f}"
        assert row["C"] == f"{version.privacy['clip']:.3f}"
    screenshot(page, tmp_path, "dashboard-versions")


def test_privacy_page_gauges_the_budget(
    federation: Federation, page: Any, followed: dict[str, Any], tmp_path: Path
) -> None:
    with federation.registry() as registry:
        newest = registry.latest("next-command")
        ledger = registry.ledger("next-command")
    assert newest is not None
    page.goto(f"{federation.web.url}/privacy")
    section = page.wait_for_selector('section[data-task="next-command"]')
    meter = section.query_selector("meter")
    assert float(meter.get_attribute("max")) == BUDGET
    assert float(meter.get_attribute("value")) == pytest.approx(
        newest.privacy["federation_epsilon"]
    )
    assert f"{newest.privacy['federation_epsilon']:.3f}" in section.inner_text()
    assert len(section.query_selector_all("h3 + table tbody tr")) == len(ledger)
    screenshot(page, tmp_path, "dashboard-privacy")


def test_nodes_and_alerts_pages(
    federation: Federation, page: Any, followed: dict[str, Any], tmp_path: Path
) -> None:
    with NodeBook(federation.root / "nodes.db") as book:
        book.add("alice", 4242, "public-key")
        book.took_part([4242], followed["run"].run_id, 3)
    with federation.registry() as registry:
        failed = registry.start_run("next-command", {"plan": {"rounds": 2}})
        registry.finish_run(failed, "failed", "the SuperLink went away")
    page.goto(f"{federation.web.url}/nodes")
    row = page.wait_for_selector('tr[data-node="4242"]')
    cells = [c.inner_text() for c in row.query_selector_all("td")]
    assert cells[:2] == ["alice", "4242"] and cells[4] == "3"
    screenshot(page, tmp_path, "dashboard-nodes")
    page.goto(f"{federation.web.url}/alerts")
    alert = page.wait_for_selector(f'tr[data-alert="run-failed:{failed}"]')
    assert "the SuperLink went away" in alert.inner_text()
    screenshot(page, tmp_path, "dashboard-alerts")
    alert.query_selector("button[data-ack]").click()
    page.wait_for_selector(f'tr[data-alert="run-failed:{failed}"] >> text=acknowledged')
    status, body = federation.get("/api/v1/alerts", federation.token)
    acked = {a["id"]: a["acknowledged"] for a in json.loads(body)}
    assert status == 200 and acked[f"run-failed:{failed}"] is True


def test_metrics_endpoint_reports_rounds_and_budget(
    federation: Federation, followed: dict[str, Any]
) -> None:
    status, body = federation.get("/metrics", federation.token)
    text = body.decode()
    run = followed["run"].run_id
    assert status == 200
    assert (
        f'aicache_run_round{{run="{run}",task="next-command",status="finished"}} {float(ROUNDS)}'
        in text
    )
    assert "aicache_privacy_budget{" in text and f"}} {BUDGET}" in text


def test_every_request_needs_the_token(
    federation: Federation,
    browser: Any,  # noqa: F811 - the imported fixture
    followed: dict[str, Any],
) -> None:
    for path in ("/runs", "/api/v1/runs", "/api/v1/versions", "/metrics", "/static/dashboard.js"):
        assert federation.get(path)[0] == 401, path
        assert federation.get(path, "not-the-token")[0] == 401, path
        assert federation.get(path, federation.token)[0] == 200, path
    stranger = browser.new_context()
    try:
        tab = stranger.new_page()
        assert tab.goto(f"{federation.web.url}/runs").status == 401
        assert tab.goto(f"{federation.web.url}/runs?token=wrong").status == 401
        assert "access token" in tab.inner_text("body")
        assert tab.goto(f"{federation.web.url}/runs?token={federation.token}").status == 200
        (cookie,) = stranger.cookies()
        assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
        assert "token=" not in tab.url  # taken out of the address bar
    finally:
        stranger.close()


def test_runs_page_follows_a_live_run_round_by_round(
    federation: Federation, page: Any, followed: dict[str, Any]
) -> None:
    """Last in the module: it adds a run. A real simulation may finish several rounds
    between two refreshes of the page, so here the engine's own run session writes the
    rounds, one at a time, each once the page has shown the one before."""
    from flwr.app import ArrayRecord
    from flwr.serverapp.strategy import FedAvg

    from aicache.federation.plan import TrainingPlan
    from aicache.federation.session import RunSession
    from aicache.federation.validation import ValidatedStrategy
    from aicache.tasks.base import get_task

    assert followed["not_reloaded"] is True  # the page updated itself during the simulation
    page.goto(f"{federation.web.url}/runs")
    page.wait_for_selector("body[data-drawn]")
    page.evaluate("window.__notReloaded = true")
    session = RunSession.begin(
        registry_root=federation.root / "registry",
        plan=TrainingPlan(task="next-command", rounds=3),
        federation="simulation: live",
    )
    observer = session.observe()
    observer.bind(ValidatedStrategy(FedAvg(), task="next-command", max_update_norm=100.0))
    model = get_task("next-command").init_params(1)
    for number in (1, 2):
        model = [a + 0.1 for a in model]
        observer.after_round(number, ArrayRecord(model))
        page.wait_for_selector(
            f'section[data-run="{session.run_id}"][data-status="running"][data-round="{number}"]',
            timeout=60_000,
        )
    assert page.evaluate("window.__notReloaded") is True  # shown live, without a reload
