"""The cache at work on a bundled fake AI CLI (what ``make demo`` runs).

It uses a throw-away aicache home, so nothing of yours is read or written:
the same question asked twice costs the tool's full answer time once, then
is served from the private store.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.panel import Panel

ROOT = Path(__file__).resolve().parents[1]
FAKE_AI = ROOT / "examples" / "fake-ai"
console = Console()


def aicache(*args: str, env: dict[str, str]) -> tuple[float, subprocess.CompletedProcess[str]]:
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "aicache", *args],
        env=env,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    return time.perf_counter() - started, result


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="aicache-demo-") as tmp:
        env = {
            **os.environ,
            "AICACHE_HOME": str(Path(tmp) / "home"),
            "FAKE_AI_COUNTER": str(Path(tmp) / "calls"),
            "FAKE_AI_DELAY": "1.5",
        }
        question = ["how do I squash my last three commits?"]
        console.print(
            Panel.fit(
                "A fake AI CLI that takes 1.5 s to answer, asked the same question twice "
                "through [bold]aicache run[/], then once with [bold]--refresh[/].",
                title="aicache demo",
            )
        )
        for label, extra in (
            ("first ask", []),
            ("same question", []),
            ("--refresh", ["--refresh"]),
        ):
            seconds, result = aicache("run", *extra, "--", str(FAKE_AI), *question, env=env)
            if result.returncode != 0:
                console.print(f"[red]aicache run failed:[/] {result.stderr}")
                return 1
            calls = len(Path(env["FAKE_AI_COUNTER"]).read_text().splitlines())
            console.print(
                f"[bold]{label:>14}[/]  {seconds * 1000:7.0f} ms   "
                f"tool started {calls} time(s) so far   {result.stdout.splitlines()[0]}"
            )
        _, stats = aicache("stats", env=env)
        console.print(stats.stdout)
        _, shown = aicache("privacy", "show", env=env)
        console.print(shown.stdout)
    console.print("The demo's store was temporary and is gone. Try it for real:")
    console.print("  .venv/bin/aicache run -- <your AI CLI> <question>    .venv/bin/aicache --help")
    return 0


if __name__ == "__main__":
    sys.exit(main())
