"""Central DP settings, and the fixed divisor the noise is calibrated to."""

from __future__ import annotations

import numpy as np
import pytest
from flwr.app import ArrayRecord, ConfigRecord, Message, MetricRecord, RecordDict
from flwr.common import Scalar
from flwr.serverapp.strategy import FedAvg

from aicache.federation.plan import TrainingPlan
from aicache.federation.strategies import StrategySpec
from aicache.federation.validation import NoValidAggregateError, ValidatedStrategy
from aicache.privacy.accounting import RunSpend, Sampling, composed_epsilon, epsilon
from aicache.privacy.central import DpPlan, default_delta
from aicache.privacy.modes import SECURE_AGGREGATIONS, SecureMode
from aicache.privacy.noise import noised_update
from aicache.privacy.secure import SecAggSettings

SAMPLING = Sampling("fixed", population=100, size=10)


def test_the_record_stored_with_a_version_holds_the_accountants_numbers() -> None:
    plan = DpPlan(mode="central", clip=0.5, noise_multiplier=1.2, delta=1e-6, sampling=SAMPLING)
    record = plan.record(7)
    assert record["epsilon"] == epsilon(1.2, SAMPLING, 7, 1e-6, "rdp")
    assert (record["mechanism"], record["clip"], record["rounds"]) == ("gaussian", 0.5, 7)
    assert record["sampling"]["rate"] == pytest.approx(0.1)
    assert DpPlan().record(7) == {"dp": "off"}


def test_calibration_meets_the_target_for_the_planned_rounds() -> None:
    plan = DpPlan.calibrated(
        target_epsilon=4.0, rounds=20, clip=1.0, delta=1e-5, accountant="rdp", sampling=SAMPLING
    )
    assert plan.budget == 4.0
    assert 3.9 < plan.epsilon_after(20) <= 4.0


