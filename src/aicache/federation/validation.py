"""Every incoming update is checked before it can touch the global model.

:func:`update_problem` is the pure check; :class:`ValidatedStrategy` wraps any
Flower strategy (the way Flower's DP wrappers do), drops invalid replies with
their reason logged and counted, and turns a round with no valid aggregate
into an error instead of a silently unchanged model.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
from flwr.app import ArrayRecord, ConfigRecord, Message, MessageType, MetricRecord, RecordDict
from flwr.serverapp import Grid
from flwr.serverapp.strategy import Strategy
from flwr.supercore.differential_privacy import KEY_NORM_BIT

from aicache.tasks.base import Task, get_task

logger = logging.getLogger("aicache.federation")

NUM_EXAMPLES = "num-examples"
META = "meta"
ENCRYPTED = "encrypted"  # the record of a CKKS-encrypted update
SECURE = "secure"  # the config key naming a round's secure-aggregation mode


class NoValidAggregateError(RuntimeError):
    """A round ended without any update that could be aggregated."""


def weight_problem(num_examples: float, max_examples: float) -> str | None:
    """Why a claimed weight must be rejected, or ``None``.

    The server cannot count a client's examples, so the claim is bounded by
    what one client's data can hold for the task (``max_examples``): above it,
    the claim is a lie or a bug, and accepting it would let one client outweigh
    all the others in a weighted mean. Honest clients report at most that.
    """
    if not np.isfinite(num_examples) or num_examples <= 0:
        return f"invalid example count {num_examples!r}"
    if max_examples > 0 and num_examples > max_examples:
        return (
            f"example count {num_examples:.3g} exceeds the task's per-client maximum "
            f"{max_examples:g}"
        )
    return None


def update_problem(
    arrays: list[np.ndarray],
    reference: list[np.ndarray],
    *,
    num_examples: float,
    task: str,
    expected_task: str,
    max_update_norm: float,
    max_examples: float = 0.0,
) -> str | None:
    """Why an update must be rejected, or ``None`` when it is acceptable.

    Parameters
    ----------
    arrays
        The client's model.
    reference
        The global model the client was sent, in the task's dtypes: each
        array must have exactly its reference's dtype (a float16 update would
        lose precision in the mean, a longdouble one is not portable).
    num_examples
        The weight the client claims.
    task, expected_task
        The task the client trained, and the task of the round.
    max_update_norm
        Upper bound on the L2 norm of ``arrays - reference`` (0 disables it).
    max_examples
        Upper bound on ``num_examples`` (0 disables it): see :func:`weight_problem`.
    """
    if task != expected_task:
        return f"trained task {task!r}, the round is for {expected_task!r}"
    if (problem := weight_problem(num_examples, max_examples)) is not None:
        return problem
    if len(arrays) != len(reference):
        return f"{len(arrays)} arrays, the model has {len(reference)}"
    squared = 0.0
    for index, (got, want) in enumerate(zip(arrays, reference, strict=True)):
        if got.shape != want.shape:
            return f"array {index} has shape {got.shape}, expected {want.shape}"
        if got.dtype != want.dtype:
            return f"array {index} has dtype {got.dtype}, the task's is {want.dtype}"
        if not np.all(np.isfinite(got)):
            return f"array {index} holds NaN or infinite values"
        squared += float(np.sum((got.astype(np.float64) - want.astype(np.float64)) ** 2))
    norm = squared**0.5
    # A relative tolerance: an update clipped to exactly the bound must pass.
    if max_update_norm > 0 and norm > max_update_norm * (1 + 1e-9):
        return f"update norm {norm:.3g} exceeds the bound {max_update_norm:g}"
    return None


def reply_problem(
    message: Message,
    reference: list[np.ndarray],
    expected_task: str,
    max_update_norm: float,
    max_examples: float = 0.0,
) -> str | None:
    """:func:`update_problem` for a Flower reply message (errors and missing records too)."""
    if message.has_error():
        return f"client error: {message.error.reason}"
    content = message.content
    try:
        arrays = content.array_records["arrays"].to_numpy_ndarrays()
        metrics = content.metric_records["metrics"]
        meta = content.config_records[META]
        num_examples = float(metrics[NUM_EXAMPLES])  # type: ignore[arg-type]
        task = str(meta["task"])
    except (KeyError, TypeError, ValueError, EOFError) as exc:  # EOFError: truncated array bytes
        return f"malformed reply: missing or invalid {exc}"
    return update_problem(
        arrays,
        reference,
        num_examples=num_examples,
        task=task,
        expected_task=expected_task,
        max_update_norm=max_update_norm,
        max_examples=max_examples,
    )


def _max_examples_of(task: str) -> int:
    try:
        return get_task(task).max_examples
    except KeyError:  # a task this process does not know: the contract's default bound
        return Task.max_examples


@dataclass
class RoundLog:
    """What the wrapper saw in the latest round (read by the run observer)."""

    accepted: int = 0
    rejected: list[str] = field(default_factory=list)
    train_metrics: dict[str, float] = field(default_factory=dict)
    evaluate_metrics: dict[str, float] = field(default_factory=dict)


def _plain(record: MetricRecord | None) -> dict[str, float]:
    if record is None:
        return {}
    return {k: float(v) for k, v in record.items() if isinstance(v, int | float)}


def _uniform(valid: list[Message]) -> list[Message]:
    """The valid replies rebuilt with one layout: the checked model and the shared metrics.

    Flower's strategies fail the whole round when replies differ in their
    records or keys, so a client adding a record, a metric or renaming an
    array could otherwise void everyone's round. Each reply keeps its model,
    its weight and the finite metrics that every valid reply has.
    """
    records = [m.content.metric_records["metrics"] for m in valid]
    shared = set.intersection(
        *(
            {k for k, v in r.items() if isinstance(v, int | float) and math.isfinite(v)}
            for r in records
        )
    )
    return [
        Message(
            RecordDict(
                {
                    "arrays": ArrayRecord(m.content.array_records["arrays"].to_numpy_ndarrays()),
                    "metrics": MetricRecord({k: r[k] for k in sorted(shared)}),
                }
            ),
            dst_node_id=0,
            message_type=MessageType.TRAIN,
        )
        for m, r in zip(valid, records, strict=True)
    ]


def _clipped_bit(message: Message) -> int:
    """A reply's clipped bit, forced to 0 or 1 so no client can count for more than one."""
    return int(bool(message.content.metric_records["metrics"].get(KEY_NORM_BIT, 0)))


