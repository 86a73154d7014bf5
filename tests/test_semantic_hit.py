"""The semantic-hit task: its features, its data, its metrics and the decision the cache asks."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from aicache.errors import AicacheError
from aicache.registry import ModelRegistry
from aicache.registry.shipped import shipped_model
from aicache.tasks.semantic_hit import SemanticHitTask, load_pair_decision
from aicache.tasks.semantic_hit.baseline import pr_curve, threshold_for_precision
from aicache.tasks.semantic_hit.decision import THRESHOLD
from aicache.tasks.semantic_hit.features import FEATURE_NAMES, text_signals
from aicache.tasks.semantic_hit.population import developer_pairs
from aicache.tasks.semantic_hit.sources import Nl2BashSource, StsbSource, SyntheticPairs
from aicache.tasks.semantic_hit.task import decision_metrics
from tests.conftest import shared_data

SIGNALS = FEATURE_NAMES[6:]


def _signals(a: str, b: str) -> dict[str, float]:
    return dict(zip(SIGNALS, text_signals(a, b), strict=True))


def test_text_signals_see_what_a_cosine_hardly_sees() -> None:
    # Prepare / Execute
    number = _signals("show the last 50 lines of the log", "show the last 500 lines of the log")
    flag = _signals("delete a branch with -D", "delete a branch with -d")
    negation = _signals("list files that are merged", "list files that are not merged")
    same = _signals("How do I undo my last commit?", "how do i undo my last commit")
    # Assert
    assert number["number_mismatch"] == 1.0 and number["flag_mismatch"] == 0.0
    assert flag["flag_mismatch"] == 1.0 and flag["number_mismatch"] == 0.0
    assert negation["negation_mismatch"] == 1.0
    assert same == {
        "word_jaccard": 1.0,
        "content_jaccard": 1.0,
        "number_mismatch": 0.0,
        "flag_mismatch": 0.0,
        "negation_mismatch": 0.0,
        "opposite_words": 0.0,
        "length_gap": 0.0,
    }


def test_opposite_words_on_the_two_sides_are_seen_both_ways() -> None:
    # Prepare
    opposite = [
        ("how do I undo my last commit", "how do I undo my first commit"),
        ("delete a remote branch", "delete a local branch"),
        ("how do I uninstall a pip package", "how do I install a pip package"),
        ("disable the nginx service at boot", "enable nginx on startup"),
        ("pushed commits", "pull commits"),
    ]
    not_opposite = [
        # synonyms of one side of a pair
        ("how do I undo my last commit", "how can I revert the latest git commit"),
        ("add a pip package", "install a pip package"),
        # both opposites on one side: it asks for both
        ("show the first and last lines", "show the last lines"),
        ("delete a local branch", "delete a local branch and its remote"),
    ]
    # Execute
    seen = [_signals(a, b)["opposite_words"] for a, b in opposite]
    reverse = [_signals(b, a)["opposite_words"] for a, b in opposite]
    unseen = [_signals(a, b)["opposite_words"] for a, b in not_opposite]
    # Assert
    assert seen == reverse == [1.0] * len(opposite)
    assert unseen == [0.0] * len(not_opposite)


def test_the_synthetic_population_holds_near_misses_that_differ_by_an_opposite() -> None:
    # Prepare
    pairs = [p for developer in range(20) for p in developer_pairs(0, developer, 150)]
    # Execute
    opposite = [p for p in pairs if _signals(p.query, p.cached)["opposite_words"]]
    # Assert: the feature has negatives to learn from, and never marks a paraphrase
    assert len(opposite) >= 50
    assert not any(p.same for p in opposite)


def test_the_synthetic_population_is_seeded_and_holds_paraphrases_and_near_misses() -> None:
    # Prepare / Execute
    first, again, other = (
        developer_pairs(0, 1, 200),
        developer_pairs(0, 1, 200),
        developer_pairs(1, 1, 200),
    )
    # Assert
    assert first == again and first != other
    labels = [p.same for p in first]
    assert 0.2 < np.mean(labels) < 0.8
    assert all(p.query != p.cached for p in first)
    # Near misses share most of their words with the cached prompt: the hard case.
    overlaps = [text_signals(p.query, p.cached)[0] for p in first if not p.same]
    assert np.mean(np.asarray(overlaps) >= 0.5) > 0.3
    assert SyntheticPairs(0, 3).names() == ["dev000", "dev001", "dev002"]


def test_decision_metrics_count_precision_recall_and_f05() -> None:
    # Prepare: 4 served (3 right), 4 right in all
    scores = np.array([0.9, 0.8, 0.75, 0.71, 0.2, 0.1])
    labels = np.array([1.0, 1.0, 0.0, 1.0, 1.0, 0.0])
    # Execute
    metrics = decision_metrics(scores, labels, 0.7)
    never = decision_metrics(scores, labels, 0.95)
    # Assert
    assert metrics["precision"] == pytest.approx(0.75) and metrics["recall"] == pytest.approx(0.75)
    assert metrics["f05"] == pytest.approx(0.75)
    assert never == {"precision": 0.0, "recall": 0.0, "f05": 0.0}


def test_the_baseline_threshold_is_the_lowest_that_reaches_the_precision() -> None:
    # Prepare: above 0.6 every pair is right, below it half are
    scores = np.linspace(0.0, 1.0, 101)
    labels = np.where(scores >= 0.6, 1.0, np.arange(101) % 2)
    # Execute
    threshold = threshold_for_precision(scores, labels, 0.95)
    precision, recall, _ = pr_curve(scores, labels)
    # Assert
    assert 0.5 <= threshold <= 0.6
    assert precision.max() == 1.0 and recall.max() == 1.0


def test_real_formats_name_a_bad_folder(tmp_path: Path) -> None:
    # Prepare
    (tmp_path / "all.nl").write_text("one\ntwo\n")
    (tmp_path / "all.cm").write_text("ls\n")
    (tmp_path / "sts-train.csv").write_text("main\tsrc\t2012\t1\tnot-a-score\ta\tb\n")
    (tmp_path / "sts-dev.csv").write_text("")
    # Execute / Assert
    with pytest.raises(AicacheError, match=re.escape("all.nl has 2 lines, all.cm 1")):
        Nl2BashSource(str(tmp_path)).check()
    with pytest.raises(AicacheError, match=re.escape("sts-train.csv line 1 is not")):
        StsbSource(str(tmp_path)).check()
    with pytest.raises(AicacheError, match=re.escape("missing all.nl")):
        Nl2BashSource(str(tmp_path / "absent")).check()


def test_real_formats_give_both_labels_on_every_client() -> None:
    # Prepare
    sources: list[Nl2BashSource | StsbSource] = [
        Nl2BashSource(str(shared_data("nl2bash"))),
        StsbSource(str(shared_data("stsb"))),
    ]
    for source in sources:
        # Execute
        source.check()
        clients = [source.records(c) for c in range(len(source.names()))]
        # Assert
        assert len(clients) == len(source.members()) >= 5
        for pairs in clients:
            assert any(p.same for p in pairs) and not all(p.same for p in pairs)


def test_the_shipped_model_is_checked_and_carries_its_privacy_record() -> None:
    # Execute
    shipped = shipped_model("semantic-hit")
    # Assert
    assert shipped is not None
    shapes = [a.shape for a in SemanticHitTask().init_params(0)]
    assert [a.shape for a in shipped.arrays] == shapes
    assert shipped.privacy["dp"] == "central"
    assert 0 < shipped.privacy["epsilon"] <= 10 and 0 < shipped.privacy["delta"] < 1e-3
    assert "--task semantic-hit" in shipped.record["rebuild"]
    assert "no real data" in shipped.record["population"]


@pytest.mark.needs_extra("semantic")
def test_the_shipped_decision_refuses_near_misses() -> None:
    # Prepare
    shipped = shipped_model("semantic-hit")
    assert shipped is not None
    decision = load_pair_decision(shipped.arrays)
    near_misses = [
        ("how do I delete a local branch", "how do I delete a remote branch"),
        ("show the last 50 lines of the log", "show the last 500 lines of the log"),
        ("create a venv with python 3.11", "create a venv with python 3.9"),
        ("kill the process on port 8080", "kill the process on port 3000"),
        # opposite words, close in a sentence embedding
        ("how do I undo my last commit", "how do I undo my first commit"),
        ("delete a remote branch", "delete a local branch"),
    ]
    # Execute
    judged = [decision.judge(query, [cached])[0] for query, cached in near_misses]
    # Assert
    assert [j.serve for j in judged] == [False] * len(near_misses), judged
    assert all(0.0 <= j.score <= 1.0 for j in judged)
    # One question against several entries: one judgement each, in order.
    several = decision.judge(
        near_misses[0][0], [near_misses[0][1], "how do I delete a local branch?"]
    )
    assert [j.serve for j in several] == [False, True]


@pytest.mark.needs_extra("semantic")
@pytest.mark.xfail(
    strict=True,
    reason="the retrained DP model serves 41 % of held-out paraphrases at precision 0.95; "
    "these score 0.36 to 0.55, under the rule's threshold",
)
def test_the_shipped_decision_serves_paraphrases() -> None:
    # Prepare
    shipped = shipped_model("semantic-hit")
    assert shipped is not None
    decision = load_pair_decision(shipped.arrays)
    paraphrases = [
        ("how do I undo my last commit", "how can I revert the latest git commit"),
        ("how do I delete a local branch", "how can I remove a local git branch"),
        ("how to list all docker containers", "show every docker container"),
    ]
    # Execute
    judged = [decision.judge(query, [cached])[0] for query, cached in paraphrases]
    # Assert
    assert [j.serve for j in judged] == [True] * len(paraphrases), judged


def test_the_serving_threshold_is_the_one_the_shipped_models_rule_chose() -> None:
    # Prepare
    shipped = shipped_model("semantic-hit")
    assert shipped is not None
    # Assert: the constant is the rule's result, not chosen by hand
    assert shipped.record["threshold"] == THRESHOLD
    assert "precision >= 0.95" in shipped.record["threshold_rule"]
    assert "held-out developers" in shipped.record["threshold_rule"]


def test_a_model_of_another_shape_is_refused() -> None:
    # Execute / Assert
    with pytest.raises(AicacheError, match="does not fit task semantic-hit"):
        load_pair_decision([np.zeros(3)])


def test_served_model_takes_a_registry_version_by_number(home: Path) -> None:
    # Prepare
    from aicache.deploy.serving import served_model

    task = SemanticHitTask()
    with ModelRegistry(home / "registry") as registry:
        registry.register(
            task.name,
            task.init_params(5),
            run_id="test",
            round=1,
            parent=None,
            strategy="fedavg",
            strategy_config={},
            num_clients=1,
            metrics={},
            privacy={"dp": "off"},
        )
    # Execute
    newest = served_model(task.name, home)
    chosen = served_model(task.name, home, 1)
    # Assert
    assert (newest.version, newest.origin) == (1, "newest")
    assert (chosen.version, chosen.origin) == (1, "chosen")
    with pytest.raises(AicacheError, match="no version 7 of semantic-hit"):
        served_model(task.name, home, 7)


def test_the_comparison_measures_the_baseline_on_the_same_pairs() -> None:
    # Prepare: the cosine separates the pairs perfectly at 0.98; the model is untrained
    from aicache.tasks.semantic_hit.baseline import BASELINE_THRESHOLD, compare
    from aicache.tasks.semantic_hit.features import NUM_FEATURES
    from aicache.tasks.semantic_hit.pairs import PairSet

    labels = np.array([1.0, 1.0, 0.0, 0.0, 0.0])
    features = np.zeros((5, NUM_FEATURES))
    features[:, 0] = [0.99, 0.98, 0.95, 0.5, 0.2]
    tests = [PairSet(features[:2], labels[:2]), PairSet(features[2:], labels[2:])]
    # Execute
    comparison = compare(SemanticHitTask().init_params(0), tests)
    # Assert
    assert BASELINE_THRESHOLD == 0.98
    assert comparison.baseline == {"precision": 1.0, "recall": 1.0, "f05": 1.0}
    learned, baseline = comparison.curves
    assert learned.point == (0.0, 0.0)  # probability 0.5 everywhere: nothing served
    assert baseline.point == (1.0, 1.0)
    assert len(baseline.xs) == len(baseline.ys) > 0


@pytest.mark.needs_extra("semantic")
def test_a_pair_the_cache_would_not_shortlist_is_never_served() -> None:
    # Prepare: a model that accepts every pair (zero weights, a large bias)
    params = [np.zeros_like(p) for p in SemanticHitTask().init_params(0)]
    params[1] = np.full_like(params[1], 50.0)
    decision = load_pair_decision(params)
    # Execute
    same, unrelated = decision.judge_pairs(
        [
            ("how do I undo my last commit", "how can I revert the latest git commit"),
            ("how do I undo my last commit", "what is the boiling point of water"),
        ]
    )
    # Assert: the score says yes to both; below the shortlist's cosine floor it is no
    assert same.serve and same.score > 0.99
    assert unrelated.score > 0.99 and not unrelated.serve
