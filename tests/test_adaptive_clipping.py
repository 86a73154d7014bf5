"""Adaptive quantile clipping under central DP: the noise split, its accounting, the round."""

from __future__ import annotations

import math

import dp_accounting
import numpy as np
import pytest
from dp_accounting import rdp
from flwr.app import ArrayRecord, ConfigRecord, Context, Message, MetricRecord, RecordDict
from flwr.serverapp.strategy import FedAvg
from flwr.supercore.differential_privacy import (
    KEY_CLIPPING_NORM,
    KEY_NORM_BIT,
    compute_adaptive_noise_params,
)

from aicache.federation.adaptive_clipping import ADAPTIVE_CLIPPING
from aicache.federation.client_app import clip_if_requested
from aicache.federation.dp_wrappers import private_strategy
from aicache.federation.plan import TrainingPlan
from aicache.federation.server_app import validated_strategy
from aicache.privacy.accounting import Sampling
from aicache.privacy.central import DpPlan
from tests.conftest import Cli

DELTA = 1e-5
FIXED = Sampling("fixed", population=100, size=10)


def _adaptive(z: float, count_noise: float, sampling: Sampling = FIXED) -> DpPlan:
    return DpPlan(
        mode="central",
        clip=0.5,
        noise_multiplier=z,
        delta=DELTA,
        sampling=sampling,
        target_quantile=0.5,
        clipped_count_stddev=count_noise,
    )


def test_the_update_noise_is_what_flower_adds_for_the_effective_multiplier() -> None:
    plan = _adaptive(1.0, 2.0)
    assert plan.update_noise_multiplier == pytest.approx((1 - 1 / 16) ** -0.5)
    _, flower = compute_adaptive_noise_params(1.0, 10, 2.0)
    assert plan.update_noise_multiplier == pytest.approx(flower)


