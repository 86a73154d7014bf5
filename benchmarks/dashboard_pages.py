"""Page load of the operator's dashboard over a registry of 1,000 model versions.

Builds a federation directory (``init_federation``) whose registry holds
``--versions`` signed versions with central-DP privacy records, split over
two tasks and runs of ``--rounds`` rounds each, one ledger row per run and
``--nodes`` enrolled nodes; serves it with ``aicache server dashboard`` (a
real uvicorn process on loopback) and loads every page.

Server time of a page is the sum of the ``Server-Timing`` the dashboard gives
its HTML and the API answer its script draws from: on the first load after
the dashboard starts, after each change of the registry (a write before every
sample, so every answer is read afresh), and with the registry unchanged
(answers kept from the previous load). Browser time (with
``--browser``, Debian's chromium through Playwright) is from navigation to
the page having drawn its data.

Usage::

    python benchmarks/dashboard_pages.py [--versions 1000] [--samples 20] [--browser]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.browser_support import free_port, start_web  # noqa: E402

from aicache.deploy.distribution import sign_version  # noqa: E402
from aicache.deploy.node_book import NodeBook  # noqa: E402
from aicache.registry import ModelRegistry  # noqa: E402
from aicache.security import signing  # noqa: E402
from aicache.security.federation_dir import init_federation  # noqa: E402
from aicache.tasks.spec import get_spec  # noqa: E402
from aicache.web.auth import TOKEN_FILE, write_token  # noqa: E402

PAGES = {
    "runs": "/api/v1/runs",
    "versions": "/api/v1/versions?limit=100",
    "privacy": "/api/v1/privacy",
    "nodes": "/api/v1/nodes",
    "alerts": "/api/v1/alerts",
}
TASKS = ("next-command", "semantic-hit")


def build(root: Path, versions: int, rounds: int, nodes: int) -> None:
    """A federation directory with ``versions`` signed versions and ``nodes`` nodes."""
    init_federation(root, name="bench", hosts=[], port=9092)
    write_token(root / TOKEN_FILE)
    key = signing.load_private((root / "keys" / "signing.key").read_bytes())
    rng = np.random.default_rng(0)
    made = 0
    with ModelRegistry(root / "registry") as registry:
        while made < versions:
            task = TASKS[(made // rounds) % len(TASKS)]
            headline = [m.name for m in get_spec(task).headline]
            plan = {
                "rounds": rounds,
                "selection": {"fraction": 0.5, "min_clients": 2, "min_available": 40},
            }
            run = registry.start_run(task, {"plan": plan, "federation": "bench"})
            parent = registry.latest(task)
            for round_ in range(1, min(rounds, versions - made) + 1):
                epsilon = 0.2 * round_
                privacy = {
                    "dp": "central",
                    "mechanism": "gaussian",
                    "noise_multiplier": 1.1,
                    "clip": 1.0,
                    "epsilon": epsilon,
                    "delta": 1e-5,
                    "rounds": round_,
                    "federation": "bench",
                    "federation_epsilon": epsilon,
                    "budget": 50.0,
                }
                version = registry.register(
                    task,
                    [rng.standard_normal(64)],
                    run_id=run,
                    round=round_,
                    parent=None if parent is None else parent.version,
                    strategy="fedavg",
                    strategy_config={},
                    num_clients=20 - round_ % 3,
                    metrics={f"eval.{name}": float(rng.random()) for name in headline},
                    privacy=privacy,
                )
                sign_version(registry, version, key, "bench")
                parent = version
                made += 1
            registry.record_spend(
                run_id=run,
                task=task,
                federation="bench",
                spend={"mode": "central"},
                rounds=rounds,
                epsilon=0.2 * rounds,
                delta=1e-5,
            )
            registry.finish_run(run, "finished")
    with NodeBook(root / "nodes.db") as book:
        for index in range(nodes):
            book.add(f"node-{index:03d}", 10_000 + index, "key")


def touch(root: Path) -> None:
    """Write to the registry without changing what it holds (a ledger row re-recorded)."""
    with ModelRegistry(root / "registry") as registry:
        row = registry.ledger(TASKS[0])[0]
        registry.record_spend(
            run_id=row["run_id"], task=TASKS[0], federation=row["federation"],
            spend=row["spend"], rounds=row["rounds"], epsilon=row["epsilon"], delta=row["delta"],
        )  # fmt: skip


def page_ms(base: str, page: str, api: str, token: str) -> float:
    """Server time of one page: its HTML and the API answer it draws."""
    return server_ms(f"{base}/{page}", token) + server_ms(base + api, token)


def server_ms(url: str, token: str) -> float:
    """What the dashboard reported spending on one answer, in milliseconds."""
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})  # noqa: S310
    with urllib.request.urlopen(request, timeout=60) as answer:  # noqa: S310 - loopback
        answer.read()
        timing = answer.headers["Server-Timing"]
    return float(timing.split("dur=")[1])


def browser_ms(base: str, token: str, samples: int) -> dict[str, list[float]]:
    """Navigation to drawn, per page, in Chromium."""
    from playwright.sync_api import sync_playwright

    found: dict[str, list[float]] = {page: [] for page in PAGES}
    executable = shutil.which("chromium")
    if executable is None:
        raise SystemExit("--browser needs chromium (apt-get install -y chromium)")
    args = ["--no-sandbox"] if os.geteuid() == 0 else []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=args)
        tab = browser.new_page()
        tab.goto(f"{base}/?token={token}")
        for _ in range(samples):
            for page in PAGES:
                started = time.perf_counter()
                tab.goto(f"{base}/{page}")
                tab.wait_for_selector("body[data-drawn]")
                found[page].append((time.perf_counter() - started) * 1000)
        browser.close()
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--versions", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=50, help="versions per run")
    parser.add_argument("--nodes", type=int, default=100)
    parser.add_argument("--samples", type=int, default=20)
    parser.add_argument("--browser", action="store_true", help="also time pages in chromium")
    parser.add_argument("--out", type=Path, help="write the results as JSON here")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        started = time.perf_counter()
        build(work / "fed", options.versions, options.rounds, options.nodes)
        print(f"built {options.versions} versions in {time.perf_counter() - started:.1f} s")
        env = {k: v for k, v in os.environ.items() if not k.startswith("AICACHE_")}
        env["AICACHE_HOME"] = str(work / "home")
        web = start_web(["server", "dashboard", "fed", "--port", str(free_port())], env, work)
        try:
            token = web.token
            results: dict[str, Any] = {"versions": options.versions, "pages": {}}
            for page, api in PAGES.items():
                first = page_ms(web.url, page, api, token)
                changed, unchanged = [], []
                for _ in range(options.samples):
                    touch(work / "fed")  # a write: every answer is read afresh
                    changed.append(page_ms(web.url, page, api, token))
                    unchanged.append(page_ms(web.url, page, api, token))
                results["pages"][page] = {
                    "first_ms": first,
                    "changed_ms_median": statistics.median(changed),
                    "changed_ms_max": max(changed),
                    "unchanged_ms_median": statistics.median(unchanged),
                }
            if options.browser:
                for page, times in browser_ms(web.url, token, options.samples).items():
                    results["pages"][page]["browser_ms_median"] = statistics.median(times)
        finally:
            web.stop()
    heads = ["page", "first load", "after a change", "(max)", "unchanged"]
    heads += ["browser"] if options.browser else []
    print(" | ".join(heads))
    for page, row in results["pages"].items():
        cells = [
            page,
            f"{row['first_ms']:.1f}",
            f"{row['changed_ms_median']:.1f}",
            f"{row['changed_ms_max']:.1f}",
            f"{row['unchanged_ms_median']:.1f}",
        ]
        if options.browser:
            cells.append(f"{row['browser_ms_median']:.0f}")
        print(" | ".join(cells))
    if options.out is not None:
        options.out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
