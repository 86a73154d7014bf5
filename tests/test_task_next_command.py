"""Tests of next-command features, candidate sets, converters and the task's predictions."""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from aicache.features.candidates import CandidateSet
from aicache.features.history_items import (
    HistoryItem,
    item_from_row,
    item_from_shell,
    items_from_store,
)
from aicache.features.next_command import (
    FEATURE_NAMES,
    NUM_FEATURES,
    CandidateConfig,
    HistoryState,
    extract_candidates,
)
from aicache.features.vocabulary import PUBLIC_VOCABULARY, vocabulary_bucket
from aicache.local.history import ShellCommand
from aicache.local.importer import directory_hash
from aicache.local.schema import MIGRATIONS
from aicache.tasks.base import FitConfig
from aicache.tasks.next_command import NextCommandContext, NextCommandTask

CYCLE = ("cd", "ls", "vim", "make", "a.out", "git status", "ls", "vim")


def synthetic_history(n: int) -> list[HistoryItem]:
    """A user repeating an edit-build-run cycle with an occasional other command."""
    return [
        HistoryItem(
            command="cat" if t % 11 == 10 else CYCLE[t % len(CYCLE)],
            session=t // 50,
            dir_hash=f"d{(t // 25) % 3}",
            failed=t % 13 == 0,
        )
        for t in range(n)
    ]


def group(examples: CandidateSet, t: int) -> np.ndarray:
    return examples.features[examples.offsets[t] : examples.offsets[t + 1]]


def test_features_at_t_ignore_the_command_at_t_and_everything_after() -> None:
    # Prepare
    items = synthetic_history(120)
    t = 70
    changed = list(items[:t]) + [
        HistoryItem(command="zzz-other", session=it.session, dir_hash=it.dir_hash, failed=True)
        for it in items[t:]
    ]
    # Execute
    original = extract_candidates(items)
    altered = extract_candidates(changed)
    # Assert
    for point in range(t + 1):
        np.testing.assert_array_equal(group(original, point), group(altered, point))
    assert not np.array_equal(group(original, t + 1), group(altered, t + 1))


def test_without_context_the_next_items_session_and_directory_are_not_used() -> None:
    # Prepare
    items = synthetic_history(60)
    t = 30
    moved = [*items[:t], replace(items[t], session=999, dir_hash="elsewhere"), *items[t + 1 :]]
    # Execute
    original = extract_candidates(items, use_context=False)
    altered = extract_candidates(moved, use_context=False)
    # Assert
    np.testing.assert_array_equal(group(original, t), group(altered, t))


def test_empty_history_proposes_the_public_vocabulary() -> None:
    # Prepare
    state = HistoryState(CandidateConfig(vocabulary=5))
    # Execute
    candidates = state.candidates()
    _, features = state.features()
    # Assert
    assert sorted(candidates) == sorted(PUBLIC_VOCABULARY[:5])
    assert features.shape == (5, NUM_FEATURES) and features.dtype == np.float32
    assert np.all(features[:, FEATURE_NAMES.index("unseen")] == 1.0)


def test_candidates_hold_recent_and_successor_programs() -> None:
    # Prepare
    state = HistoryState(CandidateConfig(recent=3, frequent=1, successors=5, vocabulary=0))
    for command in ["alpha", "beta", "alpha", "gamma", "delta", "epsilon", "alpha"]:
        state.update(HistoryItem(command=command))
    # Execute
    candidates = state.candidates()
    ids, features = state.features()
    # Assert
    assert {"alpha", "epsilon", "delta"} <= set(candidates)  # the 3 most recent
    assert {"beta", "gamma"} <= set(candidates)  # what followed "alpha" before
    beta = candidates.index("beta")
    assert features[beta, FEATURE_NAMES.index("bigram")] == pytest.approx(0.5)
    assert features[candidates.index("alpha"), FEATURE_NAMES.index("rank_1")] == 1.0
    assert len(ids) == len(set(ids.tolist()))


def test_a_program_never_seen_is_no_target() -> None:
    # Prepare
    items = [HistoryItem("alpha"), HistoryItem("alpha"), HistoryItem("brand-new")]
    # Execute
    examples = extract_candidates(items)
    # Assert
    assert examples.targets[1] >= 0
    assert examples.targets[2] == -1


def test_retry_feature_marks_the_failed_previous_command() -> None:
    # Prepare
    state = HistoryState()
    state.update(HistoryItem("ls"))
    state.update(HistoryItem("gcc", failed=True))
    # Execute
    ids, features = state.features()
    # Assert
    names = [state.names[i] for i in ids]
    retry = features[:, FEATURE_NAMES.index("retry_after_fail")]
    assert retry[names.index("gcc")] == 1.0
    assert retry.sum() == 1.0


def test_many_distinct_programs_grow_the_state() -> None:
    # Prepare
    items = [HistoryItem(f"prog{i % 300}", dir_hash=f"d{i % 4}") for i in range(700)]
    # Execute
    examples = extract_candidates(items)
    # Assert
    assert len(examples) == 700
    assert np.all(examples.targets[400:] >= -1)
    assert np.isfinite(examples.features).all()


