"""What a federated run does: the task, rounds, strategy, client selection, local training."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from flwr.app import ConfigRecord

from aicache.federation.local_dp import local_dp_config
from aicache.federation.strategies import Selection, StrategySpec
from aicache.privacy.central import DpPlan
from aicache.privacy.secure import SECURE_MODES, SecAggSettings

# Strategies whose aggregate is the (unweighted, under DP) mean of the client models:
# one client moves it by at most 2C/m, which is what the noise is calibrated to.
DP_STRATEGIES = ("fedavg", "fedprox")


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
    learning_rate: float = 0.01
    local_epochs: int = 2
    batch_size: int = 128
    seed: int = 0
    max_update_norm: float = 100.0
    round_timeout: float = 600.0
    final_evaluation: bool = True
    personalize_epochs: int = 3
    personalize_learning_rate: float = 0.003
    local_only_epochs: int = 10
    dp: DpPlan = field(default_factory=DpPlan)
    secure: str = "off"
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
        if self.secure not in SECURE_MODES:
            raise ValueError(
                f"unknown secure mode {self.secure!r}: choose one of {', '.join(SECURE_MODES)}"
            )
        if self.secure == "he" and self.strategy.name != "fedavg":
            raise ValueError(
                "--secure he runs FedAvg: the server only adds ciphertexts, so median, Krum "
                "and the other rules that need each update in the clear do not apply"
            )
        if self.secure == "he" and self.dp.mode == "local":
            raise ValueError(
                "--secure he works with --dp off, central or distributed, not local: local DP "
                "is accounted for a server that sees each update, so under encryption, where it "
                "sees only the sum, use --dp distributed"
            )
        if self.secure == "secagg" and self.selection.min_clients < 2:
            raise ValueError("--secure secagg needs at least 2 clients a round (--min-clients)")
        if self.secure == "secagg" and (self.dp.mode == "local" or self.strategy.name != "fedavg"):
            raise ValueError(
                "--secure secagg runs FedAvg, with --dp off, central or distributed: its sum is "
                "all the server sees, so median, Krum and per-update (local) noise do not apply"
            )
        if self.secure != "off" and self.dp.mode == "central":
            self._check_secure_central()
        if self.dp.mode == "distributed" and self.secure == "off":
            raise ValueError(
                "--dp distributed needs --secure secagg or he: without masking or encryption "
                "the server would see each client's update with only its small share of the noise"
            )
        # Local DP noises each update on its client: any aggregation rule is then
        # post-processing, so only the modes that noise a sum need a mean.
        if self.dp.mode in ("central", "distributed") and self.strategy.name not in DP_STRATEGIES:
            raise ValueError(
                f"--dp {self.dp.mode} works with {' or '.join(DP_STRATEGIES)} only: the noise is "
                f"calibrated to a mean of clipped updates, and {self.strategy.name} is not one"
            )
        if self.dp.mode in ("central", "local") and 0 < self.max_update_norm < self.dp.clip:
            raise ValueError(
                f"the update norm bound {self.max_update_norm:g} is below the clipping norm "
                f"{self.dp.clip:g}: every clipped update could be rejected"
            )

    def _check_secure_central(self) -> None:
        # Under SecAgg+ or CKKS the server sees only the sum: the fixed divisor m that
        # central DP's noise is calibrated to is kept by counting a missing client as a
        # zero update, which needs a fixed-size sample; adaptive clipping would need each
        # client's clipped bit in the clear.
        if self.dp.sampling.kind != "fixed":
            raise ValueError(
                f"--dp central with --secure {self.secure} samples a fixed share of clients "
                "(--fraction), not Poisson (--sample-rate): the aggregate is the sum over a "
                "fixed count m"
            )
        if self.dp.adaptive:
            raise ValueError(
                f"--adaptive-clip is not available with --secure {self.secure}: it needs each "
                "client's clipped bit, which secure aggregation hides"
            )

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
        if self.dp.mode == "local":
            config.update(local_dp_config(self.dp.clip, self.dp.noise_multiplier))
        if self.dp.mode == "distributed" and self.secure == "he":
            # Each client clips and adds its share N(0, z²C²/m) before it encrypts
            # (the same client mod as local DP, with a share of the noise).
            share = self.dp.noise_multiplier / self.dp.sampling.size**0.5
            config.update(local_dp_config(self.dp.clip, share))
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
