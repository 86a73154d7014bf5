"""With raw storage off, no planted secret or prompt is in any byte of the aicache home."""

# ruff: noqa: S105 (the made-up secrets below are what the test plants)

from __future__ import annotations

import json
import sqlite3
import stat
from pathlib import Path

import pytest

from aicache.local.cache import Event, NewEntry, make_key, record, refreshable
from aicache.local.home_key import home_key
from aicache.local.store import Store
from tests.conftest import Cli

pytestmark = pytest.mark.e2e

API_KEY = "sk-ant-api03-PLANTEDk3yZx9Kq2Lm7Pw4Rt8Vb1Nc6"
TOKEN = "ghp_PLANTEDt0ken0123456789abcdefABCDEF01"
ENV_SECRET = "PLANTEDenvS3cretValue"
PASSWORD = "hunter2-PLANTED-pw"
GLUED = "HUNTER2PASS"
GLUED_PROMPT = "PROMPTglued"
ECHOED_PROMPT = "tell PLANTED-NIGHTJAR about the layoffs"
PASTED_KEY = "sk-ant-api03-PLANTEDpasted0123456789abcdXYZ"
HISTORY_PASSWORD = "HISTORYPASS123"
BEARER = "PLANTEDbearer0123456789abcdefXYZ"
PLANTED = [
    API_KEY,
    TOKEN,
    ENV_SECRET,
    PASSWORD,
    GLUED,
    GLUED_PROMPT,
    "NIGHTJAR",
    "layoffs",
    PASTED_KEY,
    HISTORY_PASSWORD,
    BEARER,
]


def _tool(bin_dir: Path, name: str, body: str) -> None:
    path = bin_dir / name
    path.write_text("#!/bin/sh\n" + body + "\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


def _every_file(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()]


def test_no_planted_secret_or_prompt_is_kept_anywhere_in_the_home(cli: Cli, tmp_path: Path) -> None:
    # Prepare: tools that answer without repeating their arguments, one that
    # fails echoing its prompt to stderr, and a history with a pasted key.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    _tool(bin_dir, "deploy", f'echo x >> "{tmp_path}/deploy.count"; echo deployed')
    _tool(bin_dir, "mysql", "echo '1 row'")
    _tool(bin_dir, "ask", 'echo "ask: Error: could not answer: $*" >&2; exit 1')
    path = f"{bin_dir}:{cli.env['PATH']}"
    history = cli.cwd / "history"
    history.write_text(
        "git status\n"
        f"{PASTED_KEY}\n"
        f"mysql -p{HISTORY_PASSWORD} shop\n"
        f"export GITHUB_TOKEN={TOKEN}\n"
        f"curl -H 'Authorization: Bearer {BEARER}' https://api.example.com\n"
    )
    secret_run = (
        "run",
        "--",
        "deploy",
        f"--api-key={API_KEY}",
        "--token",
        TOKEN,
        f"OPENAI_API_KEY={ENV_SECRET}",
        f"--password={PASSWORD}",
    )
    results = [cli.run(*secret_run, PATH=path)]
    # A reader held open keeps the write-ahead log on disk, so it is searched too.
    reader = sqlite3.connect(cli.home / "store.db")
    reader.execute("SELECT count(*) FROM events").fetchone()
    try:
        # Execute
        results += [
            cli.run(*secret_run, PATH=path),  # a hit: the stored argv still matches
            cli.run("run", "--", "mysql", f"-p{GLUED}", "-e", "select 1", PATH=path),
            cli.run("run", "--", "fake-ai", f"-p{GLUED_PROMPT}", "fail"),
            cli.run("run", "--", "ask", ECHOED_PROMPT, PATH=path),
            cli.run("import", "history", "--shell", "bash", str(history)),
        ]
        files = _every_file(cli.home)
        found = {
            str(p.relative_to(cli.home)): [s for s in PLANTED if s.lower().encode() in data]
            for p in files
            if (data := p.read_bytes().lower())
        }
    finally:
        reader.close()
    # Assert
    assert [r.returncode for r in results] == [0, 0, 0, 3, 1, 0], [r.stderr for r in results]
    assert {"store.db", "store.db-wal"} <= set(found)
    assert {name: hits for name, hits in found.items() if hits} == {}
    assert (tmp_path / "deploy.count").read_text().count("x") == 1
    with sqlite3.connect(cli.home / "store.db") as conn:
        tokens = [t for (t,) in conn.execute("SELECT tokens FROM events ORDER BY id")]
        signature = conn.execute("SELECT error_signature FROM events WHERE tool = 'ask'").fetchone()
        programs = [p for (p,) in conn.execute("SELECT program FROM commands ORDER BY seq")]
        flags = [json.loads(f) for (f,) in conn.execute("SELECT flags FROM commands ORDER BY seq")]
    conn.close()
    assert tokens[2:4] == ["mysql -p -e", "fake-ai -p"]
    assert signature == ("error: <w>: Error: could not <w>",)
    assert programs == ["git", "mysql", "export", "curl"]
    assert flags == [[], ["-p"], [], ["-H"]]
    listed = json.loads(cli.run("list", "--json").stdout)
    deploy = next(e for e in listed if e["tool"] == "deploy")
    assert deploy["hits"] == 1
    assert deploy["argv"][1].startswith("--api-key=<secret:")


def test_prefetch_never_picks_an_entry_whose_secret_is_only_hashed(home: Path) -> None:
    # Prepare: two expired entries of one tool, one run with an API key
    with Store.open(home) as store:
        for argv in (["llm", "plain question"], ["llm", f"--api-key={API_KEY}", "question"]):
            key = make_key(argv, b"", {}, secret=home_key(home))
            event = Event(key.tool, key.event_hash, "miss", 1.0, 3, 0, True, "llm")
            record(store, event, entry=NewEntry(key, b"ans", b"", 0, 1.0, expires_at=1.0))
        # Execute
        due = refreshable(store, frozenset({"llm"}), now=10.0, within_s=0.0)
    # Assert: the plain one can be re-run; the other cannot be rebuilt from its hash
    assert [r.argv for r in due] == [("llm", "plain question")]
