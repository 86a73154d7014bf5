"""Central DP over secure aggregation (SecAgg+ and CKKS), run in-process: no Ray, no sockets.

The aggregation paths are driven with fixed updates, so the noise they add
can be measured over many draws against the scale the accountant assumes.
"""

from __future__ import annotations

import math
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from flwr.app import ArrayRecord, ConfigRecord, Context, Message, MetricRecord, RecordDict
from flwr.common import (
    Code,
    FitIns,
    FitRes,
    Status,
    ndarrays_to_parameters,
    parameters_to_ndarrays,
)
from flwr.compat.common import recorddict_compat as compat
from flwr.server.client_manager import SimpleClientManager
from flwr.server.client_proxy import ClientProxy
from flwr.serverapp.strategy import FedAvg
from flwr.supercore.differential_privacy import KEY_CLIPPING_NORM

from aicache.federation.homomorphic import HomomorphicStrategy
from aicache.federation.local_dp import LOCAL_DP_CLIP, LOCAL_DP_STD
from aicache.federation.plan import TrainingPlan
from aicache.federation.secure_aggregation import (
    SecAggCentralDp,
    _RecordingFedAvg,
    clip_when_asked,
)
from aicache.federation.strategies import StrategySpec
from aicache.federation.validation import ENCRYPTED, META, NUM_EXAMPLES, NoValidAggregateError
from aicache.privacy import ckks
from aicache.privacy.accounting import Sampling, epsilon
from aicache.privacy.central import DpPlan
from aicache.privacy.secure import QUANTIZATION_RANGE, quantised_clip

SAMPLING = Sampling("fixed", population=10, size=4)


def _central(z: float = 1.0, clip: float = 0.5, **changes: Any) -> DpPlan:
    return DpPlan(
        mode="central",
        clip=clip,
        noise_multiplier=z,
        delta=1e-5,
        accountant="rdp",
        sampling=changes.pop("sampling", SAMPLING),
        **changes,
    )


# --- the plan: what is accepted, what is refused -------------------------------------------


@pytest.mark.parametrize("secure", ["secagg", "he"])
def test_central_dp_is_accepted_with_secure_aggregation_and_accounted_as_central(
    secure: str,
) -> None:
    plan = TrainingPlan(task="t", rounds=3, secure=secure, dp=_central(z=1.3))
    # The same events as central mode: m of N without replacement, replace-one, z.
    assert plan.dp.epsilon_after(3) == epsilon(1.3, SAMPLING, 3, 1e-5, "rdp")
    assert plan.dp.record(3)["neighbouring"] == "replace one client"
    assert TrainingPlan.from_dict(plan.as_dict()) == plan


