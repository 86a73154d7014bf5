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
from aicache.tasks.base import FitConfig, FitResult, Params, Task, check_params
from aicache.tasks.history_baseline import TransitionCounts
from aicache.tasks.ranking import (
    init_ranker,
    loss_and_grad,
    scores,
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
        """The ``k`` most likely next commands (``program subcommand``), best first.

        The model's ranking of programs is blended with the user's own
        transitions between commands (:class:`TransitionCounts`): the more
        often the user has typed a command after the last one, the more their
        own habit weighs, so a habit like ``git add`` → ``git commit`` 22
        times out of 22 wins over anything the shared model says. A program is
        split into the subcommands the user ran it with in its last uses. With
        an empty history the public vocabulary ranks the suggestions.
        """
        check_params(params, self.init_params(0))
        state = HistoryState(self.candidates)
        for item in context.history:
            state.update(item)
        ids, features = state.features(context.session, context.dir_hash)
        score, _ = scores(params, features)
        model = _softmax(score)
        typed = _subcommand_shares(context.history)
        blended: dict[str, float] = {}
        for row in np.argsort(-score, kind="stable"):
            program = state.names[int(ids[row])]
            for command, share in typed.get(program, {program: 1.0}).items():
                blended[command] = blended.get(command, 0.0) + float(model[row]) * share
        if context.history:
            own = TransitionCounts(item.command for item in context.history)
            shares, seen = own.next_shares(context.history[-1].command)
            trust = seen / (seen + PERSONAL_PRIOR)
            for command in set(blended) | set(shares):
                mixed = (1 - trust) * blended.get(command, 0.0) + trust * shares.get(command, 0.0)
                blended[command] = mixed
        ranked = sorted(blended, key=lambda c: blended[c], reverse=True)[: context.k]
        if len(ranked) < context.k:
            ranked += [p for p in PUBLIC_VOCABULARY if p not in ranked][: context.k - len(ranked)]
        return ranked


# How many observed transitions count as much as the shared model: after n uses
# of a command, the user's own "what came next" weighs n / (n + PERSONAL_PRIOR).
PERSONAL_PRIOR = 3.0


def _softmax(score: np.ndarray) -> np.ndarray:
    if not score.size:
        return score
    shifted = np.exp(score - score.max())
    return np.asarray(shifted / shifted.sum())


def _share(ranks: np.ndarray, k: int, total: int) -> float:
    return float(np.count_nonzero((ranks >= 0) & (ranks < k)) / total) if total else 0.0


def _subcommand_shares(
    history: Sequence[HistoryItem], window: int = 20
) -> dict[str, dict[str, float]]:
    """How each program was typed in its last ``window`` uses (``git``: ``git status`` 0.6, ...).

    One pass from the newest command back; a program the user never ran is absent.
    """
    uses: dict[str, dict[str, int]] = {}
    seen: dict[str, int] = {}
    for item in reversed(history):
        count = seen.get(item.program, 0)
        if count == window:
            continue
        seen[item.program] = count + 1
        commands = uses.setdefault(item.program, {})
        commands[item.command] = commands.get(item.command, 0) + 1
    return {
        program: {command: n / seen[program] for command, n in commands.items()}
        for program, commands in uses.items()
    }
