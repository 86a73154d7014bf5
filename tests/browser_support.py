"""What the browser tests share: Chromium through Playwright, and a real web server process."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS_IMAGES = ROOT / "docs" / "images"
# Set to write each page's screenshot into docs/images too (the README's pictures).
DOCS_SCREENSHOTS = os.environ.get("AICACHE_DOCS_SCREENSHOTS") == "1"
QUIET = {"FLWR_TELEMETRY_ENABLED": "0", "FLWR_DISABLE_UPDATE_CHECK": "1"}


def chromium() -> str:
    """Debian's Chromium, or skip saying how to get it."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        pytest.skip("browser tests need Chromium: apt-get install -y chromium (.ci/run does)")
    return found


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One headless Chromium for the module."""
    executable = chromium()
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="browser tests need Playwright: pip install '.[test]'"
    )
    # Chromium's sandbox needs user namespaces, which a root CI container lacks.
    args = ["--no-sandbox"] if os.geteuid() == 0 else []
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, args=args)
        yield launched
        launched.close()


def free_port() -> int:
    """A TCP port free on loopback right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class WebServer:
    """A running ``aicache server dashboard`` or ``aicache ui`` process."""

    process: subprocess.Popen[bytes]
    url: str
    token: str

    def stop(self) -> None:
        """End it (and anything it started) and wait."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        for stream in (self.process.stdout, self.process.stderr):
            if stream is not None:
                stream.close()


_OPEN = re.compile(rb"Open: (https?://[^/\s]+)/\?token=(\S+)")


def start_web(args: list[str], env: dict[str, str], cwd: Path) -> WebServer:
    """Start ``aicache ARGS`` and wait until it prints its address and answers on it."""
    process = subprocess.Popen(
        [sys.executable, "-m", "aicache", *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**env, **QUIET},
        cwd=cwd,
        start_new_session=True,
    )
    assert process.stdout is not None
    seen = b""
    while (found := _OPEN.search(seen)) is None:
        line = process.stdout.readline()
        if not line:
            error = process.stderr.read() if process.stderr else b""
            raise AssertionError(f"{args} ended: {(seen + error).decode()[-2000:]}")
        seen += line
    server = WebServer(process, found.group(1).decode(), found.group(2).decode())
    host, port = server.url.rsplit("//", 1)[1].rsplit(":", 1)
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection((host, int(port)), timeout=1).close()
            return server
        except OSError:
            if time.monotonic() > deadline or process.poll() is not None:
                server.stop()
                raise AssertionError(f"{args} never listened on {server.url}") from None
            time.sleep(0.1)


def screenshot(page: Any, folder: Path, name: str) -> None:
    """Save the page under ``folder`` and, when asked for, into docs/images."""
    page.screenshot(path=str(folder / f"{name}.png"), full_page=True)
    if DOCS_SCREENSHOTS:
        DOCS_IMAGES.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(DOCS_IMAGES / f"{name}.png"), full_page=False)


def isolated_env(home: Path) -> dict[str, str]:
    """The environment with its own aicache home and HOME (no AICACHE_ settings leak in)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AICACHE_", "XDG_"))}
    user = home.parent / "user"
    user.mkdir(parents=True, exist_ok=True)
    env.update(AICACHE_HOME=str(home), HOME=str(user), **QUIET)
    return env
