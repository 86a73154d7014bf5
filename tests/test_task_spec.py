"""The spec registry: registration, lookup, discovery of task modules in other processes."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import replace
from importlib.metadata import entry_points
from pathlib import Path

import pytest

from aicache.errors import AicacheError
from aicache.tasks.base import get_task, task_names
from aicache.tasks.next_command import SPEC as NEXT_COMMAND
from aicache.tasks.next_command import NextCommandTask
from aicache.tasks.next_command.sources import GreenbergSource, SyntheticSource
from aicache.tasks.spec import (
    MODULES_VARIABLE,
    get_spec,
    load_task_modules,
    register_spec,
    spec_names,
    task_modules,
)
from tests.conftest import SHARED_DATA

ROOT = Path(__file__).resolve().parents[1]


def test_next_command_is_registered_once_as_task_and_spec() -> None:
    # Prepare / Execute
    spec = get_spec("next-command")
    # Assert
    assert spec is NEXT_COMMAND and "next-command" in spec_names()
    assert "next-command" in task_names()
    assert isinstance(get_task("next-command"), NextCommandTask)
    assert [m.name for m in spec.headline] == ["top1", "top3"]
    assert register_spec(NEXT_COMMAND) is NEXT_COMMAND  # registering it again changes nothing


def test_tasks_are_registered_through_their_spec_only() -> None:
    # A second registry let a task be known to the option checks and unknown to the
    # spec lookups behind them (a KeyError traceback): there is one, the specs'.
    import aicache.tasks.base as base

    # Prepare / Execute / Assert
    assert not hasattr(base, "register_task") and not hasattr(base, "_REGISTRY")
    assert task_names() == spec_names()


def test_another_spec_under_a_taken_name_is_refused() -> None:
    # Prepare
    other = replace(NEXT_COMMAND, record_label="lines")
    # Execute / Assert
    with pytest.raises(ValueError, match="already registered"):
        register_spec(other)


def test_unknown_spec_is_a_key_error_naming_the_known_ones() -> None:
    # Prepare / Execute / Assert
    with pytest.raises(KeyError, match=r"unknown task 'nope' .*next-command"):
        get_spec("nope")


def test_a_spec_without_metrics_or_with_half_a_store_reader_is_refused() -> None:
    # Prepare / Execute / Assert
    with pytest.raises(ValueError, match="declares no metric"):
        replace(NEXT_COMMAND, metrics=())
    with pytest.raises(ValueError, match="go together"):
        replace(NEXT_COMMAND, store_version=None)


def test_sources_come_from_the_spec() -> None:
    # Prepare / Execute
    synthetic = NEXT_COMMAND.source(data=None, data_format="greenberg", seed=4, clients=3)
    real = NEXT_COMMAND.source(
        data=str(SHARED_DATA / "greenberg"), data_format="greenberg", seed=0, clients=0
    )
    # Assert
    assert synthetic == SyntheticSource(4, 3)
    assert real == GreenbergSource(str(SHARED_DATA / "greenberg"))
    with pytest.raises(ValueError, match=r"reads no format 'csv' .*greenberg"):
        NEXT_COMMAND.source(data="x", data_format="csv", seed=0, clients=1)


def test_data_without_a_format_is_read_in_the_tasks_own_first_format(tmp_path: Path) -> None:
    # Prepare: a task that reads another format than next-command's, and one that reads none.
    lines = replace(
        NEXT_COMMAND, name="lines", formats={"lines": GreenbergSource, "greenberg": GreenbergSource}
    )
    synthetic_only = replace(NEXT_COMMAND, name="synthetic-only", formats={})
    # Execute
    read = lines.source(data=str(tmp_path), data_format=None, seed=0, clients=1)
    default = NEXT_COMMAND.source(data=str(tmp_path), data_format=None, seed=0, clients=1)
    # Assert
    assert (lines.default_format, synthetic_only.default_format) == ("lines", None)
    assert read == default == GreenbergSource(str(tmp_path))
    assert synthetic_only.source(data=None, data_format=None, seed=4, clients=3) == (
        SyntheticSource(4, 3)
    )
    with pytest.raises(ValueError, match=r"--data: task synthetic-only reads no data format"):
        synthetic_only.source(data=str(tmp_path), data_format=None, seed=0, clients=1)
    # A named format is checked even without data: a typo is not silently ignored.
    with pytest.raises(ValueError, match=r"--format: task lines reads no format 'csv'"):
        lines.source(data=None, data_format="csv", seed=0, clients=1)


def test_an_unimportable_task_module_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    # Prepare: the variable is read once per process; forget that reading around the test.
    monkeypatch.setenv(MODULES_VARIABLE, "no_such_module_for_aicache")
    task_modules.cache_clear()
    try:
        # Execute / Assert
        with pytest.raises(AicacheError, match=r"no_such_module_for_aicache.*cannot be imported"):
            load_task_modules()
    finally:
        monkeypatch.undo()
        task_modules.cache_clear()


def test_task_modules_are_found_once_per_process(monkeypatch: pytest.MonkeyPatch) -> None:
    # Prepare: count the scans of the installed entry points (the real scan still runs).
    import aicache.tasks.spec as spec_module

    scans: list[str] = []

    def counted(*, group: str) -> object:
        scans.append(group)
        return entry_points(group=group)

    monkeypatch.setattr(spec_module, "entry_points", counted)
    task_modules.cache_clear()
    try:
        # Execute: lookups as a run makes them, for every message and round.
        for _ in range(5):
            get_spec("next-command")
            get_task("next-command")
            task_names()
    finally:
        monkeypatch.undo()
        task_modules.cache_clear()
    # Assert
    assert scans == ["aicache.tasks"]


def test_a_task_module_named_in_the_environment_is_found_by_a_new_process() -> None:
    # Prepare: a fresh interpreter, as a Ray worker or a SuperNode's app process is
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    env = {**os.environ, MODULES_VARIABLE: "tests.test_task_seam_proof", "PYTHONPATH": path}
    code = "from aicache.tasks.spec import spec_names; print(','.join(spec_names()))"
    # Execute
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=False
    )
    # Assert
    assert done.returncode == 0, done.stderr
    # Every built-in task, and the one the environment names.
    assert done.stdout.strip() == ",".join(sorted({*spec_names(), "first-word"}))
