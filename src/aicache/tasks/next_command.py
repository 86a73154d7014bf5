"""The next-command task: rank candidate programs from the user's own history.

The model never sees a command name: it learns how much to trust each
feature of :mod:`aicache.features.next_command` (recency, frequency, the
user's own transition statistics, directory, session, failures, the public
vocabulary prior). Its parameters are a few hundred floats, shareable across
users; the names it predicts come from the user's own (local) history or
from the public vocabulary.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from aicache.features.candidates import CandidateSet
from aicache.features.history_items import HistoryItem, items_from_store
from aicache.features.next_command import (
    NUM_FEATURES,
    CandidateConfig,
    HistoryState,
    extract_candidates,
)
from aicache.features.vocabulary import PUBLIC_VOCABULARY
from aicache.tasks.base import FitConfig, FitResult, Params, Task, check_params, register_task
from aicache.tasks.ranking import (
    init_ranker,
    loss_and_grad,
    rank_candidates,
    target_ranks,
    train,
    trainable,
)

NextCommandSource = Sequence[HistoryItem] | sqlite3.Connection
"""A client's history: items in typed order, or the private store to read them from."""

DEFAULT_HIDDEN = 16
TOP_K = (1, 3, 5)


@dataclass(frozen=True, slots=True)
class NextCommandContext:
    """What the shell knows when it asks for suggestions.

    Attributes
    ----------
    history
        The user's commands so far, in typed order (may be empty).
    session
        The current session, when known.
    dir_hash
        The hash of the current directory, when known.
    k
        How many suggestions to return.
    """

    history: Sequence[HistoryItem] = field(default_factory=tuple)
    session: int | None = None
    dir_hash: str | None = None
    k: int = 3


class NextCommandTask(Task[NextCommandSource, CandidateSet, NextCommandContext, str]):
    """Next-command prediction as a candidate ranker (task ``next-command``).

    Parameters
    ----------
    hidden
        Hidden units of the ranker (0 for a linear model).
    candidates
        Candidate-set sizes.
    use_context
        Whether features use the session and directory of the moment of prediction.
    """

    name = "next-command"

    def __init__(
        self,
        hidden: int = DEFAULT_HIDDEN,
        candidates: CandidateConfig | None = None,
        use_context: bool = True,
    ) -> None:
        self.hidden = hidden
        self.candidates = candidates or CandidateConfig()
        self.use_context = use_context

    def init_params(self, seed: int) -> Params:
        """A fresh ranker: ``[w (F,), W (F, H), b (H,), v (H,)]``."""
        return init_ranker(NUM_FEATURES, self.hidden, seed)

    def load_local(self, source: NextCommandSource) -> CandidateSet:
        """Candidate features at every point of the client's history.

        Parameters
        ----------
        source
            History items in typed order, or an open connection to the store
            (every imported source's commands are read).
        """
        items = items_from_store(source) if isinstance(source, sqlite3.Connection) else source
        return extract_candidates(items, config=self.candidates, use_context=self.use_context)

    def num_examples(self, examples: CandidateSet) -> int:
        """Prediction points whose answer is among the candidates (what fit trains on)."""
        return int(np.count_nonzero(examples.targets >= 0))

    def fit(self, params: Params, examples: CandidateSet, config: FitConfig) -> FitResult:
        """Train with Adam on softmax cross-entropy over each point's candidates.

        Returns
        -------
        FitResult
            New parameters, the number of points trained on, and the mean
            training loss before and in the last epoch (both 0 when there was
            nothing to train on).
        """
        check_params(params, self.init_params(0))
        data = trainable(examples)
        if not len(data):  # nothing to learn from: the global params, unchanged
            params = [np.array(p, dtype=np.float64) for p in params]
            return FitResult(
                params=params, num_examples=0, metrics={"loss_before": 0.0, "loss": 0.0}
            )
        before = loss_and_grad(params, data, need_grad=False)[0]
        new_params, loss = train(params, data, config)
        metrics = {"loss_before": before, "loss": loss if np.isfinite(loss) else before}
        return FitResult(params=new_params, num_examples=len(data), metrics=metrics)

    def evaluate(self, params: Params, examples: CandidateSet) -> dict[str, float]:
        """Top-k accuracy over every point (absent answers count as misses) and loss.

        Returns
        -------
        dict
            ``top1``, ``top3``, ``top5``, ``coverage`` (share of points whose
            answer was a candidate), ``loss`` (over covered points) and
            ``num_examples``.
        """
        check_params(params, self.init_params(0))
        total = len(examples)
        ranks = target_ranks(params, examples)
        metrics = {f"top{k}": _share(ranks, k, total) for k in TOP_K}
        covered = ranks >= 0
        metrics["coverage"] = float(np.mean(covered)) if total else 0.0
        data = trainable(examples)
        metrics["loss"] = loss_and_grad(params, data, need_grad=False)[0] if len(data) else 0.0
        metrics["num_examples"] = float(total)
        return metrics

    def predict(self, params: Params, context: NextCommandContext) -> list[str]:
        """The ``k`` most likely next commands, best first.

        A program the user has run with subcommands is shown with the one
        they used most often in their last uses of it (``git status``). With
        an empty history the public vocabulary ranks the suggestions.
        """
        check_params(params, self.init_params(0))
        state = HistoryState(self.candidates)
        for item in context.history:
            state.update(item)
        ids, features = state.features(context.session, context.dir_hash)
        order = rank_candidates(params, features)
        programs = [state.names[int(ids[i])] for i in order[: context.k]]
        if len(programs) < context.k:
            programs += [p for p in PUBLIC_VOCABULARY if p not in programs]
            programs = programs[: context.k]
        return [_with_subcommand(program, context.history) for program in programs]


def _share(ranks: np.ndarray, k: int, total: int) -> float:
    return float(np.count_nonzero((ranks >= 0) & (ranks < k)) / total) if total else 0.0


def _with_subcommand(program: str, history: Sequence[HistoryItem], window: int = 20) -> str:
    """``program`` with its most used subcommand among its last ``window`` uses, if any."""
    uses: dict[str, int] = {}
    seen = 0
    for item in reversed(history):
        if item.program == program:
            uses[item.command] = uses.get(item.command, 0) + 1
            seen += 1
            if seen == window:
                break
    if not uses:
        return program
    return max(uses, key=lambda command: uses[command])


register_task(NextCommandTask.name)(NextCommandTask)
