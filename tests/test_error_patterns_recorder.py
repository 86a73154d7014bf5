"""The recorder really runs the tools: run again here, its scenarios leave the recorded keys."""

from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path
from types import ModuleType

import pytest

from aicache.features.error_events import error_key
from aicache.tasks.error_patterns import recorded_errors

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "record_error_outputs.py"
# One scenario per tool, the cheap ones (pip, npm and the JVM take seconds each).
CHECKED = (
    "user-exception",
    "not-a-repo",
    "make-no-rule",
    "gcc-undeclared",
    "node-reference-error",
    "llm-unknown-model",
    "command-not-found",
)


def _recorder() -> ModuleType:
    spec = importlib.util.spec_from_file_location("record_error_outputs", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", CHECKED)
def test_a_scenario_run_again_leaves_the_recorded_key(name: str) -> None:
    # Prepare
    recorder = _recorder()
    scenario = next(s for s in recorder.SCENARIOS if s.name == name)
    recorded = next(r for r in recorded_errors() if r.name == name)
    if recorder._program(scenario) is None or shutil.which("bash") is None:
        pytest.skip(f"{scenario.argv[0]} is not installed here: the recorded output stands")
    # Execute
    result = recorder.record(scenario)
    # Assert: a real failure, reduced to the key the population samples
    assert result is not None and result["exit_code"] != 0
    assert error_key(scenario.tool, str(result["stderr"])) == recorded.key
