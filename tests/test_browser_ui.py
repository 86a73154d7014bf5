"""The developer's page (``aicache ui``) in a real browser, over a cache the real CLI filled."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from aicache.local.cache import list_entries
from aicache.local.stats import cache_stats
from aicache.local.store import Store
from aicache.tasks.spec import all_specs
from tests.browser_support import (
    ROOT,
    WebServer,
    browser,  # noqa: F401 - the module's Chromium fixture
    free_port,
    isolated_env,
    screenshot,
    start_web,
)

pytestmark = pytest.mark.e2e

PROMPTS = ("how do I rebase", "explain this stack trace", "zebra-sentinel-4711 plan")


@dataclass
class Developer:
    home: Path
    env: dict[str, str]
    work: Path
    web: WebServer

    def ask(self, prompt: str) -> None:
        done = subprocess.run(
            [sys.executable, "-m", "aicache", "run", "--", "fake-ai", prompt],
            env=self.env,
            cwd=self.work,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            check=False,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr

    def holds(self, text: bytes) -> list[Path]:
        """Every file under the home whose bytes contain ``text``."""
        return [p for p in self.home.rglob("*") if p.is_file() and text in p.read_bytes()]


@pytest.fixture(scope="module")
def developer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Developer]:
    work = tmp_path_factory.mktemp("ui")
    env = isolated_env(work / "aicache-home")
    env.update(
        FAKE_AI_DELAY="0.2",
        PATH=os.pathsep.join([str(ROOT / "examples"), env.get("PATH", os.defpath)]),
    )
    web = start_web(["ui", "--port", str(free_port())], env=env, cwd=work)
    found = Developer(work / "aicache-home", env, work, web)
    for prompt in (*PROMPTS, PROMPTS[0]):  # the repeat is an exact hit
        found.ask(prompt)
    yield found
    web.stop()


@pytest.fixture(scope="module")
def page(browser: Any, developer: Developer) -> Iterator[Any]:  # noqa: F811
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    opened = context.new_page()
    opened.goto(f"{developer.web.url}/?token={developer.web.token}")
    yield opened
    context.close()


def _drawn(page: Any, url: str) -> None:
    page.goto(url)
    page.wait_for_selector("body[data-drawn]")


def test_cache_page_shows_the_stores_numbers(
    developer: Developer, page: Any, tmp_path: Path
) -> None:
    with Store.open(developer.home) as store:
        stats = cache_stats(store)
        entries = list_entries(store)
    _drawn(page, f"{developer.web.url}/cache")
    assert page.inner_text("#calls") == str(stats.total.calls) == "4"
    assert page.inner_text("#exact-hits") == str(stats.total.hits) == "1"
    assert page.inner_text("#entries") == str(stats.entries) == "3"
    largest = max(entries, key=lambda e: e.size)
    assert page.get_attribute("#largest tbody tr", "data-key") == largest.key[:12]
    oldest = min(entries, key=lambda e: e.created_at)
    assert page.get_attribute("#oldest tbody tr", "data-key") == oldest.key[:12]
    assert page.query_selector('[data-chart="Calls saved per week"] canvas') is not None
    screenshot(page, tmp_path, "ui-cache")


def test_models_and_privacy_pages(developer: Developer, page: Any, tmp_path: Path) -> None:
    _drawn(page, f"{developer.web.url}/models")
    shown = {row.get_attribute("data-task") for row in page.query_selector_all("tr[data-task]")}
    # the built-in tasks (tests elsewhere in this process register tasks of their own)
    assert shown == {
        spec.name for spec in all_specs() if spec.factory.__module__.startswith("aicache.")
    }
    screenshot(page, tmp_path, "ui-models")
    _drawn(page, f"{developer.web.url}/privacy")
    assert "Nothing has left this machine" in page.inner_text("main")
    screenshot(page, tmp_path, "ui-privacy")


def test_the_page_needs_its_token(developer: Developer, browser: Any) -> None:  # noqa: F811
    stranger = browser.new_context()
    try:
        tab = stranger.new_page()
        assert tab.goto(f"{developer.web.url}/cache").status == 401
        assert tab.request.post(f"{developer.web.url}/api/v1/actions/clear").status == 401
    finally:
        stranger.close()
    with Store.open(developer.home) as store:
        assert cache_stats(store).entries == 3  # the refused clear deleted nothing


def test_export_prune_clear_and_leave(developer: Developer, page: Any) -> None:
    exported = page.request.get(f"{developer.web.url}/api/v1/actions/export")
    assert exported.status == 200 and PROMPTS[2] in json.dumps(exported.json())
    _drawn(page, f"{developer.web.url}/cache")
    page.click("#prune")
    page.wait_for_selector("body[data-action=prune]")
    assert page.inner_text("#entries") == "3"  # nothing was old enough
    page.click("#clear")
    page.wait_for_selector("body[data-action=clear]")
    assert page.inner_text("#entries") == "0"
    with Store.open(developer.home) as store:
        assert cache_stats(store).entries == 0
    page.click("#leave")
    page.wait_for_selector("body[data-action=leave]")
    assert '"left":false' in page.inner_text("#action-result")  # no node was running


def test_forget_asks_first_then_really_erases(developer: Developer, page: Any) -> None:
    secret = b"zebra-sentinel-9001"
    developer.ask(secret.decode())
    assert developer.holds(secret)
    _drawn(page, f"{developer.web.url}/cache")
    page.once("dialog", lambda dialog: dialog.dismiss())
    page.click("#forget")
    page.click("#prune")  # an action after the dismissed one: forget was never sent
    page.wait_for_selector("body[data-action=prune]")
    assert developer.holds(secret)
    with Store.open(developer.home) as store:
        assert cache_stats(store).entries == 1
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("#forget")
    page.wait_for_selector("body[data-action=forget]")
    assert "erased" in page.inner_text("#action-result")
    assert developer.holds(secret) == []
    assert page.inner_text("#entries") == "0"
