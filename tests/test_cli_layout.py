"""The command line's shape: help panels, completion, search, status, narrow terminals,
and a README that names every command."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import typer

from tests.conftest import ROOT, Cli

pytestmark = pytest.mark.e2e


def _command_paths(app: typer.Typer, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every command of ``app`` as its words after ``aicache`` (groups included)."""
    paths = []
    for command in app.registered_commands:
        assert command.name is not None, command
        paths.append((*prefix, command.name))
    for group in app.registered_groups:
        assert group.name is not None and group.typer_instance is not None, group
        paths.append((*prefix, group.name))
        paths.extend(_command_paths(group.typer_instance, (*prefix, group.name)))
    return paths


def test_every_top_level_command_sits_in_a_help_panel(cli: Cli) -> None:
    from aicache.cli.app import PANELS, app

    # Execute
    shown = cli.run("--help", COLUMNS="100")
    # Assert: each command is in one of the five panels, and the help shows them.
    panels = {info.name: info.rich_help_panel for info in app.registered_commands}
    panels.update({info.name: info.rich_help_panel for info in app.registered_groups})
    assert all(panel in PANELS for panel in panels.values()), panels
    assert set(PANELS) == {"Cache", "Learning", "Federation", "Privacy", "Admin"}
    for title in PANELS:
        assert f"─ {title} ─" in shown.stdout.decode()


def test_shell_completion_completes_commands(cli: Cli) -> None:
    result = cli.run(_AICACHE_COMPLETE="complete_bash", COMP_WORDS="aicache mod", COMP_CWORD="1")
    assert result.returncode == 0, result.stderr
    assert result.stdout.decode().split() == ["models"]


def test_list_search_keeps_the_entries_whose_command_matches(cli: Cli) -> None:
    # Prepare
    for prompt in ("rebase onto main", "Squash the last commits", "squash again"):
        assert cli.run("run", "--", "fake-ai", prompt, FAKE_AI_DELAY="0").returncode == 0
    # Execute
    found = cli.run("list", "--search", "SQUASH", "--json")
    none = cli.run("list", "--search", "nothing like this")
    # Assert
    assert found.returncode == none.returncode == 0, found.stderr
    commands = sorted(" ".join(entry["argv"]) for entry in json.loads(found.stdout))
    assert commands == ["fake-ai Squash the last commits", "fake-ai squash again"]
    assert b"No entry matches." in none.stdout


def test_status_shows_the_cache_and_node_status_the_node(cli: Cli) -> None:
    # Prepare
    cli.run("run", "--", "fake-ai", "one", FAKE_AI_DELAY="0")
    cli.run("run", "--", "fake-ai", "one", FAKE_AI_DELAY="0")
    # Execute
    cache = cli.run("status", "--json")
    node = cli.run("node", "status")
    # Assert
    assert cache.returncode == node.returncode == 0, cache.stderr + node.stderr
    document = json.loads(cache.stdout)
    assert (document["entries"], document["calls"], document["hits"]) == (1, 2, 1)
    assert document["settings"]["raw-storage"] == "off"
    assert b"Not part of a federation" in node.stdout


def test_models_list_fits_80_columns(cli: Cli, tmp_path: Path) -> None:
    from aicache.registry import ModelRegistry

    # Prepare: two tasks' versions with the widest values the table shows.
    registry = tmp_path / "registry"
    with ModelRegistry(registry) as reg:
        for task in ("next-command", "another-task"):
            run = reg.start_run(task, {"plan": {}, "federation": "test"})
            for round_ in (1, 2):
                reg.register(
                    task,
                    [np.zeros(3)],
                    run_id=run,
                    round=round_,
                    parent=None,
                    strategy="trimmed-mean",
                    strategy_config={},
                    num_clients=1000,
                    metrics={"eval.top1": 0.5},
                    privacy={"dp": "central", "epsilon": 52.579, "delta": 1e-5},
                )
    # Execute
    listed = cli.run("models", "list", "--registry", str(registry), COLUMNS="80")
    # Assert: nothing cut, nothing wrapped, every version on its own line.
    text = listed.stdout.decode()
    assert listed.returncode == 0, listed.stderr
    assert "…" not in text
    assert max(len(line) for line in text.splitlines()) <= 80
    assert len(re.findall(r"trimmed-mean +1000 +0\.500 +52\.6 ", text)) == 4


def test_readme_names_every_command() -> None:
    from aicache.cli.app import app

    lines = [
        line.strip()
        for line in (ROOT / "README.md").read_text().splitlines()
        if line.strip().startswith("aicache ")
    ]
    missing = []
    for path in _command_paths(app):
        # `aicache models list | show [N]` names `models list` and `models show`.
        *group, name = path
        within = rf"{re.escape(' '.join(group))} (?:.*\| )?" if group else ""
        pattern = rf"(?:^aicache |\| ){within}{re.escape(name)}\b"
        if not any(re.search(pattern, line) for line in lines):
            missing.append(" ".join(path))
    assert missing == [], f"commands the README does not name: {missing}"