class ValidatedStrategy(Strategy):
    """Wrap ``inner`` so that only valid updates are aggregated.

    Parameters
    ----------
    inner
        The aggregation strategy.
    task
        The task every update must be for.
    max_update_norm
        Bound on each update's L2 norm (0 disables it).
    max_examples
        Bound on each client's claimed example count (default: the task's
        ``max_examples``; 0 disables it).
    fixed_count
        With differential privacy: aggregate exactly this many updates, an
        invalid or missing one counting as a zero update. The mean then stays
        the sum over a fixed divisor, which is what the noise is calibrated to;
        dropping the update instead would shrink the divisor and under-noise it.
    evaluate_every, round_offset, last_round
        Evaluate the global model only in rounds whose run-wide number
        (``round_offset`` + the strategy's round) is a multiple of
        ``evaluate_every``, and in the strategy's ``last_round``; other rounds
        register no evaluation metrics. Each evaluation is a message exchange,
        which a deployed federation pays for in latency.
    availability
        ``(count, seconds)``: before each round, wait at most ``seconds`` for
        ``count`` connected clients, then fail the round loudly (Flower's own
        sampler would wait forever for a client that left).
    expected_count
        With differential privacy and Poisson sampling: aggregate the sum of the
        valid updates over this fixed divisor (``qN``), however many clients the
        round sampled. A round that sampled nobody aggregates a zero update (the
        noise is still added outside), so its output does not reveal the count.
    clipped_bits
        With adaptive clipping: each slot keeps its client's clipped bit (0 or 1;
        0 for a missing or invalid update, which counts as a zero update).
    """

    def __init__(
        self,
        inner: Strategy,
        *,
        task: str,
        max_update_norm: float,
        max_examples: float | None = None,
        fixed_count: int = 0,
        evaluate_every: int = 1,
        round_offset: int = 0,
        last_round: int = 0,
        availability: tuple[int, float] | None = None,
        expected_count: float = 0.0,
        clipped_bits: bool = False,
    ) -> None:
        self.inner = inner
        self.task = task
        self.max_update_norm = max_update_norm
        self.max_examples = _max_examples_of(task) if max_examples is None else max_examples
        self.fixed_count = fixed_count
        self.evaluate_every = evaluate_every
        self.round_offset = round_offset
        self.last_round = last_round
        self.availability = availability
        self.expected_count = expected_count
        self.clipped_bits = clipped_bits
        self.log = RoundLog()
        # The global model as sent, in the task's dtypes: replies must match them exactly.
        self._reference: list[np.ndarray] = []

    def summary(self) -> None:
        """Log the wrapped strategy's summary."""
        self.inner.summary()

    def configure_train(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        """Remember the global model sent, then let the inner strategy sample clients."""
        self._reference = arrays.to_numpy_ndarrays()
        self.log = RoundLog()
        if self.availability is not None:
            count, seconds = self.availability
            deadline = time.monotonic() + seconds
            while (connected := len(list(grid.get_node_ids()))) < count:
                if time.monotonic() > deadline:
                    raise NoValidAggregateError(
                        f"round {self.round_offset + server_round}: only {connected} of the "
                        f"{count} clients it needs were connected after {seconds:g} s"
                    )
                time.sleep(0.2)
        messages = list(self.inner.configure_train(server_round, arrays, config, grid))
        if self.fixed_count and len(messages) != self.fixed_count:
            raise NoValidAggregateError(
                f"round {server_round}: {len(messages)} clients were sampled, but the privacy "
                f"accounting assumes {self.fixed_count}"
            )
        return messages

    def aggregate_train(
        self, server_round: int, replies: Iterable[Message]
    ) -> tuple[ArrayRecord | None, MetricRecord | None]:
        """Aggregate the valid replies; raise when none is valid."""
        replies = list(replies)
        valid = []
        for message in replies:
            problem = reply_problem(
                message, self._reference, self.task, self.max_update_norm, self.max_examples
            )
            if problem is None:
                valid.append(message)
            else:
                node = message.metadata.src_node_id
                logger.warning(
                    "round %d: rejected the update of node %s: %s", server_round, node, problem
                )
                self.log.rejected.append(problem)
        self.log.accepted = len(valid)
        if self.expected_count and (valid or not replies):
            valid = [self._slot(m) for m in self._over_expected_count(valid)]
        elif self.fixed_count and valid:
            # Under DP every slot is rebuilt with weight 1 and no client metrics: a
            # client cannot weigh itself up, and no noise-free statistic leaves the round.
            models = [m.content.array_records["arrays"].to_numpy_ndarrays() for m in valid]
            models += [self._reference] * (self.fixed_count - len(valid))
            bits = [_clipped_bit(m) for m in valid] + [0] * (self.fixed_count - len(valid))
            valid = [
                self._slot(model, bit if self.clipped_bits else None)
                for model, bit in zip(models, bits, strict=True)
            ]
        elif valid:
            valid = _uniform(valid)
        arrays, metrics = self.inner.aggregate_train(server_round, valid) if valid else (None, None)
        if arrays is None:
            reasons = "; ".join(sorted(set(self.log.rejected))) or "no client replied"
            raise NoValidAggregateError(
                f"round {server_round}: none of {len(replies)} replies could be aggregated "
                f"({reasons})"
            )
        merged = arrays.to_numpy_ndarrays()
        if not all(np.all(np.isfinite(a)) for a in merged):
            raise NoValidAggregateError(f"round {server_round}: the aggregate is not finite")
        metrics = metrics or MetricRecord()
        metrics["accepted-updates"] = self.log.accepted
        metrics["rejected-updates"] = len(self.log.rejected)
        self.log.train_metrics = _plain(metrics)
        return arrays, metrics

    def _over_expected_count(self, valid: list[Message]) -> list[list[np.ndarray]]:
        """Models whose plain mean is the reference plus the sum of updates over ``qN``.

        Each of the ``k`` updates is scaled by ``k / qN``; with none, the one
        model is the reference itself (a zero update).
        """
        if not valid:
            return [self._reference]
        scale = len(valid) / self.expected_count
        models = [m.content.array_records["arrays"].to_numpy_ndarrays() for m in valid]
        return [
            [
                r + (a.astype(np.float64) - r) * scale
                for a, r in zip(model, self._reference, strict=True)
            ]
            for model in models
        ]

    @staticmethod
    def _slot(model: list[np.ndarray], clipped: int | None = None) -> Message:
        metrics = MetricRecord({NUM_EXAMPLES: 1})
        if clipped is not None:
            metrics[KEY_NORM_BIT] = clipped
        content = RecordDict({"arrays": ArrayRecord(model), "metrics": metrics})
        return Message(content, dst_node_id=0, message_type=MessageType.TRAIN)

    def configure_evaluate(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        """Delegate to the inner strategy in the rounds that evaluate (see the class)."""
        scheduled = (self.round_offset + server_round) % self.evaluate_every == 0
        if not scheduled and server_round != self.last_round:
            return []
        return self.inner.configure_evaluate(server_round, arrays, config, grid)

    def aggregate_evaluate(
        self, server_round: int, replies: Iterable[Message]
    ) -> MetricRecord | None:
        """Aggregate evaluation metrics and keep them for the round's report."""
        metrics = self.inner.aggregate_evaluate(server_round, replies)
        self.log.evaluate_metrics = _plain(metrics)
        return metrics
