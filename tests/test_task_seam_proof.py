"""The task seam, proved by a task that lives only here.

This module defines and registers ``first-word``: a histogram of the first
word of each command, aggregated by the federation as a sum (not a mean). It
then runs it through ``aicache simulate`` (real Ray simulation), the report,
the registry, ``aicache evaluate`` and one deployed round on loopback (a real
SuperLink and SuperNodes), without any code outside this module knowing it.

Other processes (Ray workers, SuperNodes, the deployed ServerApp and
ClientApps) find it through ``AICACHE_TASK_MODULES`` and ``PYTHONPATH``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import psutil
import pytest
from numpy.typing import NDArray

from aicache.features.history_items import HistoryItem, history_version, items_from_home
from aicache.tasks.base import FitConfig, FitResult, Params, Task, check_params
from aicache.tasks.next_command.sources import GreenbergSource, SyntheticSource
from aicache.tasks.spec import (
    Aggregation,
    Metric,
    PredictionKind,
    TaskSpec,
    TaskTags,
    register_spec,
)
from tests.conftest import Cli

ROOT = Path(__file__).resolve().parents[1]
WORDS = ("git", "ls", "cd", "vim", "python", "make", "cargo", "npm", "docker", "kubectl")
BUCKETS = len(WORDS) + 1  # the last one counts every other first word
SCALE = 0.01  # counts in hundreds of commands: an honest update stays under the norm bound
_INDEX = {word: index for index, word in enumerate(WORDS)}


@dataclass(frozen=True, slots=True)
class WordIds:
    """Each command's first-word bucket, in typed order."""

    ids: NDArray[np.int64]

    def __len__(self) -> int:
        return int(self.ids.size)

    def slice(self, start: int, stop: int | None) -> WordIds:
        return WordIds(self.ids[start:stop])

    @classmethod
    def concatenate(cls, parts: Sequence[WordIds]) -> WordIds:
        return cls(np.concatenate([p.ids for p in parts]).astype(np.int64))

    def save(self, path: Path) -> None:
        with path.open("wb") as handle:
            np.savez(handle, ids=self.ids)

    @classmethod
    def load(cls, path: Path) -> WordIds:
        with np.load(path, allow_pickle=False) as saved:
            return cls(saved["ids"])


def counts(examples: WordIds) -> NDArray[np.float64]:
    """The scaled histogram of ``examples``' first words."""
    return np.bincount(examples.ids, minlength=BUCKETS).astype(np.float64) * SCALE


class FirstWordTask(Task[Sequence[HistoryItem], WordIds, int, tuple[str, float]]):
    """How often each first word is typed, summed over the federation."""

    name = "first-word"

    def init_params(self, seed: int) -> Params:
        return [np.zeros(BUCKETS)]

    def load_local(self, source: Sequence[HistoryItem]) -> WordIds:
        ids = [_INDEX.get(item.program, len(WORDS)) for item in source]
        return WordIds(np.asarray(ids, dtype=np.int64))

    def num_examples(self, examples: WordIds) -> int:
        return len(examples)

    def fit(self, params: Params, examples: WordIds, config: FitConfig) -> FitResult:
        check_params(params, self.init_params(0))
        return FitResult(params=[params[0] + counts(examples)], num_examples=len(examples))

    def evaluate(self, params: Params, examples: WordIds) -> dict[str, float]:
        """``top3_share``: commands whose first word is among the global top 3;
        ``l1``: distance between the global and the local distribution of words."""
        check_params(params, self.init_params(0))
        total = params[0].sum()
        shares = params[0] / total if total > 0 else np.full(BUCKETS, 1 / BUCKETS)
        local = counts(examples)
        local = local / local.sum() if local.sum() > 0 else np.full(BUCKETS, 1 / BUCKETS)
        top = np.argsort(-params[0], kind="stable")[:3]
        hits = np.isin(examples.ids, top)
        return {
            "top3_share": float(hits.mean()) if len(examples) else 0.0,
            "l1": float(np.abs(shares - local).sum()),
            "num_examples": float(len(examples)),
        }

    def predict(self, params: Params, context: int) -> list[tuple[str, float]]:
        """The ``context`` most typed first words with their counts, most typed first."""
        check_params(params, self.init_params(0))
        order = np.argsort(-params[0][: len(WORDS)], kind="stable")[:context]
        return [(WORDS[i], float(params[0][i] / SCALE)) for i in order]


