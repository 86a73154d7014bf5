"""End-to-end federations: the real ServerApp and ClientApp under Flower's Simulation
Engine (Ray), driven through the ``aicache simulate`` command."""

from __future__ import annotations

import json
import os
import shutil
import signal
import stat
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from tests.conftest import FAKE_AI, Cli

pytestmark = pytest.mark.e2e


def _ray_processes(base: Path) -> set[int]:
    """Live Ray processes (raylet, GCS, workers) of the commands run under ``base``.

    Ray's processes inherit the command's environment, so its AICACHE_HOME tells
    them apart from other simulations running on the same machine.
    """
    found = subprocess.run(
        ["pgrep", "-f", "raylet|gcs_server|ray::"], capture_output=True, text=True
    )
    ours = set()
    for pid in found.stdout.split():
        try:
            process = psutil.Process(int(pid))
            home = process.environ().get("AICACHE_HOME", "")
            if home.startswith(str(base)) and process.status() != psutil.STATUS_ZOMBIE:
                ours.add(process.pid)
        except psutil.Error:
            continue
    return ours


def _session_members(session: int) -> list[str]:
    """The live processes of a session (what a terminal's Ctrl-C reaches)."""
    members = []
    for process in psutil.process_iter(["pid", "name", "status"]):
        try:
            if os.getsid(process.pid) == session and process.status() != psutil.STATUS_ZOMBIE:
                members.append(f"{process.pid} {process.name()}")
        except (psutil.Error, ProcessLookupError, PermissionError):
            continue
    return members


@pytest.fixture(autouse=True)
def no_leftover_processes(tmp_path: Path) -> Iterator[None]:
    yield
    deadline = time.monotonic() + 15
    while _ray_processes(tmp_path) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert _ray_processes(tmp_path) == set(), "Ray processes outlived the command"


def test_a_simulation_learns_and_registers_every_round(cli: Cli, tmp_path: Path) -> None:
    # Execute
    metrics, _ = cli.simulate("--clients 4 --rounds 2", out=tmp_path / "report")
    # Assert
    assert (metrics["task"], metrics["clients"], metrics["rounds"]) == ("next-command", 4, 2)
    for arm in ("federated", "local_only", "centralized", "personalized"):
        assert len(metrics[arm]["per_client"]) == 4
        assert 0.0 <= metrics[arm]["top1"] <= metrics[arm]["top3"] <= 1.0
    assert metrics["federated"]["top1"] > metrics["untrained"]["top1"] + 0.1
    assert [r["round"] for r in metrics["per_round"]] == [1, 2]
    assert all(r["accepted_updates"] == 4 for r in metrics["per_round"])
    for name in ("index.html", "learning_curve.png", "clients.png"):
        assert (tmp_path / "report" / name).stat().st_size > 0
    versions = cli.versions()
    assert [(v["version"], v["round"], v["parent"]) for v in versions] == [(1, 1, None), (2, 2, 1)]
    assert stat.S_IMODE(cli.home.stat().st_mode) == 0o700  # the registry made the home private
    assert versions[-1]["privacy"] == {"dp": "off"}

    exported = cli.run("models", "export", str(tmp_path))
    assert exported.returncode == 0, exported.stderr
    artifact = tmp_path / "next-command-v2.npz"
    assert artifact.stat().st_size > 0
    assert json.loads(artifact.with_suffix(".json").read_text())["version"] == 2

    # Execute / Assert: the registered model serves users it never saw ...
    evaluated = cli.run("evaluate", "--clients", "3", "--seed", "99", "--json", timeout=120)
    assert evaluated.returncode == 0, evaluated.stderr
    report = json.loads(evaluated.stdout)
    assert (report["version"], report["users"], len(report["per_user"])) == (2, 3, 3)
    assert report["top1"] > metrics["untrained"]["top1"] + 0.1
    assert 0.0 <= report["cold_own_top1"] <= 1.0

    # ... and suggests from the user's own history.
    history = tmp_path / "history"
    history.write_text("git pull\nmake test\ngit status\nmake test\ngit status\nmake test\n" * 5)
    cli.run("import", "history", "--shell", "bash", str(history))
    suggested = cli.run("suggest", "--json", timeout=120)
    assert suggested.returncode == 0, suggested.stderr
    suggestions = json.loads(suggested.stdout)["suggestions"]
    assert len(suggestions) == 3
    assert {"make test", "git status"} <= set(suggestions)

    # ... and keeps and refreshes the cached answers of the commands it predicts.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    shutil.copy(FAKE_AI, bin_dir / "make")
    path = os.pathsep.join([str(bin_dir), cli.env["PATH"]])
    cli.run("run", "--ttl", "1s", "--", "make", "release notes", PATH=path)
    cli.run("run", "--ttl", "1s", "--", "fake-ai", "unpredicted", PATH=path)
    time.sleep(1.2)
    assert cli.run("prune").returncode == 0
    assert [e["tool"] for e in json.loads(cli.run("list", "--json").stdout)] == ["make"]
    calls = cli.invocations()
    prefetched = cli.run("prefetch", PATH=path, timeout=120)
    assert prefetched.returncode == 0, prefetched.stderr
    assert b"refreshed: make release notes" in prefetched.stdout
    assert cli.invocations() == calls + 1
    (entry,) = json.loads(cli.run("list", "--json").stdout)
    assert entry["expires_at"] > time.time()


