"""Fixtures shared by the tests: an isolated aicache home and the real CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from aicache.extras import missing

ROOT = Path(__file__).resolve().parents[1]
FAKE_AI = ROOT / "examples" / "fake-ai"
SHARED_DATA = ROOT.parent / "shared" / "data"


def shared_data(name: str) -> Path:
    """The path of a shared data set, skipping the test when it is absent."""
    path = SHARED_DATA / name
    if not path.is_dir():
        pytest.skip(f"shared data set {name!r} not found at {path} (only on project machines)")
    return path


# Test modules that need an optional extra of aicache. Where the extra is not
# installed (`make core-test`), the whole module is skipped with the extra named;
# a test module missing from this table that imports an extra fails, as it should.
# A single test in a core module says so with @pytest.mark.needs_extra("NAME").
NEEDS_EXTRA: dict[str, tuple[str, ...]] = {
    "test_accounting.py": ("server",),
    "test_adaptive_clipping.py": ("simulation",),
    "test_aggregation.py": ("server",),
    "test_central_dp.py": ("simulation",),
    "test_ckks.py": ("he",),
    "test_deploy_e2e.py": ("server",),
    "test_deploy_guard_e2e.py": ("server",),
    "test_deploy_secure.py": ("server", "he"),
    "test_deploy_secure_e2e.py": ("server", "he"),
    "test_dp_e2e.py": ("simulation",),
    "test_embedding.py": ("semantic",),
    "test_faults_dropout.py": ("simulation",),
    "test_faults_resume.py": ("server",),
    "test_local_dp.py": ("simulation",),
    "test_poisson_sampling.py": ("simulation",),
    "test_privacy_modes.py": ("server",),
    "test_secagg_e2e.py": ("simulation", "he"),
    "test_secure_dp.py": ("server", "he"),
    "test_secure_dp_e2e.py": ("simulation", "he"),
    "test_simulation_advice.py": ("simulation",),
    "test_simulation_e2e.py": ("simulation",),
    "test_task_seam_proof.py": ("simulation", "server"),
}


def _extra_absent(*extras: str) -> str | None:
    """Why a test of ``extras`` cannot run here, or None when they are installed."""
    for extra in extras:
        absent = missing(extra)
        if absent:
            return f"needs aicache[{extra}] ({', '.join(absent)} not installed)"
    return None


class _ExtraModule(pytest.Module):
    """A test module of an extra: skipped, before it is imported, where the extra is absent."""

    extras: tuple[str, ...] = ()

    def collect(self) -> Any:
        reason = _extra_absent(*self.extras)
        if reason:
            raise pytest.skip.Exception(reason, allow_module_level=True)
        return super().collect()


def pytest_pycollect_makemodule(module_path: Path, parent: pytest.Collector) -> Any:
    extras = NEEDS_EXTRA.get(module_path.name)
    if extras is None:
        return None
    module = _ExtraModule.from_parent(parent, path=module_path)
    module.extras = extras
    return module


def pytest_runtest_setup(item: pytest.Item) -> None:
    for marker in item.iter_markers("needs_extra"):
        reason = _extra_absent(*marker.args)
        if reason:
            pytest.skip(reason)


@dataclass
class Cli:
    """Runs the installed ``aicache`` command as a real process in an isolated home."""

    home: Path
    env: dict[str, str]
    counter: Path
    cwd: Path

    def run(
        self, *args: str, input: bytes | None = None, timeout: float = 60, **env: str
    ) -> subprocess.CompletedProcess[bytes]:
        # No input is /dev/null, as from cron or `< /dev/null`: an empty pipe is
        # piped input, which a tool outside the adapter table runs uncached with.
        return subprocess.run(
            [sys.executable, "-m", "aicache", *args],
            input=input,
            stdin=subprocess.DEVNULL if input is None else None,
            capture_output=True,
            env={**self.env, **env},
            cwd=self.cwd,
            timeout=timeout,
            check=False,
        )

    def popen(self, *args: str, **env: str) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [sys.executable, "-m", "aicache", *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env={**self.env, **env},
            cwd=self.cwd,
            start_new_session=True,
        )

    def simulate(
        self, flags: str, *, out: Path | None = None, timeout: float = 300
    ) -> tuple[dict[str, Any], bytes]:
        """Run ``aicache simulate FLAGS``, require success; its metrics.json and its output."""
        report = out or self.cwd / "report"
        result = self.run("simulate", *flags.split(), "--out", str(report), timeout=timeout)
        assert result.returncode == 0, result.stderr.decode()[-3000:]
        metrics = json.loads((report / "metrics.json").read_text())
        return metrics, (result.stdout + result.stderr).replace(b"\n", b" ")

    def versions(self, registry: Path | None = None) -> list[dict[str, Any]]:
        """The versions in a registry (default: the simulations' one), ``models list --json``."""
        where = registry or self.home / "simulations"
        listed = self.run("models", "list", "--json", "--registry", str(where))
        assert listed.returncode == 0, listed.stderr
        return list(json.loads(listed.stdout))

    def invocations(self) -> int:
        """How many times the fake AI CLI has really started."""
        return len(self.counter.read_text().splitlines()) if self.counter.exists() else 0


@pytest.fixture
def flower_task() -> Iterator[None]:
    """Flower builds messages only inside a task: pose as one, then restore the identity."""
    from flwr.supercore.task_identity import TaskIdentity

    saved = (TaskIdentity._task_id, TaskIdentity._run_id, TaskIdentity._node_id)
    TaskIdentity.task_id, TaskIdentity.run_id, TaskIdentity.node_id = 1, 1, 1
    yield
    TaskIdentity._task_id, TaskIdentity._run_id, TaskIdentity._node_id = saved


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """An empty aicache home for in-process tests."""
    path = tmp_path / "aicache-home"
    monkeypatch.setenv("AICACHE_HOME", str(path))
    yield path


@pytest.fixture
def cli(tmp_path: Path) -> Iterator[Cli]:
    """The real ``aicache`` CLI with its own home, HOME and a counting fake AI CLI."""
    user_home = tmp_path / "user"
    user_home.mkdir()
    workdir = tmp_path / "work"
    workdir.mkdir()
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("AICACHE_", "FAKE_AI_", "XDG_"))
    }
    counter = tmp_path / "fake-ai.count"
    env.update(
        AICACHE_HOME=str(tmp_path / "aicache-home"),
        HOME=str(user_home),
        FAKE_AI_COUNTER=str(counter),
        FAKE_AI_DELAY="0.05",
        PATH=os.pathsep.join([str(FAKE_AI.parent), env.get("PATH", os.defpath)]),
    )
    yield Cli(home=tmp_path / "aicache-home", env=env, counter=counter, cwd=workdir)
    # A miss of a prompt command may have started the home's warm semantic service.
    from aicache.local.semantic_client import stop

    stop(tmp_path / "aicache-home")