def read_store(task: Any, home: Path) -> WordIds:
    examples: WordIds = task.load_local(items_from_home(home))
    return examples


SPEC = register_spec(
    TaskSpec(
        name=FirstWordTask.name,
        factory=FirstWordTask,
        examples=WordIds,
        metrics=(
            Metric(name="top3_share", label="top-3 share", bounded=True),
            Metric(name="l1", label="L1 to global", higher_is_better=False),
        ),
        synthetic=lambda seed, clients: SyntheticSource(seed, clients),
        formats={"greenberg": GreenbergSource},
        read_store=read_store,
        store_version=history_version,
        context=lambda: 3,
        record_label="commands",
        aggregation=Aggregation.SUM,
        tags=TaskTags(gradient=False, prediction=PredictionKind.SCORED_STRINGS),
    )
)


def train_counts(records: Sequence[HistoryItem]) -> NDArray[np.float64]:
    """One client's contribution in a round: the counts of its train split (70 %)."""
    examples = FirstWordTask().load_local(records)
    return counts(examples.slice(0, int(len(examples) * 0.7)))


@pytest.fixture
def seam_env(cli: Cli) -> Cli:
    """The CLI with this module findable in every process it starts."""
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    cli.env.update(AICACHE_TASK_MODULES=__name__, PYTHONPATH=path)
    return cli


@pytest.mark.e2e
def test_a_task_defined_here_runs_through_simulate_report_registry_and_evaluate(
    seam_env: Cli, tmp_path: Path
) -> None:
    # Prepare
    registry = tmp_path / "registry"
    source = SyntheticSource(seed=3, clients=3)
    # Execute
    metrics, _ = seam_env.simulate(
        f"--task first-word --clients 3 --rounds 2 --seed 3 --registry {registry}",
        out=tmp_path / "report",
    )
    listed = seam_env.run(
        "models", "list", "--task", "first-word", "--json", "--registry", str(registry)
    )
    evaluated = seam_env.run(
        "evaluate",
        "--task",
        "first-word",
        "--seed",
        "9",
        "--clients",
        "2",
        "--json",
        "--registry",
        str(registry),
    )
    # Assert: the report speaks the task's metrics, with their directions
    assert metrics["task"] == "first-word"
    assert [m["name"] for m in metrics["metrics"]] == ["top3_share", "l1"]
    assert [m["higher_is_better"] for m in metrics["metrics"]] == [True, False]
    assert {"top3_share", "l1"} <= set(metrics["federated"]) and "top1" not in metrics["federated"]
    for name in ("metrics.json", "index.html", "learning_curve.png", "clients.png"):
        assert (tmp_path / "report" / name).stat().st_size > 0
    assert "top-3 share" in (tmp_path / "report" / "index.html").read_text()
    # Assert: the federation summed the clients' counts (a mean would be a third of it)
    versions = json.loads(listed.stdout)
    assert [v["round"] for v in versions] == [1, 2]
    from aicache.registry import ModelRegistry

    whole = sum(train_counts(source.records(c)) for c in range(3))
    with ModelRegistry(registry) as reg:
        second = reg.load(reg.resolve("first-word", "2"))
    np.testing.assert_allclose(second[0], 2 * whole)
    # Assert: evaluation on unseen users reads the same spec
    assert evaluated.returncode == 0, evaluated.stderr.decode()
    report = json.loads(evaluated.stdout)
    assert report["users"] == 2 and 0.0 < report["top3_share"] <= 1.0
    assert "cold_global_l1" in report and "top1" not in report


@pytest.mark.e2e
def test_a_sum_task_refuses_a_rule_that_cannot_sum(seam_env: Cli, tmp_path: Path) -> None:
    # Prepare / Execute
    refused = seam_env.run(
        "simulate",
        "--task",
        "first-word",
        "--clients",
        "3",
        "--rounds",
        "1",
        "--strategy",
        "median",
        "--registry",
        str(tmp_path / "registry"),
        "--out",
        str(tmp_path / "report"),
    )
    # Assert
    text = " ".join(refused.stderr.decode().split())
    assert refused.returncode == 2, text
    assert "first-word is aggregated as a sum" in text and "median" in text
    assert "Traceback" not in text
    assert not (tmp_path / "report").exists()


