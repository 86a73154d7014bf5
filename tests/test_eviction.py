"""The cache budget on a real store: what is evicted, what goes with it, what stays."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import numpy as np

from aicache.cli.keep_scorer import LearnedScorer, learned_scorer
from aicache.local.cache import CacheKey, Event, NewEntry, make_key, record
from aicache.local.eviction import Budget, LruScorer, enforce_budget, entry_stats, usage
from aicache.local.home_key import home_key
from aicache.local.store import Store
from aicache.registry import ModelRegistry
from aicache.tasks.cache_keep import FEATURE_NAMES
from tests.conftest import Cli


def _key(store: Store, prompt: str) -> CacheKey:
    return make_key(["fake-ai", prompt], None, {}, secret=home_key(store.path.parent))


def _ask(store: Store, prompt: str, *, output: bytes = b"answer\n", stored: bool) -> str:
    """One call through the cache: a miss that stores, or a hit on the stored answer."""
    key = _key(store, prompt)
    event = Event(
        tool="fake-ai",
        key_hash=key.event_hash,
        outcome="miss" if stored else "hit",
        latency_ms=10.0,
        output_bytes=len(output),
        exit_code=0,
        stored=stored,
        tokens="fake-ai",
    )
    entry = NewEntry(key, output, b"", 0, 1.5, None) if stored else None
    record(store, event, entry=entry, hit="" if stored else key.digest)
    return key.digest


def _keys(store: Store) -> set[str]:
    return {str(row[0]) for row in store.conn.execute("SELECT key FROM cache_entries")}


def test_a_budget_evicts_the_lowest_scores_with_their_rows_and_keeps_events(home: Path) -> None:
    # Prepare: four answers, one of them with rows of another table (its vector, say)
    with Store.open(home) as store:
        keys = [_ask(store, f"question {i}", stored=True) for i in range(4)]
        _ask(store, "question 0", stored=False)  # question 0 is now the most recent
        with store.write() as conn:
            conn.execute(
                "CREATE TABLE entry_vectors (entry TEXT NOT NULL "
                "REFERENCES cache_entries(key) ON DELETE CASCADE, vector BLOB)"
            )
            conn.executemany(
                "INSERT INTO entry_vectors (entry, vector) VALUES (?, x'00')",
                [(keys[1],), (keys[3],)],
            )
        events = store.conn.execute("SELECT count(*) FROM events").fetchone()[0]
        # Execute
        result = enforce_budget(store, Budget(max_entries=2), LruScorer())
        # Assert: the two least recently used went, with their rows; events stay
        assert (result.evicted, result.entries) == (2, 2)
        assert _keys(store) == {keys[0], keys[3]}
        vectors = store.conn.execute("SELECT entry FROM entry_vectors").fetchall()
        assert vectors == [(keys[3],)]
        assert store.conn.execute("SELECT count(*) FROM events").fetchone()[0] == events
        assert result.freed == 2 * len(b"answer\n")


def test_a_size_budget_evicts_until_the_output_fits(home: Path) -> None:
    # Prepare: three answers of 1000 bytes
    with Store.open(home) as store:
        for i in range(3):
            _ask(store, f"big {i}", output=b"x" * 1000, stored=True)
        # Execute
        result = enforce_budget(store, Budget(max_size=2500), LruScorer())
        # Assert
        assert usage(store) == (2, 2000)
        assert result.evicted == 1 and result.freed == 1000


def test_the_entry_just_stored_is_never_evicted(home: Path) -> None:
    # Prepare: the newest answer scores lowest of all, and is the one just stored
    with Store.open(home) as store:
        old = _ask(store, "old", stored=True)
        new = _ask(store, "new", stored=True)
        # Execute: a scorer that would evict the newest
        lowest_for_new = enforce_budget(store, Budget(max_entries=1), _ReverseLru(), protect=new)
        # Assert
        assert lowest_for_new.evicted == 1
        assert _keys(store) == {new} and old not in _keys(store)


class _ReverseLru:
    description = "most recently used first"

    def keep_scores(self, entries: object) -> list[float]:
        return [float(e.since_use) for e in entries]  # type: ignore[attr-defined]


def test_entry_stats_count_requests_uses_and_gaps(home: Path) -> None:
    # Prepare: a asked at requests 1, 3 and 4; b at request 2; c at request 5
    with Store.open(home) as store:
        a = _ask(store, "a", stored=True)
        b = _ask(store, "b", stored=True)
        _ask(store, "a", stored=False)
        _ask(store, "a", stored=False)
        c = _ask(store, "c", stored=True)
        # Execute
        stats = {s.key: s for s in entry_stats(store)}
    # Assert
    assert (stats[a].uses, stats[a].since_use, stats[a].since_first, stats[a].last_gap) == (
        3,
        1,
        4,
        1,
    )
    assert (stats[b].uses, stats[b].since_use, stats[b].last_gap) == (1, 3, 3)
    assert (stats[c].uses, stats[c].since_use, stats[c].since_program) == (1, 0, 0)
    assert stats[a].duration_s == 1.5 and stats[a].size == len(b"answer\n")


def test_the_learned_score_keeps_a_reused_entry_over_a_newer_one_asked_once(home: Path) -> None:
    # Prepare: "often" asked ten times, then "once" asked once, later
    with Store.open(home) as store:
        often = _ask(store, "often", stored=True)
        for _ in range(9):
            _ask(store, "often", stored=False)
        for i in range(5):
            _ask(store, f"other {i}", stored=True)
        once = _ask(store, "once", stored=True)
        scorer = learned_scorer(store)
        # Execute
        learned = enforce_budget(store, Budget(max_entries=2), scorer, protect=once)
        kept_learned = _keys(store)
    # Assert: the shipped model keeps the reused entry; LRU would have kept "other 4"
    assert isinstance(scorer, LearnedScorer)
    assert learned.policy == "the learned keep-score (the shipped model)"
    assert kept_learned == {often, once}


def test_without_a_usable_model_the_budget_falls_back_to_lru_and_says_why(home: Path) -> None:
    # Prepare: the home's registry serves a cache-keep model of another shape
    with Store.open(home) as store:
        with ModelRegistry(home / "registry") as registry:
            registry.register(
                "cache-keep",
                [np.zeros(3)],
                run_id="test",
                round=1,
                parent=None,
                strategy="fedavg",
                strategy_config={},
                num_clients=1,
                metrics={},
                privacy={},
            )
        # Execute
        scorer = learned_scorer(store)
    # Assert
    assert isinstance(scorer, LruScorer)
    assert scorer.description.startswith("LRU (no usable cache-keep model: ")


def _entries(cli: Cli) -> list[str]:
    listed = cli.run("list", "--json")
    assert listed.returncode == 0, listed.stderr
    return [e["argv"][1] for e in json.loads(listed.stdout)]


def test_prune_evicts_past_the_budget_and_names_the_policy(cli: Cli) -> None:
    # Prepare: three answers, "first" asked again four times, then a budget of two
    for prompt in ("first", "second", "third"):
        assert cli.run("run", "--", "fake-ai", prompt).returncode == 0
    for _ in range(4):
        cli.run("run", "--", "fake-ai", "first")
    cli.run("run", "--", "fake-ai", "fourth")
    assert cli.run("config", "set", "max-entries", "2").returncode == 0
    with sqlite3.connect(cli.home / "store.db") as conn:  # as if set before: nothing evicted yet
        assert conn.execute("SELECT count(*) FROM cache_entries").fetchone()[0] == 4
    conn.close()
    # Execute
    pruned = cli.run("prune")
    again = cli.run("prune")
    # Assert
    text = pruned.stdout.decode()
    assert pruned.returncode == 0, pruned.stderr
    assert "Evicted 2 entries" in text and "budget of 2 entries" in text
    assert "by the learned keep-score (the shipped model)" in " ".join(text.split())
    assert set(_entries(cli)) == {"first", "fourth"}
    assert "Within the budget of 2 entries" in " ".join(again.stdout.decode().split())


def test_a_miss_past_the_budget_evicts_at_once_and_keeps_the_new_answer(cli: Cli) -> None:
    # Prepare
    assert cli.run("config", "set", "max-entries", "2").returncode == 0
    # Execute
    for prompt in ("one", "two", "three"):
        assert cli.run("run", "--", "fake-ai", prompt).returncode == 0
    # Assert: two entries, the newest among them; the evicted one runs again
    entries = _entries(cli)
    assert len(entries) == 2 and "three" in entries
    before = cli.invocations()
    gone = ({"one", "two"} - set(entries)).pop()
    cli.run("run", "--", "fake-ai", gone)
    assert cli.invocations() == before + 1


def test_budget_settings_refuse_bad_values_in_one_line(cli: Cli) -> None:
    # Execute
    results = [
        cli.run("config", "set", "max-entries", "lots"),
        cli.run("config", "set", "max-entries", "0"),
        cli.run("config", "set", "max-size", "big"),
    ]
    shown = cli.run("config", "show")
    # Assert
    for result in results:
        text = result.stderr.decode()
        assert result.returncode == 2
        assert "Traceback" not in text
        assert len(text.strip().splitlines()) == 1, text
    assert "invalid number of entries 'lots'" in results[0].stderr.decode()
    assert "greater than zero" in results[1].stderr.decode()
    assert "invalid size 'big'" in results[2].stderr.decode()
    assert "off" in shown.stdout.decode()


def test_prune_says_when_it_falls_back_to_lru(cli: Cli) -> None:
    # Prepare: three answers, a budget of one, and a served model of another shape
    for prompt in ("first", "second", "third"):
        assert cli.run("run", "--", "fake-ai", prompt).returncode == 0
    with ModelRegistry(cli.home / "registry") as registry:
        registry.register(
            "cache-keep",
            [np.zeros(3)],
            run_id="test",
            round=1,
            parent=None,
            strategy="fedavg",
            strategy_config={},
            num_clients=1,
            metrics={},
            privacy={},
        )
    assert cli.run("config", "set", "max-entries", "1").returncode == 0
    # Execute
    pruned = cli.run("prune")
    # Assert: evicted by LRU, saying why; the newest stays
    text = " ".join(pruned.stdout.decode().split())
    assert pruned.returncode == 0, pruned.stderr
    assert "Evicted 2 entries" in text and "by LRU (no usable cache-keep model:" in text
    assert _entries(cli) == ["third"]


def test_a_model_in_the_home_registry_serves_before_the_shipped_one(home: Path) -> None:
    # Prepare: a cache-keep version of the right shape, as a federation would deliver
    with Store.open(home) as store:
        with ModelRegistry(home / "registry") as registry:
            registry.register(
                "cache-keep",
                [np.linspace(-1.0, 1.0, len(FEATURE_NAMES)), np.zeros(1)],
                run_id="test",
                round=1,
                parent=None,
                strategy="fedavg",
                strategy_config={},
                num_clients=2,
                metrics={},
                privacy={},
            )
        # Execute
        scorer = learned_scorer(store)
    # Assert
    assert isinstance(scorer, LearnedScorer)
    assert scorer.description == "the learned keep-score (version 1 (newest))"
    np.testing.assert_allclose(scorer.params[0], np.linspace(-1.0, 1.0, len(FEATURE_NAMES)))