@pytest.mark.parametrize(("z", "count_noise", "rounds"), [(1.0, 2.0, 20), (0.8, 0.5, 5)])
def test_the_accountant_counts_the_sum_and_the_count_as_one_gaussian(
    z: float, count_noise: float, rounds: int
) -> None:
    # Prepare: the pair (sum of updates, clipped count) under replace-one neighbours moves
    # by (2C, 1); normalised by its noise (z_Δ·C, σ_b) that is one Gaussian of sensitivity
    # sqrt(4/z_Δ² + 1/σ_b²), computed here from z_Δ as Flower adds it.
    _, z_updates = compute_adaptive_noise_params(z, 10, count_noise)
    multiplier = 1 / math.sqrt(4 / z_updates**2 + 1 / count_noise**2)
    reference = rdp.RdpAccountant(
        neighboring_relation=dp_accounting.NeighboringRelation.REPLACE_ONE
    )
    event = dp_accounting.GaussianDpEvent(multiplier)
    reference.compose(dp_accounting.SampledWithoutReplacementDpEvent(100, 10, event), rounds)
    # Execute
    record = _adaptive(z, count_noise).record(rounds)
    # Assert
    assert record["epsilon"] == pytest.approx(reference.get_epsilon(DELTA), rel=1e-9)
    assert record["clipping"] == "adaptive" and record["target_quantile"] == 0.5
    assert record["update_noise_multiplier"] == pytest.approx(z_updates)


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: _adaptive(1.0, 0.5), "undefined for noise multiplier 1 with clipped-count"),
        (lambda: _adaptive(1.0, 0.4), "needs z < 2·σ_b"),
        (
            lambda: _adaptive(1.0, 2.0, Sampling("poisson", 0.1, population=100)),
            "fixed share of clients",
        ),
        (
            lambda: DpPlan(
                mode="local", clip=1.0, noise_multiplier=1.0, sampling=FIXED, target_quantile=0.5
            ),
            "option of --dp central",
        ),
        (
            lambda: DpPlan(
                mode="central",
                clip=1.0,
                noise_multiplier=1.0,
                sampling=FIXED,
                target_quantile=1.0,
                clipped_count_stddev=9,
            ),
            "invalid target quantile 1.0",
        ),
    ],
)
def test_settings_where_adaptive_clipping_is_undefined_are_refused(
    build: object, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        build()  # type: ignore[operator]


def test_calibration_gives_the_effective_multiplier() -> None:
    plan = DpPlan.calibrated(
        target_epsilon=6.0,
        rounds=10,
        clip=0.1,
        delta=DELTA,
        accountant="rdp",
        sampling=FIXED,
        target_quantile=0.5,
        clipped_count_stddev=5.0,
    )
    assert 5.9 < plan.epsilon_after(10) <= 6.0
    assert plan.update_noise_multiplier > plan.noise_multiplier


def _reply(size: int, clipped: int) -> Message:
    content = RecordDict(
        {
            "arrays": ArrayRecord([np.zeros(size)]),
            "metrics": MetricRecord({"num-examples": 1, KEY_NORM_BIT: clipped}),
            "meta": ConfigRecord({"task": "t"}),
        }
    )
    return Message(content, dst_node_id=0, message_type="train")


class _Grid:
    def get_node_ids(self) -> list[int]:
        return [1, 2, 3, 4]


@pytest.mark.usefixtures("flower_task")
def test_a_round_is_noised_at_the_norm_its_clients_clipped_to() -> None:
    # Prepare: 4 of 4 clients, z = 1, σ_b = 2, C_0 = 0.5; every update is clipped.
    # The clipped count is noised too (σ_b over 4 clients), so where the norm moves
    # is random; Flower draws from numpy's global generator, seeded here so that the
    # norm moves far enough (below) for the noise check to tell the two norms apart.
    np.random.seed(3)
    sampling = Sampling("fixed", population=4, size=4)
    dp = _adaptive(1.0, 2.0, sampling)
    plan = TrainingPlan(task="t", rounds=1, dp=dp)
    size = 20_000
    initial = [np.zeros(size)]
    strategy = validated_strategy(plan, private_strategy(plan, FedAvg()), initial)
    sent = list(strategy.configure_train(1, ArrayRecord(initial), ConfigRecord(), _Grid()))  # type: ignore[arg-type]
    config = sent[0].content.config_records["config"]
    assert (config[KEY_CLIPPING_NORM], config[ADAPTIVE_CLIPPING]) == (0.5, 1)
    # Execute: three clipped replies, one missing (a zero update, not clipped)
    merged, _ = strategy.aggregate_train(1, [_reply(size, 1) for _ in range(3)])
    # Assert: noise z_Δ·C_0/m on the mean, though the norm has already moved
    assert merged is not None
    std = float(np.std(merged.to_numpy_ndarrays()[0]))
    assert std == pytest.approx(dp.update_noise_multiplier * 0.5 / 4, rel=0.03)
    moved = strategy.inner.clipping_norm  # type: ignore[attr-defined]
    assert abs(moved - 0.5) > 0.1  # noise at the moved norm would be >20 % off


@pytest.mark.usefixtures("flower_task")
def test_clients_clip_adaptively_and_report_the_bit_when_asked() -> None:
    # Prepare: a client whose update has norm 3
    config = ConfigRecord({"task": "t", KEY_CLIPPING_NORM: 1.5, ADAPTIVE_CLIPPING: 1})
    message = Message(
        RecordDict({"arrays": ArrayRecord([np.zeros(9)]), "config": config}),
        dst_node_id=1,
        message_type="train",
    )

    def client(message: Message, context: Context) -> Message:
        content = RecordDict(
            {"arrays": ArrayRecord([np.ones(9)]), "metrics": MetricRecord({"num-examples": 1})}
        )
        return Message(content, reply_to=message)

    context = Context(run_id=1, node_id=1, node_config={}, state=RecordDict(), run_config={})
    # Execute
    reply = clip_if_requested(message, context, client)
    # Assert
    sent = reply.content.array_records["arrays"].to_numpy_ndarrays()[0]
    assert float(np.linalg.norm(sent)) == pytest.approx(1.5)
    assert reply.content.metric_records["metrics"][KEY_NORM_BIT] == 1


@pytest.mark.e2e
def test_an_adaptive_clipping_simulation_is_accounted_with_the_effective_multiplier(
    cli: Cli,
) -> None:
    metrics, _ = cli.simulate(
        "--clients 3 --rounds 2 --dp central --noise-multiplier 1 --adaptive-clip 0.5 "
        "--clip-count-noise 1 --clip 0.1"
    )
    privacy = metrics["privacy"]
    sampling = Sampling("fixed", population=3, size=3)
    expected = DpPlan(
        mode="central",
        clip=0.1,
        noise_multiplier=1.0,
        delta=1e-5,
        sampling=sampling,
        target_quantile=0.5,
        clipped_count_stddev=1,
    )
    assert privacy["epsilon"] == pytest.approx(expected.epsilon_after(2))
    assert privacy["clipping"] == "adaptive"
    assert privacy["update_noise_multiplier"] == pytest.approx(expected.update_noise_multiplier)
    assert [r["accepted_updates"] for r in metrics["per_round"]] == [3, 3]


@pytest.mark.e2e
def test_undefined_adaptive_settings_are_a_clear_cli_error(cli: Cli) -> None:
    result = cli.run(
        "simulate",
        *"--clients 3 --dp central --noise-multiplier 1 --adaptive-clip 0.5".split(),
        timeout=120,
    )
    assert result.returncode == 2
    assert b"adaptive clipping is undefined" in result.stderr.replace(b"\n", b" ")
    assert b"Traceback" not in result.stderr


@pytest.mark.usefixtures("flower_task")
@pytest.mark.parametrize("adaptive", [0, 1])
def test_a_client_that_learned_nothing_sends_its_zero_update_unclipped(adaptive: int) -> None:
    # Prepare: a client with no examples sends the model back unchanged, which
    # Flower's clipping mods divide by (a zero norm) and fail on
    model = np.arange(6, dtype=np.float64)
    config = ConfigRecord({"task": "t", KEY_CLIPPING_NORM: 1.0, ADAPTIVE_CLIPPING: adaptive})
    message = Message(
        RecordDict({"arrays": ArrayRecord([model]), "config": config}),
        dst_node_id=1,
        message_type="train",
    )

    def client(message: Message, context: Context) -> Message:
        arrays = message.content.array_records["arrays"]
        content = RecordDict({"arrays": arrays, "metrics": MetricRecord({"num-examples": 0})})
        return Message(content, reply_to=message)

    context = Context(run_id=1, node_id=1, node_config={}, state=RecordDict(), run_config={})
    # Execute
    reply = clip_if_requested(message, context, client)
    # Assert: the model goes back as it came, and an adaptive round hears "not clipped"
    assert not reply.has_error()
    np.testing.assert_array_equal(
        reply.content.array_records["arrays"].to_numpy_ndarrays()[0], model
    )
    if adaptive:
        assert reply.content.metric_records["metrics"][KEY_NORM_BIT] == 0
