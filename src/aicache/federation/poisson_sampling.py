"""Poisson client sampling for Flower's Message-API strategies.

Flower's strategies sample a fixed number of nodes. DP-FedAvg with Poisson
sampling (McMahan et al. 2018) instead includes every client independently
with probability ``q`` each round, so the number sampled varies and may be 0;
the accountant's ``PoissonSampledDpEvent`` (neighbours that add or remove one
client) is only valid if the server's output does not depend on that number.
The aggregate is therefore the sum of the clipped updates over the *fixed*
expected count ``qN`` (see ``ValidatedStrategy``'s ``expected_count``), with
noise ``z·C/(qN)``; a round that samples nobody releases the model plus that
noise alone, which is exactly the mechanism the accountant analysed (skipping
the round instead would reveal that the sample was empty).

:class:`PoissonSampling` wraps the strategy that aggregates and replaces only
its training sample; the draw uses the operating system's entropy, so nobody
can predict or replay who was sampled.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Iterable

from flwr.app import ArrayRecord, ConfigRecord, Message, MessageType, MetricRecord, RecordDict
from flwr.serverapp import Grid
from flwr.serverapp.strategy import Strategy
from flwr.supercore.differential_privacy import CLIENTS_DISCREPANCY_WARNING

logger = logging.getLogger("aicache.federation")


class ExpectedCountNotice(logging.Filter):
    """Drop Flower's warning that the replies differ from the sampled count.

    Flower's DP wrapper warns when the number of replies differs from the
    count it was told; under Poisson sampling it is told the population (see
    ``private_strategy``), so this always differs, by design, and the noise is
    still calibrated to the fixed divisor.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        """Keep every record but that warning."""
        return record.msg != CLIENTS_DISCREPANCY_WARNING


def poisson_sample(nodes: Iterable[int], rate: float, rng: random.Random) -> list[int]:
    """Each of ``nodes`` independently with probability ``rate``."""
    return [node for node in nodes if rng.random() < rate]


class PoissonSampling(Strategy):
    """Train on a Poisson sample of the connected nodes; everything else is ``inner``'s.

    Parameters
    ----------
    inner
        The strategy that aggregates and evaluates.
    rate
        ``q``: each node's chance of training in a round.
    rng
        The source of randomness (the OS's entropy unless a test gives one).
    """

    def __init__(self, inner: Strategy, *, rate: float, rng: random.Random | None = None) -> None:
        if not 0.0 < rate <= 1.0:
            raise ValueError(f"invalid sample rate {rate}: it must be in (0, 1]")
        self.inner = inner
        self.rate = rate
        self.rng = rng or random.SystemRandom()
        flower = logging.getLogger("flwr")
        if not any(isinstance(f, ExpectedCountNotice) for f in flower.filters):
            flower.addFilter(ExpectedCountNotice())

    def summary(self) -> None:
        """Log the wrapped strategy's summary."""
        self.inner.summary()

    def configure_train(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        """One training message for each node in this round's Poisson sample."""
        config["server-round"] = server_round
        nodes = poisson_sample(grid.get_node_ids(), self.rate, self.rng)
        logger.info("round %d: %d nodes in the Poisson sample", server_round, len(nodes))
        content = RecordDict({"arrays": arrays, "config": config})
        return [Message(content, message_type=MessageType.TRAIN, dst_node_id=n) for n in nodes]

    def aggregate_train(
        self, server_round: int, replies: Iterable[Message]
    ) -> tuple[ArrayRecord | None, MetricRecord | None]:
        """Delegate to the inner strategy."""
        return self.inner.aggregate_train(server_round, replies)

    def configure_evaluate(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        """Delegate to the inner strategy (evaluation is not covered by ε)."""
        return self.inner.configure_evaluate(server_round, arrays, config, grid)

    def aggregate_evaluate(
        self, server_round: int, replies: Iterable[Message]
    ) -> MetricRecord | None:
        """Delegate to the inner strategy."""
        return self.inner.aggregate_evaluate(server_round, replies)
