"""The cache-keep task: replaying request streams, its examples, and its simulations."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from aicache.features.cache_requests import Request, requests_from_home
from aicache.local.cache import Event, NewEntry, make_key, record
from aicache.local.home_key import home_key
from aicache.local.store import Store
from aicache.tasks.base import FitConfig, get_task
from aicache.tasks.cache_keep.keep_features import FEATURE_NAMES, EntryState, entry_features
from aicache.tasks.cache_keep.replay import belady, encode, hit_rate, lfu, lru, scored
from aicache.tasks.cache_keep.sources import GreenbergRequests, SyntheticRequests
from aicache.tasks.cache_keep.task import auc
from tests.conftest import Cli, shared_data


def _stream(keys: str) -> list[Request]:
    return [Request(key=k, program="p") for k in keys]


def test_the_replay_counts_hits_as_each_policy_evicts() -> None:
    # Prepare: a b c a d a b with room for two entries
    stream = encode(_stream("abcadab"))
    # Execute / Assert: worked by hand
    assert hit_rate(stream, 2, lru) == pytest.approx(1 / 7)  # the a after d
    assert hit_rate(stream, 2, belady) == pytest.approx(2 / 7)  # c replaces b, d replaces c
    assert hit_rate(stream, 2, lfu) == pytest.approx(1 / 7)  # ties go to the older


def test_belady_bounds_every_policy_on_generated_streams() -> None:
    # Prepare
    source = SyntheticRequests(seed=1, clients=2, requests=600)
    for client in range(2):
        stream = encode(source.records(client))
        # Execute
        best = hit_rate(stream, 20, belady)
        others = [hit_rate(stream, 20, p) for p in (lru, lfu, scored(lambda f: -f[:, 0]))]
        # Assert
        assert all(rate <= best for rate in others)
        assert best > 0


def test_features_are_the_same_for_the_same_cache_on_any_clock() -> None:
    # Prepare: the same entries with every request count doubled, and twice the entries
    state = EntryState(
        since_use=np.array([1.0, 10.0, 100.0]),
        since_first=np.array([50.0, 40.0, 100.0]),
        uses=np.array([5.0, 2.0, 1.0]),
        size=np.array([10.0, 100.0, 1000.0]),
        cost=np.array([1.0, 1.0, 1.0]),
        since_program=np.array([0.0, 3.0, 7.0]),
        semantic=np.zeros(3),
        last_gap=np.array([3.0, 30.0, 100.0]),
        program_reuse=np.array([0.5, 0.5, 0.2]),
    )
    # Execute
    features = entry_features(state)
    scaled_sizes = entry_features(
        EntryState(**{**_fields(state), "size": state.size * 1000, "cost": state.cost * 7})
    )
    # Assert: sizes and costs count only relative to the cache's median
    assert features.shape == (3, len(FEATURE_NAMES))
    np.testing.assert_allclose(features, scaled_sizes)
    assert np.all(np.isfinite(features))
    assert features[0, 0] == 0.0 and features[2, 0] == 1.0  # recency ranks


def _fields(state: EntryState) -> dict[str, np.ndarray]:
    return {name: getattr(state, name) for name in EntryState.__slots__}


def test_auc_ranks_ties_half() -> None:
    # Execute / Assert
    assert auc(np.array([0.1, 0.9, 0.5]), np.array([0.0, 1.0, 0.0])) == 1.0
    assert auc(np.array([1.0, 1.0]), np.array([0.0, 1.0])) == 0.5


def test_a_fit_learns_to_rank_what_is_asked_again() -> None:
    # Prepare
    task = get_task("cache-keep")
    source = SyntheticRequests(seed=2, clients=2)
    train, test = (task.load_local(source.records(c)) for c in range(2))
    start = task.init_params(0)
    # Execute
    fitted = task.fit(start, train, FitConfig(learning_rate=0.05, local_epochs=5)).params
    # Assert: better than chance on another developer
    assert task.evaluate(fitted, test)["auc"] > 0.75
    assert task.evaluate(fitted, test)["auc"] > task.evaluate(start, test)["auc"]


def test_a_node_replays_its_own_store_events(home: Path) -> None:
    # Prepare: a store with calls through the cache: x asked three times, y once
    with Store.open(home) as store:
        secret = home_key(home)
        for prompt, outcome in (("x", "miss"), ("y", "miss"), ("x", "hit"), ("x", "hit")):
            key = make_key(["fake-ai", prompt], None, {}, secret=secret)
            event = Event("fake-ai", key.event_hash, outcome, 20.0, 7, 0, outcome == "miss", "t")
            entry = NewEntry(key, b"answer\n", b"", 0, 0.02, None) if outcome == "miss" else None
            record(store, event, entry=entry, hit=key.digest if outcome == "hit" else "")
    # Execute
    requests = requests_from_home(home)
    # Assert
    assert [r.key for r in requests].count(requests[0].key) == 3
    assert {r.program for r in requests} == {"fake-ai"} and requests[0].size == 7.0


def test_greenberg_requests_are_command_lines() -> None:
    # Prepare
    folder = shared_data("greenberg")
    # Execute
    source = GreenbergRequests(str(folder))
    first = source.records(0)
    # Assert
    assert len(source.names()) == 8
    assert len(first) > 1000 and all(r.key and r.program for r in first)
    assert len({r.key for r in first}) < len(first)  # lines repeat: those are the hits


@pytest.mark.e2e
@pytest.mark.needs_extra("simulation")
def test_simulate_cache_keep_on_the_default_population(cli: Cli, tmp_path: Path) -> None:
    # Execute
    metrics, output = cli.simulate(
        "--task cache-keep --clients 3 --rounds 2 --seed 1", out=tmp_path / "report"
    )
    # Assert: the report speaks the task's metrics
    assert metrics["task"] == "cache-keep"
    assert [m["name"] for m in metrics["metrics"]] == ["auc", "accuracy"]
    assert 0.6 < metrics["federated"]["auc"] <= 1.0
    assert b"keep AUC" in output


@pytest.mark.e2e
@pytest.mark.needs_extra("simulation")
def test_simulate_cache_keep_on_greenberg_traces(cli: Cli, tmp_path: Path) -> None:
    # Prepare
    folder = shared_data("greenberg")
    # Execute
    metrics, output = cli.simulate(
        f"--task cache-keep --data {folder} --format greenberg --rounds 2",
        out=tmp_path / "report",
        timeout=600,
    )
    # Assert
    assert metrics["task"] == "cache-keep"
    assert 0.6 < metrics["federated"]["auc"] <= 1.0
    assert b"Greenberg" in output
    assert json.loads((tmp_path / "report" / "metrics.json").read_text())["clients"] == 8
