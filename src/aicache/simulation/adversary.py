"""Adversarial clients for robustness experiments (simulation only)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from flwr.app import Context, Message
from flwr.clientapp.typing import ClientAppCallable
from flwr.common.secure_aggregation.secaggplus_constants import RECORD_KEY_CONFIGS, Key, Stage

from aicache.tasks.spec import get_spec

ATTACKS = ("nan", "scale", "sign-flip", "vanish")
BOUNDED_ATTACKS = ("sign-flip", "scale", "label-flip")


@dataclass(frozen=True, slots=True)
class Adversary:
    """Clients ``0 .. count-1`` send a corrupted model instead of their real one.

    Attributes
    ----------
    count
        How many clients are adversarial.
    attack
        ``nan`` (non-finite values), ``scale`` (the model times 1000),
        ``sign-flip`` (the model negated) or ``vanish`` (the client trains, then
        fails before it replies: a dropout in the middle of a plain round).
    """

    count: int
    attack: str = "nan"

    def __post_init__(self) -> None:
        if self.count < 0:
            raise ValueError(f"invalid number of adversarial clients {self.count}")
        if self.attack not in ATTACKS:
            raise ValueError(f"unknown attack {self.attack!r}: choose one of {', '.join(ATTACKS)}")

    def __call__(self, client: int, params: list[Any]) -> list[Any]:
        """The parameters ``client`` sends."""
        if client >= self.count:
            return params
        if self.attack == "vanish":
            raise ConnectionAbortedError(f"client {client} dropped out (simulated)")
        if self.attack == "nan":
            return [np.full_like(p, np.nan) for p in params]
        if self.attack == "scale":
            return [p * 1000.0 for p in params]
        return [-p for p in params]


def update_norm(update: list[np.ndarray]) -> float:
    """The L2 norm of a whole update (every array together), as validation measures it."""
    return float(np.sqrt(sum(float(np.sum(np.square(u, dtype=np.float64))) for u in update)))


@dataclass(frozen=True, slots=True)
class BoundedAttack:
    """A poisoning attack that stays under the server's update norm bound.

    An update the bound rejects never reaches the aggregation rule; these
    attacks are built to be accepted, so that they test the rule itself.

    Attributes
    ----------
    attack
        ``sign-flip`` (the honest update reversed), ``scale`` (the honest update
        boosted) or ``label-flip`` (trained on answers moved to wrong ones by the
        task's spec, sent as trained).
    margin
        Sign-flip and scale stretch the update to this share of the bound.
    """

    attack: str
    margin: float = 0.95

    def __post_init__(self) -> None:
        if self.attack not in BOUNDED_ATTACKS:
            raise ValueError(
                f"unknown attack {self.attack!r}: choose one of {', '.join(BOUNDED_ATTACKS)}"
            )
        if not 0 < self.margin < 1:
            raise ValueError(f"invalid margin {self.margin}: it must be in (0, 1)")

    def training_data(self, examples: Any, *, task: str) -> Any:
        """What the attacker trains on: ``examples`` of ``task``, labels flipped by the task.

        Raises
        ------
        ValueError
            If the attack flips labels and the task's examples carry none.
        """
        if self.attack != "label-flip":
            return examples
        flip = get_spec(task).attacks.label_flipped
        if flip is None:
            raise ValueError(f"task {task} has no answers to flip: label-flip does not apply")
        return flip(examples)

    def update(self, honest: list[np.ndarray], bound: float) -> list[np.ndarray]:
        """The update sent in place of ``honest`` (the trained model minus the global one).

        Label-flip sends its trained update, shrunk only if it would exceed the
        bound; the others point along (sign-flip: against) the honest update
        with a norm of ``margin`` times the bound.
        """
        norm = update_norm(honest)
        if norm == 0:
            return [np.array(u, dtype=np.float64) for u in honest]
        target = self.margin * bound
        if self.attack == "label-flip":
            factor = min(1.0, target / norm)
        else:
            factor = (-1.0 if self.attack == "sign-flip" else 1.0) * target / norm
        return [np.asarray(u, dtype=np.float64) * factor for u in honest]


@dataclass(frozen=True, slots=True)
class Dropout:
    """A ClientApp mod: clients ``0 .. count-1`` vanish after SecAgg+'s key sharing.

    They answer the setup and key-sharing stages, then fail the masked-vector
    stage, as a laptop closed mid-round would: the server must rebuild their
    masks from the shares their neighbours hold.
    """

    count: int

    def __call__(self, message: Message, context: Context, call_next: ClientAppCallable) -> Message:
        """Fail the masked-vector stage for the dropped clients, pass everything else on."""
        client = context.node_config.get("partition-id", -1)
        configs = message.content.config_records.get(RECORD_KEY_CONFIGS)
        stage = configs.get(Key.STAGE) if configs is not None else None
        if (
            isinstance(client, int)
            and client < self.count
            and stage == Stage.COLLECT_MASKED_VECTORS
        ):
            raise ConnectionAbortedError(f"client {client} dropped out (simulated)")
        return call_next(message, context)