def test_an_invalid_update_is_rejected_and_the_round_completes(cli: Cli) -> None:
    metrics, _ = cli.simulate("--clients 4 --rounds 1 --adversarial 1 --attack nan")
    per_round = metrics["per_round"]
    assert (per_round[0]["accepted_updates"], per_round[0]["rejected_updates"]) == (3, 1)
    assert [v["num_clients"] for v in cli.versions()] == [3]


def test_a_round_with_no_valid_update_fails_loudly_and_registers_nothing(cli: Cli) -> None:
    result = cli.run(
        "simulate", *"--clients 3 --rounds 2 --adversarial 3 --attack scale".split(), timeout=300
    )
    assert result.returncode == 1
    message = result.stderr.decode()
    assert "none of 3 replies could be aggregated" in message
    assert "exceeds the bound" in message
    assert "Traceback" not in message
    assert cli.versions() == []


def test_a_killed_run_resumes_from_the_newest_version(cli: Cli, tmp_path: Path) -> None:
    # Prepare: a long run, killed (with its Ray processes) once two rounds are registered.
    process = cli.popen(
        "simulate", "--clients", "3", "--rounds", "25", "--out", str(tmp_path / "r")
    )
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and process.poll() is None:
        if len(cli.versions()) >= 2:
            break
        time.sleep(0.5)
    os.killpg(process.pid, signal.SIGKILL)
    process.communicate(timeout=30)
    before = cli.versions()
    assert 2 <= len(before) < 25, "the run must be killed mid-way"
    # Execute
    other_data = cli.run("simulate", "--resume", "--clients", "4", "--out", str(tmp_path / "r"))
    metrics, _ = cli.simulate("--resume --clients 3", out=tmp_path / "r", timeout=400)
    # Assert
    assert other_data.returncode == 2
    assert b"Resume with the same --data, --clients and --seed" in other_data.stderr
    after = cli.versions()
    assert [v["round"] for v in after] == list(range(1, 26))
    assert len({v["run_id"] for v in after}) == 1
    assert after[len(before)]["parent"] == before[-1]["version"]
    # The report covers the whole run: the rounds before the kill come from the registry.
    assert [r["round"] for r in metrics["per_round"]] == list(range(1, 26))
    assert [r["version"] for r in metrics["per_round"]] == [v["version"] for v in after]


def test_ctrl_c_stops_promptly_and_the_resumed_report_covers_every_round(
    cli: Cli, tmp_path: Path
) -> None:
    # Prepare: a long run, interrupted as a terminal's Ctrl-C does (SIGINT to the
    # whole process group) once its first round is registered.
    report = tmp_path / "r"
    # (enough rounds that the first few are over long before the last)
    process = cli.popen("simulate", "--clients", "3", "--rounds", "40", "--out", str(report))
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and process.poll() is None and not cli.versions():
        time.sleep(0.5)
    assert process.poll() is None, "the run must still be going"
    # Execute
    os.killpg(process.pid, signal.SIGINT)
    try:  # a bound so that a hang fails the test instead of blocking it
        _, stderr = process.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        pytest.fail("the simulation did not stop after Ctrl-C")
    ray_left = _ray_processes(tmp_path)
    session_left = _session_members(process.pid)
    before = cli.versions()
    # Assert: exit 130, one line that says how to continue, nothing of Flower's or Python's.
    message = stderr.decode()
    assert process.returncode == 130, message[-3000:]
    lines = [line for line in message.splitlines() if line.strip()]
    assert len(lines) == 1, message[-3000:]
    assert "aicache simulate --resume" in lines[0]
    assert 1 <= len(before) < 40, "the run must be interrupted mid-way"
    assert not [p for p in ray_left if psutil.pid_exists(p)], "Ray outlived Ctrl-C"
    assert session_left == [], "processes of the command outlived Ctrl-C"
    # Execute: the hint's own command line continues the run.
    again = lines[0].split("to continue it: ", 1)[1].split()
    assert again[:3] == ["aicache", "simulate", "--resume"]
    resumed = cli.run(*again[1:], timeout=400)
    assert resumed.returncode == 0, resumed.stderr.decode()[-3000:]
    metrics = json.loads((report / "metrics.json").read_text())
    # Assert: every round is in the report, and the summary says so.
    after = cli.versions()
    assert [v["round"] for v in after] == list(range(1, 41))
    assert [r["round"] for r in metrics["per_round"]] == list(range(1, 41))
    assert metrics["rounds"] == 40
    assert b"40 rounds in" in resumed.stdout.replace(b"\n", b" ")


def test_resume_without_an_interrupted_run_is_a_clear_error(cli: Cli, tmp_path: Path) -> None:
    result = cli.run("simulate", "--resume", "--out", str(tmp_path / "r"), timeout=120)
    assert result.returncode == 2
    assert b"no interrupted run of next-command to resume" in result.stderr


def test_bad_simulation_flags_are_named(cli: Cli) -> None:
    for args, expected in (
        (("--strategy", "best"), b"unknown strategy 'best'"),
        (("--rounds", "0"), b"--rounds 0 is out of range"),
        (("--fraction", "1.5"), b"invalid fraction 1.5"),
        (("--task", "mind-reading"), b"unknown task 'mind-reading'"),
        (("--data", "/nonexistent"), b"--data /nonexistent: does not exist"),
        (("--data", str(FAKE_AI)), b"not a folder of Greenberg traces"),
    ):
        result = cli.run("simulate", *args, timeout=120)
        assert result.returncode == 2, args
        assert expected in result.stderr, (args, result.stderr)
        assert b"Traceback" not in result.stderr
