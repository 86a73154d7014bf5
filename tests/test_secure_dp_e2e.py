"""Central DP over SecAgg+ and over CKKS, in real simulations (Flower's engine, Ray)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from aicache.federation.client_app import client_seed, fit_config
from aicache.federation.plan import TrainingPlan
from aicache.privacy.accounting import Sampling, epsilon
from aicache.privacy.noise import clip_scale
from aicache.privacy.secure import QUANTIZATION_RANGE, SecAggSettings, quantised_clip
from aicache.registry import ModelRegistry
from aicache.simulation.sources import PartitionProvider, SyntheticSource
from aicache.tasks.base import get_task
from tests.conftest import Cli

pytestmark = pytest.mark.e2e
CLIP = 0.05
Z = 0.01  # little noise, so that where the aggregate lands shows what was summed


def _model(home: Path, version: int) -> np.ndarray:
    with ModelRegistry(home / "simulations") as registry:
        arrays = registry.load(registry.resolve("next-command", str(version)))
    return np.concatenate([a.ravel().astype(np.float64) for a in arrays])


def _first_round_updates(clients: int) -> tuple[np.ndarray, np.ndarray]:
    """The initial model and each client's round-1 update, as the clients compute them."""
    task = get_task("next-command")
    plan = TrainingPlan(task="next-command", rounds=1)
    config = plan.train_config()
    config["server-round"] = 1
    provider = PartitionProvider(SyntheticSource(0, clients))
    initial = task.init_params(plan.seed)
    flat = np.concatenate([a.ravel().astype(np.float64) for a in initial])
    updates = []
    for client in range(clients):
        result = task.fit(
            initial,
            provider.client_data(task, client).train,
            fit_config(config, seed=client_seed(config, client)),
        )
        updates.append(np.concatenate([a.ravel() for a in result.params]) - flat)
    return flat, np.stack(updates)


def _clipped(updates: np.ndarray) -> np.ndarray:
    return np.stack([u * clip_scale([u], CLIP) for u in updates])


def _assert_epsilon_is_the_accountants(cli: Cli, privacy: dict[str, Any], m: int) -> None:
    sampling = Sampling("fixed", population=m, size=m)
    assert privacy["epsilon"] == pytest.approx(epsilon(Z, sampling, privacy["rounds"], 1e-5))
    for version in cli.versions():
        stored = version["privacy"]
        assert stored["dp"] == "central"
        assert stored["epsilon"] == pytest.approx(epsilon(Z, sampling, stored["rounds"], 1e-5))


def test_central_dp_over_secagg_clips_before_masking_and_keeps_the_divisor(cli: Cli) -> None:
    # Execute: 5 clients clip to C, SecAgg+ masks, 2 drop out after key sharing, the
    # server unmasks the survivors' sum and adds z·C' noise
    metrics, _ = cli.simulate(
        f"--clients 5 --rounds 1 --secure secagg --dp central --noise-multiplier {Z} "
        f"--clip {CLIP} --secagg-dropouts 2"
    )
    # Assert: the model moved by the survivors' clipped updates over m = 5
    initial, updates = _first_round_updates(5)
    survivors = updates[2:]
    assert np.linalg.norm(survivors, axis=1).min() > 2 * CLIP  # clipping really acts
    clipped = _clipped(survivors)
    dimension = initial.size
    step = 2 * SecAggSettings().clipping_range / QUANTIZATION_RANGE
    noise = Z * quantised_clip(CLIP, SecAggSettings().clipping_range, dimension) / 5
    bound = step * math.sqrt(dimension) + noise * (math.sqrt(dimension) + 8)
    moved = _model(cli.home, 1) - initial
    assert np.linalg.norm(moved - clipped.sum(axis=0) / 5) <= bound
    # ... and not by the survivors' mean (divisor 3) nor by unclipped updates
    assert np.linalg.norm(moved - clipped.sum(axis=0) / 3) > 3 * bound
    assert np.linalg.norm(moved - survivors.sum(axis=0) / 5) > 3 * bound
    assert metrics["per_round"][0]["accepted_updates"] == 3
    _assert_epsilon_is_the_accountants(cli, metrics["privacy"], 5)


def test_central_dp_over_ckks_clips_before_encrypting_and_noises_the_sum(cli: Cli) -> None:
    # Execute: 4 clients clip and encrypt; the server adds ciphertexts and N(0, z²C²)
    metrics, output = cli.simulate(
        f"--clients 4 --rounds 2 --secure he --dp central --noise-multiplier {Z} --clip {CLIP}"
    )
    # Assert: round 1 moved the model by the sum of the clipped updates over m = 4
    initial, updates = _first_round_updates(4)
    assert np.linalg.norm(updates, axis=1).min() > 2 * CLIP
    clipped = _clipped(updates)
    dimension = initial.size
    bound = 1e-6 * math.sqrt(dimension) + Z * CLIP / 4 * (math.sqrt(dimension) + 8)
    moved = _model(cli.home, 1) - initial
    assert np.linalg.norm(moved - clipped.sum(axis=0) / 4) <= bound
    assert np.linalg.norm(moved - updates.mean(axis=0)) > 3 * bound
    assert b"WARNING: The input does not fit" not in output
    assert [r["accepted_updates"] for r in metrics["per_round"]] == [4, 4]
    _assert_epsilon_is_the_accountants(cli, metrics["privacy"], 4)


def test_distributed_dp_over_ckks_sums_the_clients_noise_shares(cli: Cli) -> None:
    # Execute: 4 clients clip, add N(0, z²C²/4) each and encrypt; the server adds nothing
    z = 0.5
    metrics, _ = cli.simulate(
        f"--clients 4 --rounds 1 --secure he --dp distributed --noise-multiplier {z} --clip {CLIP}"
    )
    # Assert: the model moved by the clipped sum over m plus noise of std z·C/m per value
    initial, updates = _first_round_updates(4)
    noise = _model(cli.home, 1) - initial - _clipped(updates).sum(axis=0) / 4
    assert float(noise.std()) == pytest.approx(z * CLIP / 4, rel=6 / math.sqrt(noise.size))
    privacy = metrics["privacy"]
    assert privacy["effective_noise_multiplier"] == z  # every sampled client is required
    sampling = Sampling("fixed", population=4, size=4)
    assert privacy["epsilon"] == pytest.approx(epsilon(z, sampling, 1, 1e-5))
