"""Local DP: each client's own update is clipped and noised, and accounted per client."""

from __future__ import annotations

import math

import dp_accounting
import numpy as np
import pytest
from dp_accounting import rdp
from flwr.app import ArrayRecord, ConfigRecord, Context, Message, MetricRecord, RecordDict

from aicache.federation.local_dp import LOCAL_DP_CLIP, LOCAL_DP_STD, local_dp_mod
from aicache.federation.plan import TrainingPlan
from aicache.federation.server_app import update_norm_bound
from aicache.federation.strategies import StrategySpec
from aicache.privacy.accounting import RunSpend, Sampling, composed_epsilon, epsilon
from aicache.privacy.central import DpPlan
from aicache.privacy.noise import noised_update, noisy_update_bound
from tests.conftest import Cli
from tests.test_accounting import _exact_gaussian_epsilon

DELTA = 1e-5
FIXED = Sampling("fixed", population=100, size=10)


@pytest.mark.parametrize(("z", "rounds"), [(2.0, 1), (4.0, 5), (8.0, 30)])
def test_local_epsilon_is_the_exact_gaussian_with_sensitivity_two_c(z: float, rounds: int) -> None:
    # T rounds of noise z·C on sensitivity 2C compose to one Gaussian with μ = 2√T / z.
    exact = _exact_gaussian_epsilon(2 * math.sqrt(rounds) / z, DELTA)
    assert epsilon(z, FIXED, rounds, DELTA, "pld", local=True) == pytest.approx(exact, rel=1e-2)
    assert epsilon(z, FIXED, rounds, DELTA, "rdp", local=True) >= exact


def test_sampling_does_not_amplify_local_dp() -> None:
    reference = rdp.RdpAccountant()
    reference.compose(dp_accounting.GaussianDpEvent(3.0 / 2), 10)
    for sampling in (FIXED, Sampling("fixed", population=100, size=100), Sampling("poisson", 0.01)):
        assert epsilon(3.0, sampling, 10, DELTA, local=True) == pytest.approx(
            reference.get_epsilon(DELTA)
        )


def test_local_runs_compose_with_fixed_size_runs_and_not_with_poisson_ones() -> None:
    # Prepare: both are stated for replace-one neighbours, computed independently here.
    reference = rdp.RdpAccountant(
        neighboring_relation=dp_accounting.NeighboringRelation.REPLACE_ONE
    )
    reference.compose(
        dp_accounting.SampledWithoutReplacementDpEvent(100, 10, dp_accounting.GaussianDpEvent(0.5)),
        4,
    )
    reference.compose(dp_accounting.GaussianDpEvent(2.0), 3)
    runs = [RunSpend(1.0, FIXED, 4), RunSpend(4.0, FIXED, 3, local=True)]
    # Execute / Assert
    assert composed_epsilon(runs, DELTA) == pytest.approx(reference.get_epsilon(DELTA))
    with pytest.raises(ValueError, match="cannot be composed"):
        composed_epsilon([runs[1], RunSpend(1.0, Sampling("poisson", 0.1), 3)], DELTA)


def test_the_version_record_states_the_relation_sensitivity_and_no_amplification() -> None:
    plan = DpPlan(
        mode="local", clip=0.5, noise_multiplier=6.0, delta=DELTA, accountant="pld", sampling=FIXED
    )
    record = plan.record(4)
    assert record["dp"] == "local"
    assert record["epsilon"] == epsilon(6.0, FIXED, 4, DELTA, "pld", local=True)
    assert record["neighbouring"] == "replace one client's data"
    assert record["sensitivity"] == 1.0 and record["noise_std"] == 3.0
    assert record["amplification"].startswith("none")
    assert plan.spend(4) == RunSpend(6.0, FIXED, 4, local=True)


def test_calibration_meets_the_target_for_local_dp() -> None:
    plan = DpPlan.calibrated(
        target_epsilon=8.0,
        rounds=3,
        clip=1.0,
        delta=DELTA,
        accountant="rdp",
        sampling=FIXED,
        mode="local",
    )
    assert 7.9 < plan.epsilon_after(3) <= 8.0


def test_local_dp_takes_any_rule_refuses_secure_modes_and_asks_clients_for_noise() -> None:
    dp = DpPlan(mode="local", clip=0.5, noise_multiplier=2.0, sampling=FIXED)
    plan = TrainingPlan(task="t", rounds=1, strategy=StrategySpec("median"), dp=dp)
    config = plan.train_config()
    assert (config[LOCAL_DP_CLIP], config[LOCAL_DP_STD]) == (0.5, 1.0)
    assert LOCAL_DP_CLIP not in TrainingPlan(task="t", rounds=1).train_config()
    for secure in ("secagg", "he"):
        with pytest.raises(ValueError, match="--secure"):
            TrainingPlan(task="t", rounds=1, dp=dp, secure=secure)