def test_candidate_set_slice_take_and_concatenate_agree() -> None:
    # Prepare
    examples = extract_candidates(synthetic_history(50))
    # Execute
    head, tail = examples.slice(0, 20), examples.slice(20, 50)
    joined = CandidateSet.concatenate([head, tail])
    taken = examples.take(np.array([20, 3]))
    # Assert
    np.testing.assert_array_equal(joined.features, examples.features)
    np.testing.assert_array_equal(joined.offsets, examples.offsets)
    np.testing.assert_array_equal(taken.targets, examples.targets[[20, 3]])
    np.testing.assert_array_equal(group(taken, 1), group(examples, 3))


def test_item_from_shell_hashes_the_directory_and_keeps_the_subcommand() -> None:
    # Prepare
    command = ShellCommand("git commit -m 'secret'", session=2, directory="/home/a", failed=True)
    # Execute
    item = item_from_shell(command)
    # Assert
    assert item == HistoryItem("git commit", 2, directory_hash("/home/a"), True)
    assert item is not None and item.program == "git"
    assert item_from_shell(ShellCommand("   ")) is None


def test_item_from_row_and_from_the_store() -> None:
    # Prepare
    conn = sqlite3.connect(":memory:")
    conn.executescript(MIGRATIONS[0])
    rows = [("a", 0, "git", "status", 1, "h1", 0), ("b", 1, "ls", None, 1, None, 1)]
    conn.executemany(
        "INSERT INTO commands (fingerprint, seq, program, subcommand, session, dir_hash, failed,"
        " source, flags, n_args) VALUES (?, ?, ?, ?, ?, ?, ?, 'bash', '[]', 0)",
        rows,
    )
    # Execute
    items = items_from_store(conn)
    examples = NextCommandTask().load_local(conn)
    # Assert
    assert items == [HistoryItem("git status", 1, "h1", False), HistoryItem("ls", 1, None, True)]
    assert item_from_row({"program": "make", "subcommand": "test"}).command == "make test"
    assert len(examples) == 2
    with pytest.raises(ValueError, match="program"):
        item_from_row({"program": ""})
    conn.close()


def test_vocabulary_has_no_duplicates_and_buckets_in_order() -> None:
    # Prepare / Execute
    buckets = [vocabulary_bucket(p) for p in PUBLIC_VOCABULARY]
    known = [b for b in buckets if b is not None]
    # Assert
    assert len(set(PUBLIC_VOCABULARY)) == len(PUBLIC_VOCABULARY)
    assert len(known) == len(buckets) and known == sorted(known)
    assert vocabulary_bucket("not-a-public-tool") is None


def test_trained_model_predicts_the_cycle_with_subcommands() -> None:
    # Prepare
    task = NextCommandTask()
    history = synthetic_history(400)
    params = task.fit(
        task.init_params(0), task.load_local(history), FitConfig(learning_rate=0.02, local_epochs=5)
    ).params
    # "make" was typed: in the cycle "a.out" and then "git status" follow.
    cut = max(i for i, item in enumerate(history) if item.command == "a.out") + 1
    context = NextCommandContext(history=history[:cut], k=3)
    # Execute
    suggestions = task.predict(params, context)
    # Assert
    assert suggestions[0] == "git status"
    assert len(suggestions) == 3


def test_params_hold_only_float_arrays() -> None:
    # Prepare
    task = NextCommandTask(hidden=4)
    # Execute
    params = task.init_params(0)
    # Assert
    assert [p.shape for p in params] == [(NUM_FEATURES,), (NUM_FEATURES, 4), (4,), (4,)]
    assert all(p.dtype == np.float64 for p in params)


def test_evaluate_counts_absent_answers_as_misses() -> None:
    # Prepare
    task = NextCommandTask()
    items = [HistoryItem("alpha"), HistoryItem("alpha"), HistoryItem("new-one")]
    examples = task.load_local(items)
    # Execute
    metrics = task.evaluate(task.init_params(0), examples)
    # Assert
    assert metrics["num_examples"] == 3.0
    assert metrics["coverage"] == pytest.approx(1 / 3)
    assert metrics["top5"] <= metrics["coverage"]


def test_fit_on_a_history_with_nothing_to_learn_returns_the_params() -> None:
    # Prepare
    task = NextCommandTask()
    examples = task.load_local([HistoryItem("only-once")])
    params = task.init_params(0)
    # Execute
    result = task.fit(params, examples, FitConfig())
    # Assert
    assert result.num_examples == 0
    assert all(np.isfinite(v) for v in result.metrics.values())
    for x, y in zip(result.params, params, strict=True):
        np.testing.assert_array_equal(x, y)


def test_predict_on_an_empty_history_gives_k_distinct_commands() -> None:
    # Prepare
    task = NextCommandTask()
    # Execute
    predictions = task.predict(task.init_params(0), NextCommandContext(history=(), k=3))
    # Assert
    assert len(predictions) == 3
    assert all(isinstance(p, str) and p for p in predictions)
    assert len(set(predictions)) == 3


def test_examples_save_and_load_without_pickles(tmp_path: Path) -> None:
    # Prepare
    task = NextCommandTask()
    examples = task.load_local([HistoryItem(c) for c in ("ls", "cd", "ls", "cd", "ls", "vim")])
    path = tmp_path / "examples"  # no suffix: save must not add one
    # Execute
    examples.save(path)
    loaded = CandidateSet.load(path)
    # Assert
    assert path.exists()
    np.testing.assert_array_equal(loaded.features, examples.features)
    np.testing.assert_array_equal(loaded.offsets, examples.offsets)
    np.testing.assert_array_equal(loaded.targets, examples.targets)