def test_a_plan_survives_the_round_trip_through_the_registry() -> None:
    dp = DpPlan(
        mode="central",
        clip=1.0,
        noise_multiplier=2.0,
        delta=1e-5,
        accountant="pld",
        sampling=Sampling("poisson", 0.2, population=50),
        budget=8.0,
    )
    plan = TrainingPlan(task="next-command", rounds=3, dp=dp)
    assert TrainingPlan.from_dict(plan.as_dict()) == plan


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: DpPlan(mode="laplace"), "unknown DP mode 'laplace'"),
        (lambda: DpPlan(mode="central", clip=0.0, noise_multiplier=1.0), "invalid clipping norm"),
        (lambda: DpPlan(mode="central", noise_multiplier=0.0), "invalid noise multiplier"),
        (lambda: DpPlan(mode="central", noise_multiplier=1.0, delta=1.0), "invalid delta"),
        (
            lambda: DpPlan(mode="central", noise_multiplier=1.0, accountant="gdp"),
            "unknown accountant",
        ),
        (
            lambda: DpPlan(
                mode="central", noise_multiplier=1.0, accountant="pld", sampling=SAMPLING
            ),
            "pld accountant cannot account sampling without replacement",
        ),
        (
            lambda: TrainingPlan(
                task="t",
                rounds=1,
                max_update_norm=0.5,
                dp=DpPlan(mode="central", clip=1.0, noise_multiplier=1.0, sampling=SAMPLING),
            ),
            "below the clipping norm",
        ),
    ],
)
def test_bad_dp_settings_are_named(build: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build()  # type: ignore[operator]


def test_default_delta_is_below_one_over_the_population() -> None:
    for population in (10, 1000, 10**6):
        assert default_delta(population) < 1 / population


def _reply(value: float, weight: float = 1.0) -> Message:
    content = RecordDict(
        {
            "arrays": ArrayRecord([np.full(3, value)]),
            "metrics": MetricRecord({"num-examples": weight, "loss": 0.5, "loss_before": 0.7}),
            "meta": ConfigRecord({"task": "t"}),
        }
    )
    return Message(content, dst_node_id=0, message_type="train")


@pytest.mark.usefixtures("flower_task")
def test_a_missing_or_invalid_update_counts_as_zero_under_dp() -> None:
    # Prepare: 4 sampled clients, one sends NaN and one never answers.
    strategy = ValidatedStrategy(FedAvg(), task="t", max_update_norm=10.0, fixed_count=4)
    strategy._reference = [np.zeros(3)]
    # Execute
    arrays, metrics = strategy.aggregate_train(1, [_reply(1.0), _reply(2.0), _reply(np.nan)])
    # Assert: the sum of the valid updates over the fixed divisor 4, not their mean
    assert arrays is not None and metrics is not None
    assert np.allclose(arrays.to_numpy_ndarrays()[0], (1.0 + 2.0) / 4)
    assert metrics["accepted-updates"] == 2 and metrics["rejected-updates"] == 1
    assert "loss" not in metrics  # no noise-free statistic leaves a DP round


@pytest.mark.usefixtures("flower_task")
def test_under_dp_a_client_cannot_weigh_the_others_down() -> None:
    # Colluders claiming a tiny weight would otherwise hand one client the whole mean.
    strategy = ValidatedStrategy(FedAvg(), task="t", max_update_norm=10.0, fixed_count=3)
    strategy._reference = [np.zeros(3)]
    replies = [_reply(3.0, weight=1.0), _reply(0.0, weight=1e-12), _reply(0.0, weight=1e-12)]
    arrays, _ = strategy.aggregate_train(1, replies)
    assert arrays is not None
    assert np.allclose(arrays.to_numpy_ndarrays()[0], 1.0)


class _Grid:
    """The one Grid method sampling needs: the ids of the connected nodes."""

    def __init__(self, nodes: int) -> None:
        self.nodes = list(range(1, nodes + 1))

    def get_node_ids(self) -> list[int]:
        return self.nodes


@pytest.mark.usefixtures("flower_task")
def test_a_sample_of_another_size_than_the_accounted_one_stops_the_round() -> None:
    inner = FedAvg(fraction_train=0.5, min_train_nodes=1, min_available_nodes=1)
    strategy = ValidatedStrategy(inner, task="t", max_update_norm=10.0, fixed_count=3)
    arrays = ArrayRecord([np.zeros(3)])
    assert len(list(strategy.configure_train(1, arrays, ConfigRecord(), _Grid(6)))) == 3  # type: ignore[arg-type]
    with pytest.raises(NoValidAggregateError, match="5 clients were sampled"):
        strategy.configure_train(2, arrays, ConfigRecord(), _Grid(10))  # type: ignore[arg-type]


def test_dp_is_refused_with_a_strategy_that_is_not_a_mean() -> None:
    for name in ("median", "trimmed-mean", "krum", "fedadam"):
        with pytest.raises(ValueError, match="works with fedavg or fedprox only"):
            TrainingPlan(
                task="t",
                rounds=1,
                strategy=StrategySpec(name),
                dp=DpPlan(mode="central", clip=1.0, noise_multiplier=1.0, sampling=SAMPLING),
            )


def test_runs_are_composed_and_a_run_without_dp_makes_it_infinite() -> None:
    one = RunSpend(1.0, SAMPLING, 10)
    two = composed_epsilon([one, one], 1e-5)
    assert two == pytest.approx(epsilon(1.0, SAMPLING, 20, 1e-5))
    assert composed_epsilon([one, RunSpend(0.0, Sampling(), 3)], 1e-5) == float("inf")
    with pytest.raises(ValueError, match="cannot be composed"):
        composed_epsilon([one, RunSpend(1.0, Sampling("poisson", 0.1), 3)], 1e-5)


@pytest.mark.parametrize(
    ("shares", "threshold", "message"),
    [
        (4, 0.6, "invalid num_shares 4"),
        (2, 0.6, "invalid num_shares 2"),
        (0, 0.6, "invalid num_shares 0"),
        (5, 5, "invalid reconstruction threshold 5"),
        (5, 0, "invalid reconstruction threshold 0"),
        (5, 2, "more than half of the shares"),
        (1.0, 0.5, "more than half of the shares"),
    ],
)
def test_secagg_settings_that_halt_every_round_are_refused(
    shares: float, threshold: float, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        SecAggSettings(shares, threshold)


def test_good_secagg_settings_pass() -> None:
    assert SecAggSettings(5, 3).num_shares == 5
    assert SecAggSettings(0.5, 0.6).reconstruction_threshold == 0.6
    assert isinstance(SecAggSettings(clipping_range=8).clipping_range, float)


def test_distributed_dp_accounts_for_the_fewest_survivors() -> None:
    dp = DpPlan(
        mode="distributed",
        clip=1.0,
        noise_multiplier=2.0,
        delta=1e-5,
        accountant="rdp",
        sampling=SAMPLING,
        min_survivors=6,
    )
    assert dp.effective_noise_multiplier == pytest.approx(2.0 * (6 / 10) ** 0.5)
    assert dp.epsilon_after(5) == epsilon(dp.effective_noise_multiplier, SAMPLING, 5, 1e-5)
    calibrated = DpPlan.calibrated(
        target_epsilon=4.0,
        rounds=5,
        clip=1.0,
        delta=1e-5,
        accountant="rdp",
        sampling=SAMPLING,
        mode="distributed",
        min_survivors=6,
    )
    assert 3.9 < calibrated.epsilon_after(5) <= 4.0
    with pytest.raises(ValueError, match="fewest survivors"):
        DpPlan(
            mode="distributed",
            clip=1.0,
            noise_multiplier=2.0,
            delta=1e-5,
            accountant="rdp",
            sampling=SAMPLING,
            min_survivors=1,
        )


def test_a_clients_noise_share_is_clipped_update_plus_its_gaussian_share() -> None:
    reference = [np.zeros(20_000)]
    model = [np.full(20_000, 0.1)]  # an update of norm about 14
    quiet = noised_update(model, reference, clip=1.0, std=0.0)
    assert float(np.linalg.norm(quiet[0])) == pytest.approx(1.0)
    noisy = noised_update(model, reference, clip=1.0, std=0.5)
    assert float(np.std(noisy[0] - quiet[0])) == pytest.approx(0.5, rel=0.05)


def test_the_fewest_survivors_follow_the_secagg_threshold() -> None:
    min_survivors = SECURE_AGGREGATIONS[SecureMode.SECAGG].min_survivors
    assert min_survivors(SecAggSettings(1.0, 0.6), 10) == 6
    assert min_survivors(SecAggSettings(1.0, 0.6), 3) == 2
    assert min_survivors(SecAggSettings(5, 3), 10) == 3


def test_a_distributed_dp_client_clips_noises_and_weighs_one() -> None:
    # Prepare: a real client of the SecAgg+ ClientApp, asked for distributed DP.
    from aicache.federation.secure_aggregation import _TaskClient
    from aicache.privacy.noise import DP_CLIP, DP_NOISE_STD
    from aicache.simulation.sources import PartitionProvider, SyntheticSource
    from aicache.tasks.base import get_task

    client = _TaskClient(PartitionProvider(SyntheticSource(0, 2)), 0)
    params = get_task("next-command").init_params(0)
    config: dict[str, Scalar] = {
        "task": "next-command",
        "learning-rate": 0.5,
        "local-epochs": 1,
        DP_CLIP: 0.1,
    }
    # Execute
    quiet, weight, metrics = client.fit(params, {**config, DP_NOISE_STD: 0.0})
    # Eight noisy draws (about 7,300 values): the std is then known to about 0.8 %.
    draws = [client.fit(params, {**config, DP_NOISE_STD: 0.2})[0] for _ in range(8)]
    _, plain_weight, plain_metrics = client.fit(
        params, {k: v for k, v in config.items() if k != DP_CLIP}
    )
    # Assert: clipped to C, the noise share is there, no weight or statistic leaves
    quiet_norm = np.sqrt(sum(np.sum((q - p) ** 2) for q, p in zip(quiet, params, strict=True)))
    assert quiet_norm == pytest.approx(0.1)
    assert (weight, metrics) == (1, {})
    residual = np.concatenate(
        [(n - q).ravel() for noisy in draws for n, q in zip(noisy, quiet, strict=True)]
    )
    assert float(np.std(residual)) == pytest.approx(0.2, rel=0.05)
    assert plain_weight > 1 and plain_metrics  # without DP: example-weighted, as before
