"""Semantic hits judged on populations the decision never saw, against GPTCache's threshold.

Usage::

    python benchmarks/semantic_transfer.py [--cache DIR] [--out FILE]

Four populations of labelled (question, cached prompt) pairs, featurised with
the real embedder (all-MiniLM-L6-v2 in numpy): the embedded synthetic
developers of seeds 1 and 2 (10 developers, 150 pairs each), NL2Bash (10
groups of programs, up to 300 pairs each, half paraphrases where there are
enough) and the STS Benchmark (one client per source, up to 300 pairs each;
score >= 4 is the same meaning). For each split "train on A, judge on B":

- *learned*: the semantic-hit task's classifier (logistic regression over
  every pair feature) fitted on A's pairs pooled, no DP, served from the
  task's threshold; then the same with the cosine as its only feature;
- *baseline*: the MiniLM cosine with one threshold tuned on A, GPTCache-style
  (the lowest with precision >= 0.95 on A; the highest F0.5 on A when none
  reaches it).

Precision, recall and F0.5 on B, and the best precision at recall >= 0.6 on
B (what the ranking could give with a threshold chosen on B itself, an upper
bound for both). Features are cached in ``--cache`` (npz, no texts) so a
second run takes seconds.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from aicache.tasks.base import FitConfig
from aicache.tasks.semantic_hit.baseline import pr_curve, threshold_for_precision
from aicache.tasks.semantic_hit.decision import THRESHOLD
from aicache.tasks.semantic_hit.features import COSINE, NUM_FEATURES
from aicache.tasks.semantic_hit.model import init_classifier, probabilities, train
from aicache.tasks.semantic_hit.pairs import PairSet
from aicache.tasks.semantic_hit.sources import Nl2BashSource, StsbSource, SyntheticPairs
from aicache.tasks.semantic_hit.task import SemanticHitTask, decision_metrics
from aicache.tasks.spec import ClientSource

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
FIT = FitConfig(learning_rate=0.02, local_epochs=30, batch_size=128)


def sources() -> dict[str, ClientSource]:
    """The populations, by name."""
    return {
        "synthetic-1": SyntheticPairs(1, 10),
        "synthetic-2": SyntheticPairs(2, 10),
        "nl2bash": Nl2BashSource(str(DATA / "nl2bash"), pairs=300),
        "stsb": StsbSource(str(DATA / "stsb"), pairs=300),
    }


def load(name: str, source: ClientSource, cache: Path | None) -> PairSet:
    """Every client's pairs of ``source``, featurised (from ``cache`` when there)."""
    path = None if cache is None else cache / f"{name}.npz"
    if path is not None and path.exists():
        return PairSet.load(path)
    task = SemanticHitTask()
    pairs = PairSet.concatenate(
        [task.load_local(source.records(c)) for c in range(len(source.names()))]
    )
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        pairs.save(path)
    return pairs


def _columns(pairs: PairSet, columns: list[int]) -> PairSet:
    return PairSet(pairs.features[:, columns], pairs.labels)


def _precision_at_recall(scores: np.ndarray, labels: np.ndarray, recall: float) -> float:
    precision, recalls, _ = pr_curve(scores, labels, points=401)
    reaching = recalls >= recall
    return float(precision[reaching].max()) if reaching.any() else float("nan")


def judge(train_on: PairSet, judged: PairSet) -> dict[str, dict[str, float]]:
    """The three decisions fitted or tuned on ``train_on``, measured on ``judged``."""
    rows: dict[str, dict[str, float]] = {}
    for name, columns in (("learned", list(range(NUM_FEATURES))), ("cosine-only", [COSINE])):
        params = train(init_classifier(len(columns), 0, 0), _columns(train_on, columns), FIT)[0]
        scores = probabilities(params, _columns(judged, columns).features)
        rows[name] = decision_metrics(scores, judged.labels, THRESHOLD)
        rows[name]["p_at_r60"] = _precision_at_recall(scores, judged.labels, 0.6)
    threshold = threshold_for_precision(train_on.features[:, COSINE], train_on.labels)
    cosine = judged.features[:, COSINE]
    rows["baseline"] = decision_metrics(cosine, judged.labels, threshold)
    rows["baseline"]["p_at_r60"] = _precision_at_recall(cosine, judged.labels, 0.6)
    rows["baseline"]["threshold"] = threshold
    return rows


SPLITS = (
    (("synthetic-1",), "synthetic-2"),
    (("synthetic-1",), "nl2bash"),
    (("synthetic-1",), "stsb"),
    (("synthetic-1", "nl2bash"), "stsb"),
    (("synthetic-1", "stsb"), "nl2bash"),
)


def main() -> int:
    """Featurise, fit, judge every split; print a Markdown table (and JSON to --out)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cache", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    populations = {name: load(name, s, args.cache) for name, s in sources().items()}
    results: list[dict[str, Any]] = []
    print("| trained on | judged on | decision | precision | recall | F0.5 | best P at R>=0.6 |")
    print("|---|---|---|---|---|---|---|")
    for train_names, judged_name in SPLITS:
        train_on = PairSet.concatenate([populations[n] for n in train_names])
        rows = judge(train_on, populations[judged_name])
        for decision, m in rows.items():
            label = decision
            if decision == "baseline":
                label = f"MiniLM cosine >= {m['threshold']:.3f}"
            print(
                f"| {' + '.join(train_names)} | {judged_name} | {label} | {m['precision']:.3f} "
                f"| {m['recall']:.3f} | {m['f05']:.3f} | {m['p_at_r60']:.3f} |"
            )
        results.append({"trained_on": train_names, "judged_on": judged_name, **rows})
    sizes = {n: [len(p), float(p.labels.mean())] for n, p in populations.items()}
    print("pairs and share of paraphrases:", json.dumps(sizes))
    if args.out is not None:
        args.out.write_text(json.dumps({"sizes": sizes, "results": results}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
