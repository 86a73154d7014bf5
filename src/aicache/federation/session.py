"""One registered run from its start to its end, shared by simulation and deployment.

A session begins a run in the registry (a new one, a warm start from the
task's newest version, or the resumption of an interrupted one), or attaches
to one another process began (the deployed ServerApp opens its run by id).
It reads what earlier runs spent on the same federation, makes the
:class:`~aicache.federation.server_app.RunObserver` that registers each
round, checks the budget before the first round, and finishes the run:
``finished`` with its notes, or ``failed`` with a :class:`RunEnded` that each
caller turns into its own message.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from aicache.errors import AicacheError
from aicache.federation.plan import TrainingPlan
from aicache.federation.server_app import BudgetReached, RoundReport, RunObserver
from aicache.privacy.accounting import RunSpend
from aicache.privacy.central import DpPlan
from aicache.registry import ModelRegistry, ModelVersion
from aicache.registry.model_registry import RunRecord
from aicache.tasks.base import ensure_compatible, get_task
from aicache.tasks.spec import Aggregation, get_spec


class Resume(enum.Enum):
    """Which earlier run a session resumes."""

    INTERRUPTED = "interrupted"
    """The newest run still marked running on the same federation (its process died):
    it continues after its last registered round, from that round's model."""
    UNFINISHED = "unfinished"
    """The newest run that is running or failed (a deployed ServerApp went away or
    failed): it is marked running again and its plan submitted as it was."""


class Ending(enum.Enum):
    """Why a run ended without finishing."""

    FAILED = "failed"
    """A round produced no valid aggregate (the observer kept the error)."""
    NO_ROUND = "no-round"
    """The privacy budget allowed not even the first round."""
    ENDED_EARLY = "ended-early"
    """Fewer rounds than planned ran, and no budget stopped them."""


class RunEnded(Exception):
    """The run ended without finishing; it is recorded as failed in the registry.

    Attributes
    ----------
    ending
        Why.
    reason
        What the registry records (the error, or the budget's verdict).
    rounds
        How many rounds this session ran.
    planned
        How many it was to run.
    """

    def __init__(self, ending: Ending, reason: str, *, rounds: int, planned: int) -> None:
        super().__init__(reason)
        self.ending = ending
        self.reason = reason
        self.rounds = rounds
        self.planned = planned


@dataclass(frozen=True, slots=True)
class Resumption:
    """A run to resume, and the rule that found it (which says how it resumes)."""

    record: RunRecord
    rule: Resume


def starting_point(
    registry: ModelRegistry, record: RunRecord
) -> tuple[TrainingPlan, list[np.ndarray], int | None]:
    """Where a registered run starts (again): its plan after its last registered round,
    that round's model (or the parent's, or a fresh one), and that version's number."""
    done = registry.run_versions(record.run_id)
    plan = TrainingPlan.from_dict(
        {**record.spec["plan"], "start_round": done[-1].round if done else 0}
    )
    if done:
        return plan, registry.load(done[-1]), done[-1].version
    parent = record.spec.get("parent")
    if parent:
        return plan, registry.load(registry.resolve(plan.task, str(parent))), int(parent)
    return plan, get_task(plan.task).init_params(plan.seed), None


def prior_spends(
    registry: ModelRegistry, task: str, federation: str, run_id: str
) -> list[RunSpend]:
    """What runs other than ``run_id`` spent on ``federation``'s data for ``task``."""
    return [
        DpPlan.from_dict(row["spend"]).spend(row["rounds"])
        for row in registry.ledger(task, federation)
        if row["run_id"] != run_id
    ]


def _resumable(registry: ModelRegistry, task: str, federation: str, rule: Resume) -> RunRecord:
    """The run ``rule`` resumes, or an error naming why there is none."""
    if rule is Resume.INTERRUPTED:
        record = registry.unfinished_run(task)
    else:
        record = registry.resumable_run(task)
    if record is None:
        raise AicacheError(
            f"no interrupted run of {task} to resume in {registry.root}",
            hint="Start a new run without --resume.",
        )
    if rule is Resume.INTERRUPTED and record.spec.get("federation") != federation:
        raise AicacheError(
            f"the interrupted run trained on {record.spec.get('federation')!r}, "
            f"not on {federation!r}",
            hint="Resume with the same --data, --clients and --seed as the run had.",
        )
    return record


