"""The bug-detector task: which token of a developer's Python code looks like a slip.

Self-supervised in the line of DeepBugs (Pradel & Sen 2018) and BugLab
(Allamanis et al. 2021): every site of the developer's own code (an
operator, a bound, a variable, an argument order...; :mod:`.sites`) is a
set of buggy/correct pairs, the written token against each mutation of it,
and the model (:mod:`.model`) learns to pick the written one. Code never
leaves the machine: a client's examples are hashed feature indices, and only
the model's weights are shared.

Evaluation plants one mutation per held-out site and asks whether the model
flags it: ``detection_auc`` is the chance that a planted bug scores above a
site as written, ``recall`` and ``false_alarms`` are the shares of planted
bugs and of clean sites scoring above :data:`.detector.THRESHOLD`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
from numpy.typing import NDArray

from aicache.tasks.base import FitConfig, FitResult, Params, Task, check_params
from aicache.tasks.bug_detector.detector import THRESHOLD, Finding, scan_source
from aicache.tasks.bug_detector.model import (
    DIMENSION,
    SiteSet,
    log_softmax,
    loss_and_grad,
    row_scores,
    site_scores,
    train,
)
from aicache.tasks.bug_detector.sites import iter_sites
from aicache.tasks.bug_detector.sources import CodeFile

TASK_NAME = "bug-detector"
MIN_DECAY = 1e-3
"""The least weight decay a fit applies: a hashed feature seen in one file would otherwise
take a large weight, and a developer's code is small (federated settings send none)."""


@dataclass(frozen=True, slots=True)
class ScanContext:
    """Python source to scan, and the name its findings are reported under."""

    source: str
    path: str = "<code>"


def planted_scores(
    weights: NDArray[np.float64], sites: SiteSet
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """The finding scores of every site as written, and of one planted mutation per site.

    The mutation of site ``i`` is its alternative ``1 + i mod (k - 1)`` (of
    ``k`` tokens): deterministic, and spread over the alternatives. With it
    written, the site's score is the best other token's score (the written
    one included) minus the mutation's.
    """
    clean, _ = site_scores(weights, sites)
    scores = row_scores(weights, sites)
    starts = sites.site_ptr[:-1]
    sizes = np.diff(sites.site_ptr)
    mutant = starts + 1 + np.arange(len(sites)) % np.maximum(sizes - 1, 1)
    others = scores.copy()
    others[mutant] = -np.inf
    best = np.maximum.reduceat(others, starts)
    return clean, np.asarray(best - scores[mutant])


def auc(positives: NDArray[np.float64], negatives: NDArray[np.float64]) -> float:
    """The chance that a positive scores above a negative (ties count half)."""
    if positives.size == 0 or negatives.size == 0:
        return 0.5
    values = np.concatenate([positives, negatives])
    order = np.argsort(values, kind="stable")
    ranks = np.empty(values.size)
    ranks[order] = np.arange(1, values.size + 1, dtype=np.float64)
    _, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
    ranks = (np.bincount(inverse, weights=ranks) / counts)[inverse]
    top = float(ranks[: positives.size].sum())
    return (top - positives.size * (positives.size + 1) / 2) / (positives.size * negatives.size)


class BugDetectorTask(Task[Sequence[CodeFile], SiteSet, ScanContext, tuple[str, float]]):
    """Single-token bugs in Python code (task ``bug-detector``)."""

    name = TASK_NAME
    max_examples = 1_000_000  # sites: a large project has a few hundred thousand

    def init_params(self, seed: int) -> Params:
        """A fresh model ``[w (DIMENSION,)]``: zero, every token alike (seeded for the contract)."""
        del seed  # a linear softmax has no symmetry to break
        return [np.zeros(DIMENSION)]

    def load_local(self, source: Sequence[CodeFile]) -> SiteSet:
        """The sites of every file of ``source`` that parses, in file order."""
        return SiteSet.from_sites(list(iter_sites([f.text for f in source])))

    def num_examples(self, examples: SiteSet) -> int:
        """Every site is trained on."""
        return len(examples)

    def fit(self, params: Params, examples: SiteSet, config: FitConfig) -> FitResult:
        """Train with the shared Adam on the sites' cross-entropy."""
        check_params(params, self.init_params(0))
        if not len(examples):
            start = [np.array(p, dtype=np.float64) for p in params]
            return FitResult(start, 0, {"loss_before": 0.0, "loss": 0.0})
        before = loss_and_grad(params, examples, need_grad=False)[0]
        decayed = replace(config, weight_decay=max(config.weight_decay, MIN_DECAY))
        new_params, loss = train(params, examples, decayed)
        metrics = {"loss_before": before, "loss": loss if np.isfinite(loss) else before}
        return FitResult(params=new_params, num_examples=len(examples), metrics=metrics)

    def evaluate(self, params: Params, examples: SiteSet) -> dict[str, float]:
        """Cloze accuracy, and detection of one planted mutation per site.

        Returns
        -------
        dict
            ``detection_auc``, ``recall`` and ``false_alarms`` at the
            threshold, ``accuracy`` (the written token scores highest),
            ``loss`` and ``num_examples``.
        """
        check_params(params, self.init_params(0))
        if not len(examples):
            names = ("detection_auc", "recall", "false_alarms", "accuracy", "loss")
            return {**dict.fromkeys(names, 0.0), "num_examples": 0.0}
        weights = params[0]
        clean, planted = planted_scores(weights, examples)
        log_p = log_softmax(row_scores(weights, examples), examples)
        best = np.maximum.reduceat(log_p, examples.site_ptr[:-1])
        return {
            "detection_auc": auc(planted, clean),
            "recall": float(np.mean(planted > THRESHOLD)),
            "false_alarms": float(np.mean(clean > THRESHOLD)),
            "accuracy": float(np.mean(log_p[examples.site_ptr[:-1]] >= best)),
            "loss": loss_and_grad(params, examples, need_grad=False)[0],
            "num_examples": float(len(examples)),
        }

    def predict(self, params: Params, context: ScanContext) -> list[tuple[str, float]]:
        """Every site of ``context`` as ``"path:line:col kind: suggestion"``, with its score.

        Best first: the likeliest slip leads.
        """
        check_params(params, self.init_params(0))
        findings: list[Finding] = scan_source(params[0], context.source, threshold=None)
        return [
            (f"{context.path}:{f.line}:{f.column + 1} {f.kind}: {f.replacement}", f.score)
            for f in findings
        ]
