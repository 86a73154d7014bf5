"""Poisson client sampling under central DP: the draw, the fixed divisor, the noise, the ε."""

from __future__ import annotations

import random

import dp_accounting
import numpy as np
import pytest
from dp_accounting import rdp
from flwr.app import ArrayRecord, ConfigRecord, Message, MetricRecord, RecordDict
from flwr.serverapp.strategy import FedAvg

from aicache.federation.dp_wrappers import private_strategy
from aicache.federation.plan import TrainingPlan
from aicache.federation.poisson_sampling import PoissonSampling, poisson_sample
from aicache.federation.server_app import validated_strategy
from aicache.federation.validation import NoValidAggregateError
from aicache.privacy.accounting import Sampling, epsilon
from aicache.privacy.central import DpPlan
from tests.conftest import Cli

DELTA = 1e-5


def test_each_client_is_drawn_independently_with_the_rate() -> None:
    # Prepare
    rng = random.Random(7)
    nodes = list(range(200))
    # Execute: 500 rounds at q = 0.1
    counts = np.zeros(len(nodes))
    sizes = []
    for _ in range(500):
        sample = poisson_sample(nodes, 0.1, rng)
        counts[sample] += 1
        sizes.append(len(sample))
    # Assert: size ~ Binomial(200, 0.1) (mean 20, sd 4.2), each client about 50 of 500
    assert np.mean(sizes) == pytest.approx(20, abs=0.6)
    assert np.std(sizes) == pytest.approx(np.sqrt(200 * 0.1 * 0.9), rel=0.1)
    assert 0 in {len(poisson_sample(nodes[:3], 0.1, rng)) for _ in range(50)}
    assert counts.min() > 25 and counts.max() < 80
    assert isinstance(PoissonSampling(FedAvg(), rate=0.1).rng, random.SystemRandom)


class _Grid:
    def __init__(self, nodes: int) -> None:
        self.nodes = list(range(1, nodes + 1))

    def get_node_ids(self) -> list[int]:
        return self.nodes


def _plan(rate: float, population: int, z: float = 1.0) -> TrainingPlan:
    sampling = Sampling("poisson", rate, population=population)
    return TrainingPlan(
        task="t",
        rounds=1,
        dp=DpPlan(mode="central", clip=1.0, noise_multiplier=z, sampling=sampling),
    )


def _reply(update: float, size: int) -> Message:
    content = RecordDict(
        {
            "arrays": ArrayRecord([np.full(size, update)]),
            "metrics": MetricRecord({"num-examples": 1}),
            "meta": ConfigRecord({"task": "t"}),
        }
    )
    return Message(content, dst_node_id=0, message_type="train")


@pytest.mark.usefixtures("flower_task")
def test_the_aggregate_is_the_sum_over_the_expected_count_plus_its_noise() -> None:
    # Prepare: q = 0.25 of N = 20, so qN = 5; z = 1, C = 1: noise std 1/5 on the mean.
    plan, size = _plan(0.25, 20), 20_000
    initial = [np.zeros(size)]
    strategy = validated_strategy(plan, private_strategy(plan, FedAvg()), initial)
    arrays = ArrayRecord(initial)
    sent = list(strategy.configure_train(1, arrays, ConfigRecord(), _Grid(20)))  # type: ignore[arg-type]
    assert all(m.content.config_records["config"]["clipping_norm"] == 1.0 for m in sent)
    # Execute: three clients reply with updates of 0.03, 0.03 and 0.09 in every coordinate
    merged, _ = strategy.aggregate_train(
        1, [_reply(0.03, size), _reply(0.03, size), _reply(0.09, size)]
    )
    # Assert: (0.03 + 0.03 + 0.09) / 5, not their mean 0.05, plus N(0, 0.2²)
    assert merged is not None
    values = merged.to_numpy_ndarrays()[0]
    assert float(np.mean(values)) == pytest.approx(0.03, abs=0.006)
    assert float(np.std(values)) == pytest.approx(0.2, rel=0.03)