def _train_message(config: dict[str, float]) -> Message:
    content = RecordDict(
        {
            "arrays": ArrayRecord([np.zeros(20_000, dtype=np.float32)]),
            "config": ConfigRecord({"task": "t", **config}),
        }
    )
    return Message(content, dst_node_id=1, message_type="train")


def _client(message: Message, context: Context) -> Message:
    """A client whose update has norm 100 and that reports private statistics."""
    content = RecordDict(
        {
            "arrays": ArrayRecord([np.full(20_000, 100 / math.sqrt(20_000), dtype=np.float32)]),
            "metrics": MetricRecord({"num-examples": 57, "loss": 0.25}),
            "meta": ConfigRecord({"task": "t"}),
        }
    )
    return Message(content, reply_to=message)


def _context() -> Context:
    return Context(run_id=1, node_id=1, node_config={}, state=RecordDict(), run_config={})


@pytest.mark.usefixtures("flower_task")
def test_the_mod_clips_noises_and_keeps_private_statistics_home() -> None:
    # Execute
    reply = local_dp_mod(
        _train_message({LOCAL_DP_CLIP: 0.5, LOCAL_DP_STD: 0.2}), _context(), _client
    )
    # Assert: the clipped update (norm 0.5, spread evenly) plus noise of std 0.2
    assert not reply.has_error()
    sent = reply.content.array_records["arrays"].to_numpy_ndarrays()[0]
    assert sent.dtype == np.float32
    residual = sent.astype(np.float64) - 0.5 / math.sqrt(20_000)
    assert float(np.mean(residual)) == pytest.approx(0.0, abs=0.01)
    assert float(np.std(residual)) == pytest.approx(0.2, rel=0.03)
    assert dict(reply.content.metric_records["metrics"]) == {"num-examples": 1}
    assert reply.content.config_records["meta"]["task"] == "t"


@pytest.mark.usefixtures("flower_task")
def test_the_mod_leaves_other_rounds_alone_and_refuses_no_noise() -> None:
    plain = local_dp_mod(_train_message({}), _context(), _client)
    assert plain.content.metric_records["metrics"]["num-examples"] == 57
    refused = local_dp_mod(
        _train_message({LOCAL_DP_CLIP: 0.5, LOCAL_DP_STD: 0.0}), _context(), _client
    )
    assert refused.has_error() and "noise above 0" in str(refused.error.reason)


def test_an_honest_noised_update_passes_the_servers_norm_check() -> None:
    # Prepare: the plan's bound is 100, but a noised update of 20,000 values is longer.
    initial = [np.zeros((100, 200))]
    dp = DpPlan(mode="local", clip=1.0, noise_multiplier=2.0, sampling=FIXED)
    plan = TrainingPlan(task="t", rounds=1, dp=dp, max_update_norm=100.0)
    update = noised_update([np.full((100, 200), 1.0)], initial, clip=1.0, std=2.0)
    norm = float(np.linalg.norm(update[0]))
    # Execute
    bound = update_norm_bound(plan, initial)
    # Assert
    assert norm > 100.0 and norm <= bound == noisy_update_bound(1.0, 2.0, 20_000)
    assert update_norm_bound(TrainingPlan(task="t", rounds=1), initial) == 100.0


@pytest.mark.e2e
def test_a_local_dp_simulation_is_accounted_per_client(cli: Cli) -> None:
    # Execute: 3 clients, 2 of them sampled a round, 2 rounds, every update noised.
    metrics, _ = cli.simulate(
        "--clients 3 --rounds 2 --fraction 0.6 --dp local --noise-multiplier 8 --clip 0.5"
    )
    # Assert: two Gaussian rounds of multiplier 8/2 each, whatever the sampling
    privacy = metrics["privacy"]
    assert privacy["dp"] == "local" and privacy["rounds"] == 2
    assert privacy["epsilon"] == pytest.approx(epsilon(8.0, FIXED, 2, 1e-5, local=True))
    assert privacy["sensitivity"] == 1.0 and privacy["noise_std"] == 4.0
    per_round = metrics["per_round"]
    assert [r["accepted_updates"] for r in per_round] == [2, 2]
    assert [v["privacy"]["epsilon"] for v in cli.versions()] == [
        pytest.approx(epsilon(8.0, FIXED, r, 1e-5, local=True)) for r in (1, 2)
    ]
