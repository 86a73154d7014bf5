"""Numeric flags and training options are checked before anything starts (no Ray, no files)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from aicache.cli.common import checked
from aicache.errors import AicacheError
from tests.conftest import Cli

pytestmark = pytest.mark.e2e


def _text(result: subprocess.CompletedProcess[bytes]) -> str:
    return " ".join((result.stdout + result.stderr).decode().split())


@pytest.mark.parametrize(
    "args",
    [
        ("--max-update-norm", "nan"),
        ("--clip", "nan", "--dp", "central", "--noise-multiplier", "1"),
        ("--noise-multiplier", "nan", "--dp", "central"),
        ("--learning-rate", "nan"),
        ("--mu", "nan", "--strategy", "fedprox"),
        ("--target-epsilon", "inf", "--dp", "central"),
        ("--fraction", "-inf"),
    ],
)
def test_simulate_refuses_a_number_that_is_not_finite(cli: Cli, args: tuple[str, ...]) -> None:
    # Execute
    result = cli.run("simulate", "--clients", "3", "--rounds", "1", *args, timeout=120)
    # Assert: a usage error naming the flag, before any run, registry or report exists.
    assert result.returncode == 2, _text(result)
    assert f"Invalid value for '{args[0]}'" in _text(result)
    assert "is not a finite number" in _text(result)
    assert "Traceback" not in _text(result)
    assert not (cli.home / "registry").exists() and not (cli.cwd / "aicache-report").exists()


def test_server_run_refuses_a_number_that_is_not_finite(cli: Cli) -> None:
    root = cli.cwd / "fed"
    assert cli.run("server", "init", str(root), "--port", "19323").returncode == 0
    result = cli.run("server", "run", str(root), "--clip", "nan")
    assert result.returncode == 2
    assert "Invalid value for '--clip': 'nan' is not a finite number" in _text(result)


def test_a_range_check_refuses_nan() -> None:
    with pytest.raises(AicacheError, match="--rounds nan is not a finite number"):
        checked("--rounds", float("nan"), 1)


@pytest.mark.needs_extra("simulation")
def test_krum_that_cannot_withstand_the_simulated_attackers_is_refused(cli: Cli) -> None:
    result = cli.run(
        "simulate",
        *"--clients 5 --rounds 1 --strategy krum --adversarial 2 --attack scale".split(),
        timeout=120,
    )
    assert result.returncode == 2, _text(result)
    assert (
        "--expected-attackers 2: Krum withstands 2 attacker(s) only with more than 6 clients "
        "a round; this run asks 5"
    ) in _text(result)
    assert not (cli.home / "registry").exists()


@pytest.mark.needs_extra("simulation")
def test_expected_attackers_on_a_rule_without_them_is_refused(cli: Cli) -> None:
    result = cli.run(
        "simulate", "--clients", "4", "--rounds", "1", "--expected-attackers", "1", timeout=120
    )
    assert result.returncode == 2
    assert "fedavg has no setting for expected attackers" in _text(result)


@pytest.mark.needs_extra("simulation")
def test_a_data_folder_of_garbage_is_named_before_the_simulation_starts(
    cli: Cli, tmp_path: Path
) -> None:
    # Prepare: one real trace among files that are not traces.
    data = tmp_path / "data"
    data.mkdir()
    (data / "alice").write_text("S 1\nC ls\nD /\nA NIL\nH NIL\nX NIL\n\nE 1\n")
    (data / "binary").write_bytes(bytes(range(256)) * 8)
    (data / "notes").write_text("hello\nworld\n")
    # Execute
    simulated = cli.run("simulate", "--rounds", "1", "--data", str(data), timeout=120)
    # Assert: the first bad file is named, and nothing started.
    assert simulated.returncode == 2, _text(simulated)
    assert f"--data {data}: binary cannot be used: no command records" in _text(simulated)
    assert "Traceback" not in _text(simulated) and "Greenberg UNIX traces in" not in _text(
        simulated
    )
    assert not (cli.home / "registry").exists()


@pytest.mark.needs_extra("simulation")
def test_a_data_folder_with_one_user_is_not_a_federation(cli: Cli, tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "alice").write_text("S 1\nC ls\nD /\nA NIL\nH NIL\nX NIL\n\nE 1\n")
    result = cli.run("simulate", "--rounds", "1", "--data", str(data), timeout=120)
    assert result.returncode == 2
    assert "it holds 1 user's trace; a federation needs at least 2" in _text(result)


@pytest.mark.parametrize(
    "command",
    [pytest.param("simulate", marks=pytest.mark.needs_extra("simulation")), "evaluate"],
)
def test_a_format_the_task_does_not_read_is_refused_by_the_tasks_spec(
    cli: Cli, command: str
) -> None:
    # Execute: no --data, so nothing but the spec's own check can refuse the format.
    result = cli.run(command, "--clients", "2", "--format", "csv", timeout=120)
    # Assert: one line naming the option, the task and the formats it reads.
    assert result.returncode == 2, _text(result)
    assert result.stderr.decode().strip() == (
        "error: --format: task next-command reads no format 'csv' (it reads: greenberg)"
    )