@dataclass(kw_only=True)
class RunSession:
    """One run of the registry, from its beginning (or resumption) to its end.

    Make one with :meth:`begin` (after :meth:`resumable` to resume), or :meth:`attach`.

    Attributes
    ----------
    registry_root
        The model registry's directory.
    run_id
        The registry's run.
    plan
        The run's plan (``start_round``: the rounds an earlier process already did).
    federation
        The population whose privacy the ledger tracks.
    initial
        The model the rounds start from.
    parent
        That model's version, if it is one.
    prior
        What other runs spent on the same federation and task.
    resumed_after
        The last round registered before this session (0 for a new run).
    noun
        How the registry's messages name the run (``the run``, ``the simulation``).
    observer
        The observer of the rounds, once :meth:`observe` made it.
    """

    registry_root: Path
    run_id: str
    plan: TrainingPlan
    federation: str
    initial: list[np.ndarray]
    parent: int | None
    prior: list[RunSpend] = field(default_factory=list)
    resumed_after: int = 0
    noun: str = "the run"
    observer: RunObserver | None = None

    @staticmethod
    def resumable(*, registry_root: Path, task: str, federation: str, rule: Resume) -> Resumption:
        """The run a resumption under ``rule`` would continue.

        Raises
        ------
        AicacheError
            If there is none, or (``INTERRUPTED``) it ran on another federation.
        """
        with ModelRegistry(registry_root) as registry:
            return Resumption(_resumable(registry, task, federation, rule), rule)

    @classmethod
    def begin(
        cls,
        *,
        registry_root: Path,
        plan: TrainingPlan,
        federation: str,
        resuming: Resumption | None = None,
        warm_start: bool = False,
        members: list[str] | None = None,
        noun: str = "the run",
    ) -> RunSession:
        """Start a new run of ``plan`` in the registry, or resume ``resuming``.

        A new run starts from the task's newest version with ``warm_start``
        (else from fresh parameters); ``members`` (who trained it) is kept in
        its spec when given, so that ``evaluate`` can warn about scoring them
        again. A resumed run keeps its own plan (see :class:`Resume`).

        Raises
        ------
        AicacheError
            If the starting model does not fit the task as this version defines it.
        """
        with ModelRegistry(registry_root) as registry:
            if resuming is None:
                # A summed task's version holds the counts (and noise) of its own run,
                # and its privacy record speaks of that run's rounds only: adding a new
                # run's counts to it would misstate both. It starts from zero each run.
                summed = get_spec(plan.task).aggregation is Aggregation.SUM
                latest = registry.latest(plan.task) if warm_start and not summed else None
                initial = (
                    registry.load(latest) if latest else get_task(plan.task).init_params(plan.seed)
                )
                parent = latest.version if latest else None
                ensure_compatible(plan.task, initial)
                spec: dict[str, Any] = {
                    "plan": plan.as_dict(),
                    "federation": federation,
                    "parent": parent,
                }
                if members is not None:
                    spec["members"] = members
                run_id = registry.start_run(plan.task, spec)
                resumed_after = 0
            elif resuming.rule is Resume.INTERRUPTED:
                run_id = resuming.record.run_id
                plan, initial, parent = starting_point(registry, resuming.record)
                resumed_after = plan.start_round
            else:
                run_id = resuming.record.run_id
                plan = TrainingPlan.from_dict(resuming.record.spec["plan"])
                _, initial, parent = starting_point(registry, resuming.record)
                done = registry.run_versions(run_id)
                resumed_after = done[-1].round if done else 0
                registry.reopen_run(run_id)
            prior = prior_spends(registry, plan.task, federation, run_id)
        return cls(
            registry_root=registry_root,
            run_id=run_id,
            plan=plan,
            federation=federation,
            initial=initial,
            parent=parent,
            prior=prior,
            resumed_after=resumed_after,
            noun=noun,
        )

    @classmethod
    def attach(
        cls, *, registry_root: Path, run_id: str, federation: str, noun: str = "the run"
    ) -> RunSession:
        """Open the registered run ``run_id`` where its last registered round left it."""
        with ModelRegistry(registry_root) as registry:
            plan, initial, parent = starting_point(registry, registry.run(run_id))
            prior = prior_spends(registry, plan.task, federation, run_id)
        return cls(
            registry_root=registry_root,
            run_id=run_id,
            plan=plan,
            federation=federation,
            initial=initial,
            parent=parent,
            prior=prior,
            resumed_after=plan.start_round,
            noun=noun,
        )

    def observe(self, *, on_round: Callable[[RoundReport], None] | None = None) -> RunObserver:
        """The observer that registers each round of this run."""
        self.observer = RunObserver(
            registry_root=self.registry_root,
            run_id=self.run_id,
            plan=self.plan,
            federation=self.federation,
            prior=self.prior,
            parent=self.parent,
            on_round=on_round,
        )
        return self.observer

    def fail(self, message: str) -> None:
        """Record the run as failed with ``message`` (something outside the rounds failed)."""
        with ModelRegistry(self.registry_root) as registry:
            registry.finish_run(self.run_id, "failed", message)

    def check_budget(self) -> None:
        """Refuse to train when the budget allows not even the first round.

        Raises
        ------
        RunEnded
            ``NO_ROUND``, with the run recorded as failed.
        """
        observer = self._observer()
        try:
            observer.check_budget(observer.plan.start_round + 1)
        except (BudgetReached, ValueError) as stop:
            self.fail(str(stop))
            raise RunEnded(Ending.NO_ROUND, str(stop), rounds=0, planned=self._planned()) from stop

    def finish(
        self,
        *,
        deliver: Callable[[], list[str]] | None = None,
        no_round_fails: bool = True,
    ) -> list[ModelVersion]:
        """End the run after its rounds: every version it registered, oldest first.

        ``deliver`` runs once the rounds are known to be sound, before the run
        is called finished (whoever follows it sees the delivery done); its
        notes join the budget's in the run's message. With ``no_round_fails``
        a budget that stopped the run before its first round fails it.

        Raises
        ------
        RunEnded
            If a round failed, the budget allowed no round, or the rounds
            ended early: the run is recorded as failed.
        """
        observer = self._observer()
        done, planned = len(observer.rounds), self._planned()
        ended: RunEnded | None = None
        if observer.error is not None:
            ended = RunEnded(Ending.FAILED, str(observer.error), rounds=done, planned=planned)
        elif no_round_fails and observer.stopped is not None and not observer.rounds:
            ended = RunEnded(Ending.NO_ROUND, observer.stopped, rounds=done, planned=planned)
        elif observer.stopped is None and done != planned:
            ended = RunEnded(
                Ending.ENDED_EARLY, f"{self.noun} ended early", rounds=done, planned=planned
            )
        if ended is not None:
            self.fail(ended.reason)
            raise ended from observer.error
        notes = [observer.stopped] if observer.stopped else []
        if deliver is not None:
            notes.extend(deliver())
        with ModelRegistry(self.registry_root) as registry:
            registry.finish_run(self.run_id, "finished", "; ".join(notes) or None)
            return registry.run_versions(self.run_id)

    def _planned(self) -> int:
        plan = self._observer().plan
        return plan.rounds - plan.start_round

    def _observer(self) -> RunObserver:
        if self.observer is None:
            raise RuntimeError("the session has no observer: call observe() first")
        return self.observer


def registered_rounds(versions: list[ModelVersion], *, before: int) -> list[RoundReport]:
    """The rounds before round ``before`` as the registry recorded them.

    Rejected updates and a round's duration are not registered: they read as
    none and NaN.
    """
    eval_prefix = "eval."
    reports = []
    for version in versions:
        if version.round >= before:
            break
        reports.append(
            RoundReport(
                round=version.round,
                seconds=float("nan"),
                accepted=version.num_clients,
                rejected=(),
                train_metrics={
                    k: v for k, v in version.metrics.items() if not k.startswith(eval_prefix)
                },
                evaluate_metrics={
                    k.removeprefix(eval_prefix): v
                    for k, v in version.metrics.items()
                    if k.startswith(eval_prefix)
                },
                version=version.version,
                epsilon=version.privacy.get("federation_epsilon"),
            )
        )
    return reports
