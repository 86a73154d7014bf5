"""Homomorphic (CKKS) aggregation: the server adds encrypted updates it cannot read.

Each client sends ``Enc(n_i · (w_i − w))``, its weighted update encrypted with
the federation's public key, and its weight ``n_i``. The server holds only the
public context: it adds the ciphertexts, asks one client (a holder of the
secret key) to decrypt the sum, and applies ``Σ n_i Δ_i / Σ n_i``. What is
decrypted is the aggregate, which the server learns under plain FedAvg too;
no individual update is ever in the clear outside its client.

Central DP on CKKS (``--dp central --secure he``): Flower's client-side
clipping wrapper (inside ``inner``) asks each of the ``m`` sampled clients to
clip its update to ``C``; the client then weighs it 1 and encrypts it (the
encryption mod runs after the clipping mod). The server adds the ``k <= m``
ciphertexts, adds a fresh plaintext vector ``N(0, z²C²·I)`` to the encrypted
sum, and only then has it decrypted, so the decrypting client sees only
``Σ clip(Δ_i) + noise``; the server applies ``w + (Σ clip(Δ_i) + noise) / m``.
A missing or refused reply counts as a zero update, so the divisor stays
``m`` and the noise on the mean stays ``z·C/m`` whatever the dropouts (the
assumption: a dropout does not depend on the client's data).

Accounting is central mode's: ``m`` of ``N`` clients sampled without
replacement, neighbours that replace one client's data, sensitivity ``2C``
on the sum, Gaussian noise ``z·C``. CKKS's own approximation error (about
1e-8 a value) only adds to the noise. Trust: the server draws the noise, so a
server that kept it could subtract it from the decrypted sum; this mode
protects individual updates from the server (encryption) and the released
models and the decrypting client from everyone (noise), the same trust in the
server as central DP. The noise here is dropped as soon as it is added.

Distributed DP on CKKS (``--dp distributed --secure he``) removes that trust:
each client clips its update to ``C`` and adds its share ``N(0, z²C²/m)``
before encrypting (the local-DP client mod with a share of the noise), so
nobody, the server included, ever decrypts a sum with less than the noise of
the clients in it. A dropout takes its share along (``k`` clients leave
``z·sqrt(k/m)·C``); with no reconstruction threshold to lean on, a round
needs every sampled client (``min_replies = m``) and fails loudly otherwise,
so the accountant's ``z_eff = z·sqrt(m/m) = z`` holds. The divisor is ``m``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

import numpy as np
from flwr.app import ArrayRecord, ConfigRecord, Message, MetricRecord, RecordDict
from flwr.serverapp import Grid
from flwr.serverapp.strategy import Strategy

from aicache.federation.validation import (
    ENCRYPTED,
    META,
    NUM_EXAMPLES,
    SECURE,
    NoValidAggregateError,
    ValidatedStrategy,
    update_problem,
    weight_problem,
)
from aicache.privacy import ckks
from aicache.privacy.modes import SecureMode
from aicache.privacy.noise import noisy_update_bound

logger = logging.getLogger("aicache.federation")

DECRYPT = "query.decrypt"


class HomomorphicStrategy(ValidatedStrategy):
    """Sample and evaluate like ``inner``; aggregate encrypted updates with CKKS.

    Parameters
    ----------
    inner
        The strategy that samples clients (its aggregation is not used).
    task, max_update_norm
        As for :class:`ValidatedStrategy`; the bound applies to the aggregate.
    public_context
        The serialised CKKS context without its secret key.
    fixed_count
        Under DP: the sample size ``m``, the fixed divisor of the sum.
    noise_std
        Under DP: the standard deviation ``z·C`` of the noise on the sum.
    server_noise
        Whether the server adds that noise to the encrypted sum (central DP)
        or the clients already added their shares (distributed DP).
    clip
        Under DP: the clipping norm ``C`` (widens the aggregate's norm bound
        by what the noise may add).
    min_replies
        The fewest valid replies a round may aggregate (distributed DP: ``m``).

    Raises
    ------
    ValueError
        If ``public_context`` holds a secret key: the server must never have one.
    """

    def __init__(
        self,
        inner: Strategy,
        *,
        task: str,
        max_update_norm: float,
        public_context: bytes,
        fixed_count: int = 0,
        noise_std: float = 0.0,
        server_noise: bool = True,
        clip: float = 0.0,
        min_replies: int = 1,
    ) -> None:
        super().__init__(inner, task=task, max_update_norm=max_update_norm, fixed_count=fixed_count)
        if (noise_std > 0) != (fixed_count > 0):
            raise ValueError("DP on CKKS needs both the sample size and the noise")
        self.noise_std = noise_std
        self.server_noise = server_noise
        self.clip = clip
        self.min_replies = min_replies
        if not ckks.is_public(public_context):
            raise ValueError("the server was given a CKKS context with a secret key")
        self.public_context = public_context
        self._context = ckks.load_context(public_context)
        self._grid: Grid | None = None

    def configure_train(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        """Ask for encrypted updates (and remember the grid, to ask for a decryption)."""
        self._grid = grid
        config[SECURE] = SecureMode.HE.value
        return super().configure_train(server_round, arrays, config, grid)

    def aggregate_train(
        self, server_round: int, replies: Iterable[Message]
    ) -> tuple[ArrayRecord | None, MetricRecord | None]:
        """Add the encrypted updates, have the sum decrypted, apply the weighted mean."""
        ciphertexts, weights, senders = [], [], []
        for message in replies:
            try:
                if message.has_error():
                    raise ValueError(f"client error: {message.error.reason}")
                content = message.content
                if str(content.config_records[META]["task"]) != self.task:
                    raise ValueError("trained another task")
                weight = float(content.metric_records["metrics"][NUM_EXAMPLES])  # type: ignore[arg-type]
                if (problem := weight_problem(weight, self.max_examples)) is not None:
                    raise ValueError(problem)
                ciphertexts.append(
                    ckks.from_arrays(content.array_records[ENCRYPTED].to_numpy_ndarrays())
                )
                weights.append(weight)
                senders.append(message.metadata.src_node_id)
            except (KeyError, TypeError, ValueError) as exc:
                logger.warning("round %d: rejected an encrypted update: %s", server_round, exc)
                self.log.rejected.append(str(exc))
        self.log.accepted = len(ciphertexts)
        if not ciphertexts:
            raise NoValidAggregateError(f"round {server_round}: no encrypted update to aggregate")
        if len(ciphertexts) < self.min_replies:
            raise NoValidAggregateError(
                f"round {server_round}: {len(ciphertexts)} encrypted updates, fewer than the "
                f"{self.min_replies} whose noise shares the privacy accounting counts on"
            )
        size = sum(a.size for a in self._reference)
        try:
            total = ckks.add(self._context, ciphertexts)
            if self.noise_std > 0 and self.server_noise:
                total = self.noised(total, size)
        except ValueError as exc:
            raise NoValidAggregateError(f"round {server_round}: {exc}") from exc
        flat = self._decrypt(total, senders, server_round)
        if flat.size != size:
            raise NoValidAggregateError(
                f"round {server_round}: the sum has {flat.size} values, not {size}"
            )
        # Under DP the divisor is the sample size, not the (unverifiable) claimed weights.
        divisor = self.fixed_count if self.fixed_count else sum(weights)
        update = ckks.unflatten(flat / divisor, self._reference)
        model = [ref + delta for ref, delta in zip(self._reference, update, strict=True)]
        problem = update_problem(
            model,
            self._reference,
            num_examples=1,
            task=self.task,
            expected_task=self.task,
            max_update_norm=self._aggregate_bound(size),
        )
        if problem is not None:
            raise NoValidAggregateError(
                f"round {server_round}: the aggregate is invalid: {problem}"
            )
        metrics = MetricRecord(
            {"accepted-updates": len(ciphertexts), "rejected-updates": len(self.log.rejected)}
        )
        self.log.train_metrics = {
            k: float(v) for k, v in metrics.items() if isinstance(v, int | float)
        }
        return ArrayRecord(model), metrics

    def noised(self, total: ckks.Ciphertext, size: int) -> ckks.Ciphertext:
        """``total`` plus ``N(0, noise_std²)`` on each of its ``size`` values, still encrypted.

        The noise comes from the operating system's entropy and is not kept.
        """
        rng = np.random.default_rng()
        return ckks.add_plain(self._context, total, rng.normal(0.0, self.noise_std, size))

    def _aggregate_bound(self, size: int) -> float:
        """The aggregate's norm bound; under DP, widened by what honest noise may add."""
        if not self.fixed_count or self.max_update_norm == 0:
            return self.max_update_norm
        noisy = noisy_update_bound(self.clip, self.noise_std / self.fixed_count, size)
        return max(self.max_update_norm, noisy)

    def _decrypt(self, total: ckks.Ciphertext, senders: list[int], server_round: int) -> np.ndarray:
        """Ask the clients that took part, one after another, to decrypt the sum."""
        assert self._grid is not None
        for node in senders:
            request = Message(
                RecordDict(
                    {
                        ENCRYPTED: ArrayRecord(ckks.to_arrays(total)),
                        "config": ConfigRecord({"task": self.task}),
                    }
                ),
                message_type=DECRYPT,
                dst_node_id=node,
            )
            for reply in self._grid.send_and_receive([request], timeout=120):
                if not reply.has_error():
                    return reply.content.array_records["arrays"].to_numpy_ndarrays()[0]
        raise NoValidAggregateError(f"round {server_round}: no client could decrypt the sum")
