"""``aicache errors`` end to end: real failing commands through ``aicache run``, a real registry."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from aicache.features.error_events import ErrorOccurrence, error_key
from aicache.registry import ModelRegistry
from aicache.tasks.error_patterns import CONTRIBUTION_NORM, ErrorPatternsTask
from aicache.tasks.error_patterns.release import threshold
from aicache.tasks.error_patterns.task import histogram
from tests.conftest import Cli

pytestmark = pytest.mark.e2e

BIN = Path(sys.executable).parent
USER_CODE = {
    "main.py": "from billing.errors import InvoiceMismatchError\n\n"
    "raise InvoiceMismatchError('invoice 4411 does not match order 9120')\n",
    "billing/__init__.py": "",
    "billing/errors.py": "class InvoiceMismatchError(Exception):\n    pass\n",
}


def _register(home: Path, keys_by_developer: list[list[str]], privacy: dict[str, object]) -> None:
    """A released version of error-patterns in the node's registry: the developers' sum."""
    task = ErrorPatternsTask()
    params = task.init_params(0)
    for number, keys in enumerate(keys_by_developer):
        errors = [ErrorOccurrence(float(i), k) for i, k in enumerate(keys)]
        added = histogram(task.load_local(errors))
        params = [p + a for p, a in zip(params, added, strict=True)]
        del number
    with ModelRegistry(home / "registry") as registry:
        run = registry.start_run(task.name, {"test": True})
        registry.register(
            task.name,
            params,
            run_id=run,
            round=1,
            parent=None,
            strategy="fedavg",
            strategy_config={},
            num_clients=len(keys_by_developer),
            metrics={},
            privacy=privacy,
        )
        registry.finish_run(run, "finished")


def test_errors_lists_real_failures_marks_the_common_one_and_points_to_the_answer(
    cli: Cli, tmp_path: Path
) -> None:
    # Prepare: llm with its offline model, and a project whose own code raises its own error
    cli.env.update(
        LLM_USER_PATH=str(tmp_path / "llm-user"),
        PATH=os.pathsep.join([str(BIN), cli.env["PATH"]]),
    )
    for relative, text in USER_CODE.items():
        (cli.cwd / relative).parent.mkdir(parents=True, exist_ok=True)
        (cli.cwd / relative).write_text(text)
    # Execute: two real failures through the cache, then an answer asked right after one
    mine = cli.run("run", "--", sys.executable, "main.py")
    unknown_model = cli.run("run", "--", "llm", "-m", "gpt-9-turbo", "say hi")
    answer = cli.run("run", "--", "llm", "-m", "markov", "how do I fix an unknown model")
    assert mine.returncode == 1 and b"InvoiceMismatchError" in mine.stderr
    assert unknown_model.returncode != 0 and b"Unknown model" in unknown_model.stderr
    assert answer.returncode == 0, answer.stderr
    llm_key = error_key("llm", unknown_model.stderr.decode())
    assert llm_key is not None
    # ... and a federation that counted the llm error among 12 developers, at ε = 4
    _register(
        cli.home,
        [[llm_key, "git: fatal: not a <w>"]] * 12 + [["make: error: <w>"]] * 2,
        {
            "dp": "central",
            "noise_multiplier": 0.5,
            "clip": 1.0,
            "rounds": 1,
            "epsilon": 4.0,
            "delta": 1e-5,
        },
    )
    listed = cli.run("errors", "--json")
    shown = cli.run("errors")
    # Assert: both signatures are listed, newest first, and nothing of the user's code is
    assert listed.returncode == 0, listed.stderr
    report = json.loads(listed.stdout)
    keys = [e["key"] for e in report["errors"]]
    assert keys[0] == llm_key
    assert keys[1].startswith("python: <exc>: ")
    for private in (b"InvoiceMismatchError", b"billing", b"4411", b"9120", b"invoice"):
        assert private not in listed.stdout and private not in shown.stdout
    llm_row, own_row = report["errors"]
    # the llm error is common (12 developers above the threshold), its own error is not
    assert llm_row["common"] is True and llm_row["developers_band"] == "10-20"
    assert own_row["common"] is False
    assert report["release"]["epsilon"] == 4.0
    assert report["release"]["threshold"] == pytest.approx(threshold(0.5 * CONTRIBUTION_NORM, 1))
    # the cached llm answer that followed the failure is pointed to, and inspect opens it
    assert llm_row["answer"] is not None
    assert f"aicache inspect {llm_row['answer'][:12]}".encode() in shown.stdout
    opened = cli.run("inspect", llm_row["answer"][:12])
    assert opened.returncode == 0 and b"markov" in opened.stdout
    assert b"common: 10-20 developers" in shown.stdout
    assert b"not common" in shown.stdout


def test_errors_refuses_a_bad_count_in_one_line(cli: Cli) -> None:
    # Execute
    result = cli.run("errors", "-n", "0")
    # Assert
    assert result.returncode == 2
    assert b"Traceback" not in result.stderr
    assert len(result.stderr.decode().strip().splitlines()) == 1
    assert b"-n" in result.stderr


def test_errors_without_a_model_says_so(cli: Cli) -> None:
    # Prepare: one real failure, no model in the node's registry
    failed = subprocess.run(
        [sys.executable, "-m", "aicache", "run", "--", "git", "status"],
        env=cli.env,
        cwd=cli.cwd,
        capture_output=True,
        timeout=60,
    )
    assert failed.returncode != 0
    # Execute
    result = cli.run("errors", "--json")
    # Assert
    report = json.loads(result.stdout)
    assert report["errors"][0]["key"].startswith("git: fatal: not a")
    assert report["release"] is None and "no error-patterns model" in report["missing"]
    assert "aicache join" in report["missing"]
    assert np.isfinite(report["errors"][0]["last"])