@pytest.mark.e2e
def test_a_task_defined_here_trains_one_deployed_round_on_loopback(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    # Prepare: a real SuperLink with TLS and two SuperNodes on their own stores
    from tests.test_deploy_e2e import (
        Federation,
        _fill_store,
        _free_port,
        _started_under,
        _text,
    )

    base = tmp_path_factory.mktemp("seam-deploy")
    (base / "user").mkdir()
    (base / "work").mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AICACHE_", "XDG_"))}
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    env.update(
        AICACHE_HOME=str(base / "operator-home"),
        HOME=str(base / "user"),
        AICACHE_TASK_MODULES=__name__,
        PYTHONPATH=path,
    )
    cli = Cli(home=base / "operator-home", env=env, counter=base / "count", cwd=base / "work")
    fed = Federation(cli=cli, root=base / "fed", work=base / "work")
    nodes = ("alice", "bob")
    created = fed.server("init", str(fed.root), "--host", "127.0.0.1", "--port", str(_free_port()))
    assert created.returncode == 0, created.stderr.decode()
    try:
        started = fed.server("start", str(fed.root), "--detach")
        assert started.returncode == 0, started.stderr.decode()
        for index, name in enumerate(nodes):
            enrolled = fed.server("enroll", name, "--dir", str(fed.root))
            assert enrolled.returncode == 0, enrolled.stderr.decode()
            _fill_store(fed, name, index)
            joined = fed.node(name, "join", str(fed.bundle(name)), "--detach")
            assert joined.returncode == 0, _text(joined)
        # Execute
        ran = fed.server(
            "run",
            str(fed.root),
            "--task",
            "first-word",
            "--rounds",
            "1",
            "--min-clients",
            "2",
            "--round-timeout",
            "120",
            "--wait",
            "600",
            timeout=700,
        )
        # Assert: one signed version whose model is the sum of the nodes' own counts
        assert ran.returncode == 0, _text(ran)
        assert "top-3 share" in _text(ran)
        listed = fed.cli.run(
            "models",
            "list",
            "--task",
            "first-word",
            "--json",
            "--registry",
            str(fed.root / "registry"),
        )
        versions = json.loads(listed.stdout)
        assert [(v["task"], v["round"], v["num_clients"]) for v in versions] == [
            ("first-word", 1, 2)
        ]
        from aicache.registry import ModelRegistry

        whole = sum(train_counts(items_from_home(fed.home(name))) for name in nodes)
        with ModelRegistry(fed.root / "registry") as reg:
            model = reg.load(reg.resolve("first-word", "1"))
            assert reg.signature("first-word", 1) is not None
        np.testing.assert_allclose(model[0], whole)
    finally:
        for name in nodes:
            fed.node(name, "leave")
        fed.server("stop", str(fed.root))
        psutil.wait_procs(_started_under(base), timeout=15)
        left = _started_under(base)
        assert not left, f"processes left running: {[p.cmdline() for p in left]}"


@pytest.mark.e2e
def test_a_sum_task_sums_noised_updates_under_local_dp(seam_env: Cli, tmp_path: Path) -> None:
    # Prepare: every client clips (no-op at C = 100) and noises its own update (σ = z·C = 0.01)
    registry = tmp_path / "registry"
    source = SyntheticSource(seed=3, clients=3)
    flags = "--dp local --clip 100 --noise-multiplier 0.0001"
    # Execute
    metrics, _ = seam_env.simulate(
        f"--task first-word --clients 3 --rounds 1 --seed 3 {flags} --registry {registry}",
        out=tmp_path / "report",
    )
    # Assert: the noised sum, not a noised mean (a third of it, off by more than 0.5 here)
    from aicache.registry import ModelRegistry

    whole = sum(train_counts(source.records(c)) for c in range(3))
    with ModelRegistry(registry) as reg:
        model = reg.load(reg.resolve("first-word", "1"))[0]
    assert metrics["privacy"]["dp"] == "local"
    assert np.abs(whole - whole / 3).max() > 0.5
    np.testing.assert_allclose(model, whole, atol=0.1)
    assert not np.allclose(model, whole, rtol=0, atol=1e-9)  # the noise is there
