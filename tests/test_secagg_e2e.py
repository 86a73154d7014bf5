"""SecAgg+ (Flower's SecAggPlusWorkflow and secaggplus_mod) in real simulations."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from aicache.federation.client_app import client_seed, fit_config
from aicache.federation.plan import TrainingPlan
from aicache.privacy.accounting import Sampling, epsilon
from aicache.privacy.secure import SecAggSettings
from aicache.registry import ModelRegistry
from aicache.simulation.sources import PartitionProvider, SyntheticSource
from aicache.tasks.base import get_task
from tests.conftest import Cli

pytestmark = pytest.mark.e2e
CLIENTS = 5


def _model(home: Path, version: int) -> list[np.ndarray]:
    with ModelRegistry(home / "simulations") as registry:
        return registry.load(registry.resolve("next-command", str(version)))


def _first_round_by_hand(clients: list[int]) -> tuple[list[np.ndarray], float]:
    """Round 1 of FedAvg over ``clients`` computed here, and SecAgg+'s quantisation bound."""
    task = get_task("next-command")
    plan = TrainingPlan(task="next-command", rounds=1)
    config = plan.train_config()
    config["server-round"] = 1
    provider = PartitionProvider(SyntheticSource(0, CLIENTS))
    initial = task.init_params(plan.seed)
    models, weights = [], []
    for client in clients:
        result = task.fit(
            initial,
            provider.client_data(task, client).train,
            fit_config(config, seed=client_seed(config, client)),
        )
        models.append(result.params)
        weights.append(result.num_examples)
    mean = [
        np.average(np.stack(layer), axis=0, weights=weights) for layer in zip(*models, strict=True)
    ]
    # The simulation bounds weights by its largest client's example count.
    max_weight = max(task.num_examples(provider.client_data(task, c).train) for c in range(CLIENTS))
    step = 2 * SecAggSettings().clipping_range / 2**22  # one quantisation step, weighted units
    bound = 2 * len(clients) * step / (sum(weights) / max_weight)
    return mean, bound


@pytest.mark.parametrize("mode", ["secagg", "he"])
def test_the_secure_aggregate_equals_the_plain_one_within_its_error(cli: Cli, mode: str) -> None:
    # Execute: SecAgg+ masks quantised updates; CKKS adds ciphertexts with the public key only
    metrics, output = cli.simulate(f"--clients {CLIENTS} --rounds 1 --secure {mode}")
    # Assert
    expected, quantisation_bound = _first_round_by_hand(list(range(CLIENTS)))
    secure = _model(cli.home, 1)
    error = max(float(np.abs(a - b).max()) for a, b in zip(secure, expected, strict=True))
    if mode == "secagg":
        assert 0 < error <= quantisation_bound  # it really went through quantisation
    else:
        assert error < 1e-6  # CKKS with a 2^40 scale: about 1e-8 per value
        assert b"WARNING: The input does not fit" not in output
    assert metrics["per_round"][0]["accepted_updates"] == CLIENTS


def test_dropouts_above_the_threshold_still_give_the_survivors_aggregate(cli: Cli) -> None:
    # 5 shares, threshold round(0.6 * 5) = 3: two of five may vanish after sharing keys.
    cli.simulate(f"--clients {CLIENTS} --rounds 1 --secure secagg --secagg-dropouts 2")
    expected, bound = _first_round_by_hand([2, 3, 4])
    secure = _model(cli.home, 1)
    assert max(float(np.abs(a - b).max()) for a, b in zip(secure, expected, strict=True)) <= bound


def test_dropouts_below_the_threshold_fail_loudly(cli: Cli) -> None:
    flags = f"--clients {CLIENTS} --rounds 2 --secure secagg --secagg-dropouts 3"
    result = cli.run("simulate", *flags.split(), timeout=300)
    assert result.returncode == 1
    assert b"secure aggregation halted" in result.stderr
    assert cli.versions() == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--secure", "quantum"), b"unknown secure mode 'quantum'"),
        (("--secure", "he", "--strategy", "median"), b"--secure he runs FedAvg"),
        (("--secure", "secagg", "--secagg-shares", "4"), b"invalid num_shares 4"),
        (("--secure", "secagg", "--secagg-threshold", "0.4"), b"more than half of the shares"),
        (("--secure", "secagg", "--min-clients", "1"), b"at least 2 clients a round"),
        (
            ("--secure", "secagg", "--dp", "local", "--noise-multiplier", "1"),
            b"--dp off, central or distributed",
        ),
        (
            ("--secure", "he", "--dp", "local", "--noise-multiplier", "1"),
            b"--secure he works with --dp off, central or distributed",
        ),
        (("--secagg-dropouts", "1"), b"--secagg-dropouts needs --secure secagg"),
        (("--dp", "distributed", "--noise-multiplier", "1"), b"needs --secure secagg"),
    ],
)
def test_secure_flags_are_checked(cli: Cli, args: tuple[str, ...], message: bytes) -> None:
    result = cli.run("simulate", "--clients", "3", "--rounds", "1", *args, timeout=120)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr.replace(b"\n", b" ")


def test_distributed_dp_noises_before_masking_and_is_accounted_for_dropouts(cli: Cli) -> None:
    # Execute: 5 clients add their noise share, SecAgg+ masks, 2 drop out after key sharing
    metrics, _ = cli.simulate(
        f"--clients {CLIENTS} --rounds 1 --secure secagg --dp distributed --noise-multiplier 2 "
        "--secagg-dropouts 2"
    )
    # Assert: accounted as if only the threshold's 3 clients had added noise
    privacy = metrics["privacy"]
    effective = 2.0 * (3 / CLIENTS) ** 0.5
    assert privacy["effective_noise_multiplier"] == pytest.approx(effective)
    sampling = Sampling("fixed", population=CLIENTS, size=CLIENTS)
    assert privacy["epsilon"] == pytest.approx(epsilon(effective, sampling, 1, 1e-5))
