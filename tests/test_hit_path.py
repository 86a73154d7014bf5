"""Serving a hit must not load heavy libraries (the brief: a hit stays light)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import Cli

pytestmark = pytest.mark.e2e

HEAVY = ("numpy", "typer", "rich", "click", "flwr", "ray", "tenseal", "sklearn", "matplotlib")
PROBE = f"""
import json, sys
from aicache.cli import main
code = main(["run", "--", "fake-ai", "light"])
heavy = sorted({{m.split(".")[0] for m in sys.modules}} & set({HEAVY!r}))
sys.stderr.write("\\nPROBE " + json.dumps({{"code": code, "heavy": heavy,
    "subprocess": "subprocess" in sys.modules}}) + "\\n")
"""


def _probe(cli: Cli) -> dict[str, object]:
    result = subprocess.run(
        [sys.executable, "-c", PROBE],
        env=cli.env,
        cwd=cli.cwd,
        capture_output=True,
        check=True,
        timeout=60,
    )
    line = result.stderr.decode().rsplit("PROBE ", 1)[1]
    return dict(json.loads(line))


def test_a_hit_imports_nothing_heavy(cli: Cli) -> None:
    miss = _probe(cli)
    hit = _probe(cli)
    assert miss["code"] == hit["code"] == 0
    assert miss["heavy"] == hit["heavy"] == []
    assert miss["subprocess"] is True
    assert hit["subprocess"] is False
    assert cli.invocations() == 1


def test_a_hit_of_a_prompt_command_imports_nothing_heavy(cli: Cli) -> None:
    # Prepare: fake-ai's words are a prompt, so its miss looks for semantic hits
    assert cli.run("config", "set", "semantic-commands", "fake-ai").returncode == 0
    # Execute
    miss = _probe(cli)
    hit = _probe(cli)
    # Assert: whatever the miss loaded, the hit loads none of it
    assert miss["code"] == hit["code"] == 0
    assert hit["heavy"] == []
    assert hit["subprocess"] is False
    assert cli.invocations() == 1