@pytest.mark.parametrize(
    ("secure", "dp", "strategy", "message"),
    [
        ("secagg", _central(sampling=Sampling("poisson", 0.5, 10)), "fedavg", "not Poisson"),
        ("he", _central(sampling=Sampling("poisson", 0.5, 10)), "fedavg", "not Poisson"),
        (
            "secagg",
            _central(z=1.0, target_quantile=0.5, clipped_count_stddev=1.0),
            "fedavg",
            "--adaptive-clip is not available with --secure secagg",
        ),
        (
            "secagg",
            DpPlan(mode="local", clip=1.0, noise_multiplier=1.0, sampling=SAMPLING),
            "fedavg",
            "per-update",
        ),
        ("secagg", _central(), "median", "runs FedAvg"),
        ("he", _central(), "median", "--secure he runs FedAvg"),
        (
            "he",
            DpPlan(mode="local", clip=1.0, noise_multiplier=1.0, sampling=SAMPLING),
            "fedavg",
            "not local",
        ),
    ],
)
def test_unsupported_secure_dp_combinations_are_refused_with_a_reason(
    secure: str, dp: DpPlan, strategy: str, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        TrainingPlan(task="t", rounds=1, secure=secure, dp=dp, strategy=StrategySpec(strategy))


def test_distributed_dp_over_ckks_asks_each_client_for_its_noise_share() -> None:
    dp = DpPlan(
        mode="distributed",
        clip=0.5,
        noise_multiplier=2.0,
        delta=1e-5,
        accountant="rdp",
        sampling=SAMPLING,
        min_survivors=4,
    )
    plan = TrainingPlan(task="t", rounds=2, secure="he", dp=dp)
    config = plan.train_config()
    # Each of the m = 4 clients clips to C and adds N(0, z²C²/m): z·C on the sum of all 4.
    assert config[LOCAL_DP_CLIP] == 0.5
    assert config[LOCAL_DP_STD] == pytest.approx(2.0 * 0.5 / 2)
    assert plan.dp.epsilon_after(2) == epsilon(2.0, SAMPLING, 2, 1e-5)  # every client needed


def test_the_quantised_clip_covers_secagg_rounding() -> None:
    # One quantisation step per coordinate at most: 2r/Q each, sqrt(d) of them in L2.
    step = 2 * 32.0 / QUANTIZATION_RANGE
    assert quantised_clip(1.0, 32.0, 10_000) == pytest.approx(1.0 + 100 * step)
    assert quantised_clip(1.0, 32.0, 10_000) < 1.002


# --- SecAgg+: Flower's legacy wrapper on the unmasked mean -----------------------------------


class _Proxy(ClientProxy):
    """A client the legacy client manager can sample (never asked anything here)."""

    def _unused(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError

    get_properties = get_parameters = fit = evaluate = reconnect = _unused


def _secagg_wrapper(dimension: int, *, z: float, clip: float) -> SecAggCentralDp:
    plan = TrainingPlan(task="t", rounds=1, secure="secagg", dp=_central(z=z, clip=clip))
    inner = _RecordingFedAvg(plan, [np.zeros(dimension)])
    return SecAggCentralDp(inner, clip=clip, noise_clip=quantised_clip(clip, 32.0, dimension))


def _unmasked(mean: np.ndarray, survivors: int) -> list[tuple[Any, FitRes]]:
    """What SecAgg+ hands the strategy: one result per survivor, each with the unmasked mean."""
    status = Status(Code.OK, "")
    return [
        (None, FitRes(status, ndarrays_to_parameters([mean.copy()]), 1, {}))
        for _ in range(survivors)
    ]


def test_secagg_clients_are_asked_to_clip_to_c_and_the_sample_must_be_m() -> None:
    # Prepare: m = 4, the noise sized on C' > C
    wrapper = _secagg_wrapper(100, z=1.0, clip=0.5)
    manager = SimpleClientManager()
    for cid in range(4):
        manager.register(_Proxy(str(cid)))
    parameters = ndarrays_to_parameters([np.zeros(100)])
    # Execute
    instructions = wrapper.configure_fit(1, parameters, manager)
    # Assert: clients clip to C itself; only the noise uses the widened bound
    assert len(instructions) == 4
    assert {ins.config[KEY_CLIPPING_NORM] for _, ins in instructions} == {0.5}
    assert wrapper.clipping_norm == quantised_clip(0.5, 32.0, 100) > 0.5
    manager.register(_Proxy("4"))
    with pytest.raises(NoValidAggregateError, match="5 clients were sampled"):
        wrapper.configure_fit(2, parameters, manager)


def test_secagg_central_noise_is_z_c_over_m_on_the_sum_over_m_despite_dropouts() -> None:
    # Prepare: m = 4 sampled, 3 survive (one dropped after sharing keys); their mean is known.
    dimension, z, clip, draws = 2_000, 0.5, 0.5, 100
    wrapper = _secagg_wrapper(dimension, z=z, clip=clip)
    reference = np.full(dimension, 0.25)
    wrapper._reference = [reference]
    # Updates pointing the same way, so that a divisor of 3 instead of 4 would show.
    updates = np.abs(np.random.default_rng(1).normal(0, 1, (3, dimension)))
    updates *= clip / np.linalg.norm(updates, axis=1, keepdims=True)  # clipped by the clients
    survivors_mean = reference + updates.mean(axis=0)
    expected = reference + updates.sum(axis=0) / 4  # the dropped client counts as zero
    # Execute
    residuals = []
    for _ in range(draws):
        parameters, _ = wrapper.aggregate_fit(
            1, _unmasked(survivors_mean, 3), [ConnectionAbortedError("dropped")]
        )
        assert parameters is not None
        residuals.append(parameters_to_ndarrays(parameters)[0] - expected)
    noise = np.stack(residuals)
    # Assert: std z·C'/m on the mean (z·C' on the sum), centred on the sum over m, not k
    target = z * quantised_clip(clip, 32.0, dimension) / 4
    assert float(noise.std()) == pytest.approx(target, rel=0.01)
    tolerance = 5 * target / math.sqrt(noise.size)
    assert abs(float(noise.mean())) < tolerance
    assert float(np.mean(updates.sum(axis=0) / 3 - updates.sum(axis=0) / 4)) > 2 * tolerance
    assert wrapper.recorder.log.accepted == 3
    assert wrapper.recorder.log.rejected == ["dropped"]


@pytest.mark.usefixtures("flower_task")
def test_the_secagg_client_clips_before_its_update_is_masked() -> None:
    # Prepare: a legacy train message as secaggplus_mod passes it on, asking for C = 0.5
    reference = [np.zeros(50), np.ones(3)]
    fit_ins = FitIns(ndarrays_to_parameters(reference), {KEY_CLIPPING_NORM: 0.5, "task": "t"})
    message = Message(
        compat.fitins_to_recorddict(fit_ins, keep_input=True), dst_node_id=1, message_type="train"
    )
    trained = [np.full(50, 3.0), np.full(3, 4.0)]  # an update of norm about 21

    def client(msg: Message, ctxt: Context) -> Message:
        res = FitRes(Status(Code.OK, ""), ndarrays_to_parameters(trained), 1, {})
        return Message(compat.fitres_to_recorddict(res, keep_input=True), reply_to=msg)

    context = Context(run_id=1, node_id=1, node_config={}, state=RecordDict(), run_config={})
    # Execute
    reply = clip_when_asked(message, context, client)
    # Assert: what goes on to be quantised and masked is the clipped model
    sent = parameters_to_ndarrays(compat.recorddict_to_fitres(reply.content, False).parameters)
    norm = math.sqrt(sum(float(np.sum((s - r) ** 2)) for s, r in zip(sent, reference, strict=True)))
    assert norm == pytest.approx(0.5)


# --- CKKS: noise on the encrypted sum, before anyone decrypts it -----------------------------


@pytest.fixture(scope="module")
def keys() -> tuple[bytes, bytes]:
    return ckks.make_keys()


class _DecryptingClients:
    """The grid, as far as decryption goes: a key holder decrypts and the plaintext is noted."""

    def __init__(self, secret: bytes) -> None:
        self.context = ckks.load_context(secret)
        self.seen: list[np.ndarray] = []

    def send_and_receive(self, messages: list[Message], timeout: float) -> list[Any]:
        plain = ckks.decrypt(
            self.context,
            ckks.from_arrays(messages[0].content.array_records[ENCRYPTED].to_numpy_ndarrays()),
        )
        self.seen.append(plain)
        content = RecordDict({"arrays": ArrayRecord([plain])})
        return [SimpleNamespace(has_error=lambda: False, content=content)]


def _encrypted_reply(public: Any, update: np.ndarray) -> Message:
    content = RecordDict(
        {
            ENCRYPTED: ArrayRecord(ckks.to_arrays(ckks.encrypt(public, update))),
            "metrics": MetricRecord({NUM_EXAMPLES: 1.0}),
            META: ConfigRecord({"task": "t"}),
        }
    )
    return Message(content, dst_node_id=0, message_type="train")


def _he_strategy(
    keys: tuple[bytes, bytes], dimension: int, *, noise_std: float, clip: float, **dp: Any
) -> tuple[HomomorphicStrategy, _DecryptingClients]:
    secret, public = keys
    strategy = HomomorphicStrategy(
        FedAvg(),
        task="t",
        max_update_norm=100.0,
        public_context=public,
        fixed_count=4,
        noise_std=noise_std,
        clip=clip,
        **dp,
    )
    clients = _DecryptingClients(secret)
    strategy._reference = [np.zeros(dimension)]
    strategy._grid = clients  # type: ignore[assignment]
    return strategy, clients


@pytest.mark.usefixtures("flower_task")
def test_ckks_central_noise_is_z_c_on_the_encrypted_sum_and_the_divisor_is_m(
    keys: tuple[bytes, bytes],
) -> None:
    # Prepare: m = 4 sampled, 3 clipped updates arrive (one client missing); z = 1, C = 0.5
    dimension, z, clip, draws = 2 * ckks.SLOTS, 1.0, 0.5, 8
    strategy, clients = _he_strategy(keys, dimension, noise_std=z * clip, clip=clip)
    public = ckks.load_context(keys[1])
    updates = np.random.default_rng(2).normal(0, 1, (3, dimension))
    updates *= clip / np.linalg.norm(updates, axis=1, keepdims=True)
    replies = [_encrypted_reply(public, u) for u in updates]
    total = updates.sum(axis=0)
    # Execute
    models = []
    for _ in range(draws):
        arrays, _ = strategy.aggregate_train(1, replies)
        assert arrays is not None
        models.append(arrays.to_numpy_ndarrays()[0])
    # Assert: the decrypting client saw the sum with N(0, z²C²) on it, never the bare sum ...
    seen = np.stack(clients.seen) - total
    assert float(seen.std()) == pytest.approx(z * clip, rel=0.02)
    assert not np.allclose(seen, 0.0, atol=1e-3)
    # ... and the model moved by (sum + that noise) / m: noise z·C/m on the mean
    noise = np.stack(models) - total / 4
    assert float(noise.std()) == pytest.approx(z * clip / 4, rel=0.02)
    assert np.allclose(noise, seen / 4, atol=1e-6)  # exactly what was decrypted, over m
    assert strategy.log.accepted == 3


@pytest.mark.usefixtures("flower_task")
def test_ckks_central_divides_the_sum_by_m_whatever_the_claimed_weights(
    keys: tuple[bytes, bytes],
) -> None:
    # Prepare: negligible noise, so the divisor shows; one client claims weight 1000
    strategy, _ = _he_strategy(keys, 100, noise_std=1e-9, clip=1.0)
    public = ckks.load_context(keys[1])
    replies = [_encrypted_reply(public, np.full(100, 0.01)) for _ in range(2)]
    replies[1].content.metric_records["metrics"][NUM_EXAMPLES] = 1000.0
    # Execute
    arrays, _ = strategy.aggregate_train(1, replies)
    # Assert: (0.01 + 0.01) / 4 everywhere
    assert arrays is not None
    assert np.allclose(arrays.to_numpy_ndarrays()[0], 0.005, atol=1e-6)


@pytest.mark.usefixtures("flower_task")
def test_under_distributed_dp_the_ckks_server_adds_nothing_and_needs_every_share(
    keys: tuple[bytes, bytes],
) -> None:
    # Prepare: the clients' updates already hold their noise shares; m = 4
    strategy, clients = _he_strategy(
        keys, 100, noise_std=0.5, clip=0.5, server_noise=False, min_replies=4
    )
    public = ckks.load_context(keys[1])
    updates = np.random.default_rng(3).normal(0, 0.1, (4, 100))
    replies = [_encrypted_reply(public, u) for u in updates]
    # Execute
    arrays, _ = strategy.aggregate_train(1, replies)
    # Assert: the sum as the clients noised it, over m; a round short of a share fails
    assert arrays is not None
    assert np.allclose(clients.seen[0], updates.sum(axis=0), atol=1e-6)
    assert np.allclose(arrays.to_numpy_ndarrays()[0], updates.sum(axis=0) / 4, atol=1e-6)
    with pytest.raises(NoValidAggregateError, match="3 encrypted updates, fewer than the 4"):
        strategy.aggregate_train(2, replies[:3])


@pytest.mark.usefixtures("flower_task")
def test_the_ckks_client_clips_its_update_before_encrypting_it(
    keys: tuple[bytes, bytes], tmp_path: Path
) -> None:
    # Prepare: the real ClientApp with the secret key, asked for central DP with C = 0.01
    from aicache.federation.client_app import make_client_app
    from aicache.simulation.sources import PartitionProvider, SyntheticSource
    from aicache.tasks.base import get_task

    secret_file = tmp_path / "clients.ckks"
    secret_file.write_bytes(keys[0])
    app = make_client_app(
        PartitionProvider(SyntheticSource(0, 2)), secret_key_file=str(secret_file)
    )
    params = get_task("next-command").init_params(0)
    config = ConfigRecord(
        {
            "task": "next-command",
            "learning-rate": 0.5,
            "local-epochs": 1,
            "secure": "he",
            KEY_CLIPPING_NORM: 0.01,
        }
    )
    message = Message(
        RecordDict({"arrays": ArrayRecord(params), "config": config}),
        dst_node_id=1,
        message_type="train",
    )
    context = Context(
        run_id=1, node_id=1, node_config={"partition-id": 0}, state=RecordDict(), run_config={}
    )
    # Execute
    reply = app(message, context)
    # Assert: only a ciphertext, a weight of 1 and the task leave; inside, a clipped update
    assert not reply.has_error(), reply.error
    assert set(reply.content.array_records) == {ENCRYPTED}
    assert dict(reply.content.metric_records["metrics"]) == {NUM_EXAMPLES: 1.0}
    sent = ckks.decrypt(
        ckks.load_context(keys[0]),
        ckks.from_arrays(reply.content.array_records[ENCRYPTED].to_numpy_ndarrays()),
    )
    assert float(np.linalg.norm(sent)) == pytest.approx(0.01, rel=1e-4)
