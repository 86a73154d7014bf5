"""Suggestions that help from day one: the shipped model, the user's own habits,
commands as typed, and a served model that only the user changes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from aicache.features.history_items import HistoryItem
from aicache.registry import ModelRegistry
from aicache.registry.artifacts import ArtifactError
from aicache.registry.shipped import shipped_model
from aicache.tasks.next_command import NextCommandContext, NextCommandTask
from tests.conftest import Cli

pytestmark = pytest.mark.e2e


def _habit_history(pairs: int = 22) -> list[str]:
    """Lots of git, with ``git add`` always followed by ``git commit`` (22 times of 22).

    The history ends with ``git add -A``: the next command is plainly ``git
    commit``, while a model that only knows "git comes next" and picks the
    user's usual git subcommand says ``git add`` or ``git status``.
    """
    lines: list[str] = []
    for n in range(pairs):
        lines += [
            "git status",
            "git add -A",
            f"git commit -m 'step {n}'",
            "make test",
            "git status --short",
        ]
    return [*lines, "git status", "git add -A"]


def _register(root: Path, arrays: list[np.ndarray], note: str) -> int:
    with ModelRegistry(root) as registry:
        return registry.register(
            "next-command",
            arrays,
            run_id=note,
            round=1,
            parent=None,
            strategy="fedavg",
            strategy_config={},
            num_clients=1,
            metrics={},
            privacy={"dp": "off"},
            note=note,
        ).version


def test_the_shipped_model_is_checked_and_carries_its_privacy_record() -> None:
    # Execute
    shipped = shipped_model("next-command")
    # Assert
    assert shipped is not None
    task = NextCommandTask()
    assert [a.shape for a in shipped.arrays] == [a.shape for a in task.init_params(0)]
    assert shipped.privacy["dp"] == "central"
    assert 0 < shipped.privacy["epsilon"] <= 10 and 0 < shipped.privacy["delta"] < 1e-3
    assert "scripts/train_shipped_model.py" in shipped.record["rebuild"]
    assert shipped_model("no-such-task") is None


def test_a_damaged_shipped_model_is_refused(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Prepare: a copy of the package data with one byte changed
    from importlib import resources

    source = resources.files("aicache.registry.shipped_models")
    data = bytearray((source / "next-command.npz").read_bytes())
    data[-10] ^= 0xFF
    (tmp_path / "next-command.npz").write_bytes(bytes(data))
    (tmp_path / "next-command.json").write_text((source / "next-command.json").read_text())
    monkeypatch.setattr(resources, "files", lambda _package: tmp_path)
    # Execute / Assert
    with pytest.raises(ArtifactError, match="was altered"):
        shipped_model("next-command")


def test_a_strong_personal_habit_wins_over_the_shared_model() -> None:
    # Prepare
    shipped = shipped_model("next-command")
    assert shipped is not None
    history = [HistoryItem(" ".join(line.split()[:2])) for line in _habit_history()]
    # Execute
    suggestions = NextCommandTask().predict(
        shipped.arrays, NextCommandContext(history=history, k=3)
    )
    # Assert
    assert suggestions[0] == "git commit"
    assert len(set(suggestions)) == 3


def test_a_fresh_install_suggests_commands_as_the_user_typed_them(cli: Cli) -> None:
    # Prepare: nothing registered; command lines kept
    empty = cli.run("suggest")
    listed = cli.run("models", "list", COLUMNS="200")
    assert cli.run("config", "set", "raw-storage", "on").returncode == 0
    history = cli.cwd / "history"
    history.write_text("\n".join(_habit_history()) + "\n")
    assert cli.run("import", "history", "--shell", "bash", str(history)).returncode == 0
    # Execute
    suggested = cli.run("suggest", "--json")
    shown = cli.run("suggest")
    # Assert
    assert empty.returncode == 0, empty.stderr
    assert len(empty.stdout.decode().splitlines()) >= 3
    assert suggested.returncode == 0, suggested.stderr
    answer = json.loads(suggested.stdout)
    assert answer["model"] == "shipped" and answer["model_version"] is None
    assert answer["privacy"]["dp"] == "central" and answer["privacy"]["epsilon"] > 0
    # Every shipped model is named with what it serves and its ε.
    listing = " ".join(listed.stdout.decode().split())
    for serves in ("suggest", "semantic-hit", "cache-keep"):
        assert f"{serves} serves the model shipped with aicache (ε=" in listing
    assert answer["suggestions"][0] == "git commit -m 'step 21'"
    typed = history.read_text().splitlines()
    typed_tokens = {" ".join(line.split()[:2]) for line in typed}
    for tokens, suggestion in zip(answer["tokens"], answer["suggestions"], strict=True):
        # what the user typed comes back as typed; a command they never typed is its name
        assert suggestion in typed if tokens in typed_tokens else suggestion == tokens
    assert shown.stdout.decode().splitlines()[0] == "1. git commit -m 'step 21'"
    assert "raw-storage" not in shown.stdout.decode()


def test_without_command_lines_suggest_says_it_shows_tokens(cli: Cli) -> None:
    # Prepare: raw storage off (the default)
    history = cli.cwd / "history"
    history.write_text("\n".join(_habit_history()) + "\n")
    cli.run("import", "history", "--shell", "bash", str(history))
    # Execute
    shown = cli.run("suggest")
    # Assert
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.decode().splitlines()
    assert lines[0] == "1. git commit"
    assert "raw-storage on" in shown.stdout.decode().replace("\n", " ")


def test_models_use_pins_what_suggest_serves(cli: Cli) -> None:
    # Prepare: two versions in the serving registry
    shipped = shipped_model("next-command")
    assert shipped is not None
    root = cli.home / "registry"
    _register(root, shipped.arrays, "first")
    _register(root, [a * 0.5 for a in shipped.arrays], "second")
    newest = json.loads(cli.run("suggest", "--json").stdout)
    # Execute
    pinned = cli.run("models", "use", "1")
    _register(root, [a * 0.25 for a in shipped.arrays], "third")
    after_new_version = json.loads(cli.run("suggest", "--json").stdout)
    listed = cli.versions(root)
    table = cli.run("models", "list", COLUMNS="200").stdout.decode()
    unpinned = cli.run("models", "use", "latest")
    following = json.loads(cli.run("suggest", "--json").stdout)
    missing = cli.run("models", "use", "9")
    malformed = cli.run("models", "use", "two")
    # Assert
    assert (newest["model_version"], newest["model"]) == (2, "newest")
    assert pinned.returncode == 0, pinned.stderr
    assert (after_new_version["model_version"], after_new_version["model"]) == (1, "pinned")
    assert [v["serving"] for v in listed] == [True, False, False]
    assert "pinned" in table
    assert unpinned.returncode == 0
    assert (following["model_version"], following["model"]) == (3, "newest")
    assert missing.returncode == malformed.returncode == 2
    assert b"no version 9" in missing.stderr and b"Traceback" not in missing.stderr
    assert b"invalid model version 'two'" in malformed.stderr


def test_a_rollback_moves_the_pin_to_the_restored_model(tmp_path: Path) -> None:
    # Prepare
    shipped = shipped_model("next-command")
    assert shipped is not None
    _register(tmp_path, shipped.arrays, "first")
    _register(tmp_path, [a * 0.5 for a in shipped.arrays], "second")
    with ModelRegistry(tmp_path) as registry:
        registry.pin("next-command", registry.resolve("next-command", "2"))
        # Execute
        restored = registry.rollback("next-command", registry.resolve("next-command", "1"))
        pinned = registry.pinned("next-command")
        registry.pin("next-command", None)
        unpinned = registry.pinned("next-command")
    # Assert
    assert pinned is not None and pinned.version == restored.version == 3
    assert unpinned is None