@pytest.mark.usefixtures("flower_task")
def test_a_round_that_samples_nobody_releases_the_model_plus_noise() -> None:
    # Prepare
    plan, size = _plan(0.5, 4, z=2.0), 20_000
    initial = [np.full(size, 3.0)]
    strategy = validated_strategy(plan, private_strategy(plan, FedAvg()), initial)
    strategy.configure_train(1, ArrayRecord(initial), ConfigRecord(), _Grid(0))  # type: ignore[arg-type]
    # Execute
    merged, metrics = strategy.aggregate_train(1, [])
    # Assert: no crash, no update, the same noise 2·1/(0.5·4) = 1 as any other round
    assert merged is not None and metrics is not None
    values = merged.to_numpy_ndarrays()[0]
    assert float(np.mean(values)) == pytest.approx(3.0, abs=0.03)
    assert float(np.std(values)) == pytest.approx(1.0, rel=0.03)
    assert metrics["accepted-updates"] == 0
    # ... while replies that are all invalid still stop the run loudly
    with pytest.raises(NoValidAggregateError, match="none of 1 replies"):
        strategy.aggregate_train(2, [_reply(np.nan, size)])


def test_poisson_rounds_are_accounted_with_the_poisson_sampled_gaussian() -> None:
    # Prepare: the event computed here, independently of the plan
    reference = rdp.RdpAccountant()
    event = dp_accounting.PoissonSampledDpEvent(0.05, dp_accounting.GaussianDpEvent(1.1))
    reference.compose(event, 40)
    # Execute
    plan = _plan(0.05, 1000, z=1.1).dp
    record = plan.record(40)
    # Assert: add-or-remove neighbours, sensitivity C
    assert record["epsilon"] == pytest.approx(reference.get_epsilon(DELTA))
    assert record["neighbouring"] == "add or remove one client"
    assert record["sensitivity"] == 1.0
    assert record["sampling"]["kind"] == "poisson" and record["sampling"]["rate"] == 0.05


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (
            lambda: DpPlan(
                mode="local",
                clip=1.0,
                noise_multiplier=1.0,
                sampling=Sampling("poisson", 0.1, population=9),
            ),
            "Poisson sampling \\(--sample-rate\\) is for --dp central",
        ),
        (
            lambda: DpPlan(
                mode="central", clip=1.0, noise_multiplier=1.0, sampling=Sampling("poisson", 0.1)
            ),
            "needs the population size",
        ),
    ],
)
def test_poisson_settings_that_cannot_be_accounted_are_refused(build: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build()  # type: ignore[operator]


@pytest.mark.e2e
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--sample-rate", "0.5", "--fraction", "0.5"), b"exclude each other"),
        (("--sample-rate", "0.5", "--dp", "local"), b"--sample-rate needs --dp central"),
        (("--sample-rate", "1.5", "--dp", "central"), b"invalid rate 1.5"),
    ],
)
def test_sample_rate_flags_are_checked(cli: Cli, args: tuple[str, ...], message: bytes) -> None:
    result = cli.run("simulate", "--noise-multiplier", "1", *args, timeout=120)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr.replace(b"\n", b" ")
    assert b"Traceback" not in result.stderr


@pytest.mark.e2e
def test_a_poisson_sampled_simulation_survives_empty_rounds_and_is_accounted(cli: Cli) -> None:
    # Execute: 4 clients at q = 0.3: a round samples nobody with chance 0.24.
    metrics, output = cli.simulate(
        "--clients 4 --rounds 3 --sample-rate 0.3 --dp central --noise-multiplier 2"
    )
    # Assert
    sampling = Sampling("poisson", 0.3, population=4)
    assert metrics["privacy"]["epsilon"] == pytest.approx(epsilon(2.0, sampling, 3, 1e-5))
    assert [r["round"] for r in metrics["per_round"]] == [1, 2, 3]
    assert all(0 <= r["accepted_updates"] <= 4 for r in metrics["per_round"])
    assert b"with chance 0.3 a round" in output
    assert b"differs from the number of sampled clients" not in output
