"""What a federated run does: the task, rounds, strategy, client selection, local training."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from flwr.app import ConfigRecord

from aicache.federation.local_dp import LOCAL_DP_CLIP, LOCAL_DP_STD
from aicache.federation.strategies import Selection, StrategySpec
from aicache.privacy.central import DpPlan
from aicache.privacy.combinations import refuse_plan
from aicache.privacy.modes import SECURE_AGGREGATIONS, SecureAggregation, SecureMode, secure_mode
from aicache.privacy.secure import SecAggSettings
from aicache.tasks.base import FitConfig

# One set of training defaults: the task layer's.
_FIT = FitConfig()


@dataclass(frozen=True, slots=True)
class TrainingPlan:
    """Everything the ServerApp needs to run a task's rounds.

    Attributes
    ----------
    task
        The registered task to train.
    rounds
        Rounds in the whole run.
    start_round
        Rounds already done (when a run is resumed).
    strategy, selection
        How updates are aggregated and how clients are chosen.
    learning_rate, local_epochs, batch_size
        Local training on each client.
    seed
        Seeds initial parameters, client sampling and local training.
    max_update_norm
        Updates whose L2 norm exceeds this are rejected (0 turns the check off).
    round_timeout
        Seconds the server waits for replies in a round.
    final_evaluation
        Ask every client, after the last round, for the report's arms
        (the global, a personalised and a local-only model on its own test split).
    personalize_epochs, personalize_learning_rate, local_only_epochs
        Local training of those two arms (fine-tuning takes small steps).
    dp
        Differential privacy of the run.
    secure, secagg
        Secure aggregation (``off``, ``secagg`` or ``he``) and its SecAgg+ settings.
    evaluate_every
        Evaluate the global model every this many rounds (and after the last).
    """

    task: str
    rounds: int
    start_round: int = 0
    strategy: StrategySpec = field(default_factory=StrategySpec)
    selection: Selection = field(default_factory=Selection)
    learning_rate: float = _FIT.learning_rate
    local_epochs: int = _FIT.local_epochs
    batch_size: int = _FIT.batch_size
    seed: int = 0
    max_update_norm: float = 100.0
    round_timeout: float = 600.0
    final_evaluation: bool = True
    personalize_epochs: int = 3
    personalize_learning_rate: float = 0.003
    local_only_epochs: int = 10
    dp: DpPlan = field(default_factory=DpPlan)
    secure: str = SecureMode.OFF  # a SecureMode once built (its name is accepted)
    secagg: SecAggSettings = field(default_factory=SecAggSettings)
    evaluate_every: int = 1

    def __post_init__(self) -> None:
        for name in ("learning_rate", "max_update_norm", "round_timeout"):
            # Every comparison with NaN is false: it would pass the range checks below.
            if not math.isfinite(getattr(self, name)):
                raise ValueError(f"invalid {name.replace('_', ' ')} {getattr(self, name)}")
        if self.rounds < 1:
            raise ValueError(f"invalid number of rounds {self.rounds}: it must be at least 1")
        if not 0 <= self.start_round <= self.rounds:
            raise ValueError(f"invalid start round {self.start_round} for {self.rounds} rounds")
        if self.learning_rate <= 0 or self.local_epochs < 1 or self.batch_size < 1:
            raise ValueError("learning rate > 0, local epochs >= 1 and batch size >= 1 are needed")
        if self.evaluate_every < 1:
            raise ValueError(f"invalid evaluation interval {self.evaluate_every}: it must be >= 1")
        if self.max_update_norm < 0:
            raise ValueError(f"invalid update norm bound {self.max_update_norm}: it must be >= 0")
        object.__setattr__(self, "secure", secure_mode(self.secure))
        refuse_plan(
            dp=self.dp,
            secure=secure_mode(self.secure),
            strategy=self.strategy.name,
            min_clients=self.selection.min_clients,
            max_update_norm=self.max_update_norm,
        )

    @property
    def secure_aggregation(self) -> SecureAggregation:
        """The registered secure-aggregation mode this plan runs."""
        return SECURE_AGGREGATIONS[secure_mode(self.secure)]

    def train_config(self) -> ConfigRecord:
        """The settings every client receives with the model."""
        config = ConfigRecord(
            {
                "task": self.task,
                "learning-rate": self.learning_rate,
                "local-epochs": self.local_epochs,
                "batch-size": self.batch_size,
                "seed": self.seed,
                "round-offset": self.start_round,
            }
        )
        # A client's own noise (local DP, or its share of distributed DP before it
        # encrypts) goes through the local-DP client mod; SecAgg+ carries its own.
        noise = self.dp.mechanism.client_noise(self.dp)
        if noise is not None and self.secure_aggregation.client_noise_in_config:
            config.update({LOCAL_DP_CLIP: noise.clip, LOCAL_DP_STD: noise.std})
        return config

    def evaluate_config(self, *, final: bool = False) -> ConfigRecord:
        """The settings of an evaluation request."""
        config = self.train_config()
        config["final"] = int(final)
        config["personalize-epochs"] = self.personalize_epochs
        config["personalize-learning-rate"] = self.personalize_learning_rate
        config["local-only-epochs"] = self.local_only_epochs
        return config

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready form (kept with the run in the registry)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainingPlan:
        """Rebuild a plan from :meth:`as_dict`."""
        values = dict(data)
        values["strategy"] = StrategySpec(**values["strategy"])
        values["selection"] = Selection(**values["selection"])
        values["dp"] = DpPlan.from_dict(values["dp"]) if "dp" in values else DpPlan()
        values["secagg"] = SecAggSettings(**values.get("secagg", {}))
        return cls(**values)
