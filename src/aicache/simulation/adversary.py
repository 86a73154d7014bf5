"""Adversarial clients for robustness experiments (simulation only)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from flwr.app import Context, Message
from flwr.clientapp.typing import ClientAppCallable
from flwr.common.secure_aggregation.secaggplus_constants import RECORD_KEY_CONFIGS, Key, Stage

ATTACKS = ("nan", "scale", "sign-flip")


@dataclass(frozen=True, slots=True)
class Adversary:
    """Clients ``0 .. count-1`` send a corrupted model instead of their real one.

    Attributes
    ----------
    count
        How many clients are adversarial.
    attack
        ``nan`` (non-finite values), ``scale`` (the model times 1000) or
        ``sign-flip`` (the model negated).
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
        if self.attack == "nan":
            return [np.full_like(p, np.nan) for p in params]
        if self.attack == "scale":
            return [p * 1000.0 for p in params]
        return [-p for p in params]


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
