"""The error-patterns task: bounded contributions, the population, the DP release, simulate."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from aicache.features.error_events import HISTORY_FAILURE, ErrorOccurrence, bucket, key_of
from aicache.federation.privacy_view import noised_per_client
from aicache.local.history import parse_greenberg, read_text
from aicache.local.normalise import command_tokens
from aicache.privacy.accounting import Sampling, calibrate_noise_multiplier
from aicache.registry import ModelRegistry
from aicache.tasks.base import FitConfig
from aicache.tasks.error_patterns import (
    CONTRIBUTION_NORM,
    MAX_KEYS,
    ErrorExamples,
    ErrorPatternsTask,
    catalogue,
    contribution,
    release_of,
)
from aicache.tasks.error_patterns.population import SyntheticErrors, population_model
from aicache.tasks.error_patterns.spec import SPEC
from aicache.tasks.error_patterns.task import histogram, in_counts
from tests.conftest import Cli, shared_data


def test_a_contribution_counts_each_key_once_and_at_most_max_keys() -> None:
    # Prepare: a developer who hit 30 keys, the first one 40 times, late in its period
    errors = [ErrorOccurrence(float(t), f"tool: error {t % 30}") for t in range(60)]
    errors += [ErrorOccurrence(100.0 + t, "tool: error 0") for t in range(40)]
    # Execute
    examples = contribution(errors)
    added = histogram(examples)
    # Assert: bounded (what makes the Gaussian noise's sensitivity known)
    assert len(examples) == MAX_KEYS
    norm = float(np.sqrt(sum(np.sum(a**2) for a in added)))
    assert norm <= 1.0 + 1e-9  # the default clipping norm leaves it whole
    counts, trend, reports = in_counts(added)
    assert counts.max() == pytest.approx(1.0) and reports[0] == pytest.approx(1.0)
    # the most frequent key is kept, and it rose: its trend vote is +1
    assert trend[bucket("tool: error 0")] == pytest.approx(1.0)


def test_two_keys_of_one_developer_in_one_bucket_count_once_there() -> None:
    # Prepare: two keys the public hash puts in one bucket, each hit by the developer
    seen: dict[int, str] = {}
    for n in range(100_000):
        key = f"tool: error {n}"
        if bucket(key) in seen:
            first, second = seen[bucket(key)], key
            break
        seen[bucket(key)] = key
    errors = [ErrorOccurrence(float(t), k) for t, k in enumerate([first, first, second])]
    # Execute
    counts, _, _ = in_counts(histogram(contribution(errors)))
    # Assert: the bucket holds one developer, the contribution stays within its bound
    assert counts[bucket(first)] == pytest.approx(1.0)


def test_the_population_shares_common_keys_keeps_private_ones_private_and_drifts() -> None:
    # Prepare
    clients = 30
    source = SyntheticErrors(seed=3, clients=clients)
    model = population_model(3, clients)
    # Execute
    holders: Counter[str] = Counter()
    early: Counter[str] = Counter()
    late: Counter[str] = Counter()
    owners: dict[str, set[int]] = {}
    for client in range(clients):
        errors = source.records(client)
        holders.update({e.key for e in errors})
        for e in errors:
            owners.setdefault(e.key, set()).add(client)
            (early if e.ts < 0.5 else late)[e.key] += 1
    # Assert: a private key is only ever hit by its owner; common keys by many
    for index, key in enumerate(model.keys):
        if model.owner[index] >= 0 and key in owners:
            assert owners[key] == {int(model.owner[index])}
    assert holders.most_common(1)[0][1] >= clients // 2
    rising = [k for i, k in enumerate(model.keys) if model.slope[i] > 0 and holders[k] >= 10]
    assert rising and sum(late[k] for k in rising) > sum(early[k] for k in rising)
    assert set(holders) <= set(catalogue())


@pytest.mark.needs_extra("server")
def test_the_release_shows_common_keys_and_hides_a_private_one() -> None:
    # Prepare: 200 developers summed, noised once as a secure sum would be, at ε = 4
    clients = 200
    source = SyntheticErrors(seed=5, clients=clients)
    task = ErrorPatternsTask()
    params = task.init_params(0)
    holders: Counter[str] = Counter()
    for client in range(clients):
        errors = source.records(client)
        holders.update({e.key for e in errors})
        params = task.fit(params, task.load_local(errors), FitConfig()).params
    z = calibrate_noise_multiplier(4.0, Sampling(), 1, 1e-5)
    rng = np.random.default_rng(0)
    noised = [p + rng.normal(0.0, z, p.shape) for p in params]  # clip 1: the bound
    privacy = {
        "dp": "central",
        "noise_multiplier": z,
        "clip": 1.0,
        "rounds": 1,
        "epsilon": 4.0,
        "delta": 1e-5,
    }
    # Execute
    release = release_of(noised, privacy)
    common = release.common(list(holders))
    # Assert: the most common key is released with its band; no key of one developer is
    top = holders.most_common(1)[0][0]
    assert top in {c.key for c in common}
    single = [k for k, n in holders.items() if n == 1]
    assert single and not any(release.lookup(k) for k in single)
    terms = release.describe()
    assert terms["epsilon"] == 4.0 and terms["threshold"] > 5.0
    assert "Gaussian" in terms["method"]


@pytest.mark.e2e
@pytest.mark.needs_extra("simulation")
def test_simulate_error_patterns_releases_an_accounted_version(cli: Cli, tmp_path: Path) -> None:
    # Execute: the real ServerApp and ClientApp, local DP, summed
    registry = tmp_path / "registry"
    metrics, output = cli.simulate(
        f"--task error-patterns --clients 3 --rounds 1 --dp local --clip 1.0 "
        f"--noise-multiplier 1.0 --registry {registry}",
        out=tmp_path / "report",
    )
    # Assert: the report speaks the task's metrics, and the version carries its privacy
    assert metrics["task"] == "error-patterns"
    assert b"own errors common" in output
    with ModelRegistry(registry) as reg:
        version = reg.latest("error-patterns")
        assert version is not None
        params = reg.load(version)
    assert version.privacy["dp"] == "local" and np.isfinite(version.privacy["epsilon"])
    assert noised_per_client(version.privacy)
    release = release_of(params, version.privacy, per_contribution=True)
    assert release.describe()["epsilon"] == version.privacy["epsilon"]
    assert release.threshold >= 5.0


@pytest.mark.e2e
@pytest.mark.needs_extra("simulation")
def test_simulate_error_patterns_under_central_dp_noises_the_sum_once(
    cli: Cli, tmp_path: Path
) -> None:
    # Execute: the real ServerApp and ClientApp, the clients clip, the server noises the sum
    registry = tmp_path / "registry"
    cli.simulate(
        f"--task error-patterns --clients 3 --rounds 1 --dp central --clip 1.0 "
        f"--noise-multiplier 1.0 --registry {registry}",
        out=tmp_path / "report",
    )
    # Assert: a central release, accounted, whose noise is zC = 1 per bucket (in units of
    # the bound): not zC/3, the noise of the mean it is read from
    with ModelRegistry(registry) as reg:
        version = reg.latest("error-patterns")
        assert version is not None
        params = reg.load(version)
    assert version.privacy["dp"] == "central" and np.isfinite(version.privacy["epsilon"])
    assert not noised_per_client(version.privacy)
    # Robust deviation: the 3 developers' few dozen buckets are outliers among 4,096
    spread = 1.4826 * float(np.median(np.abs(params[1])))
    assert spread == pytest.approx(1.0, rel=0.1)
    release = release_of(params, version.privacy)
    assert release.mechanism == "central"
    assert release.noise_std == pytest.approx(float(CONTRIBUTION_NORM))
    assert release.describe()["epsilon"] == version.privacy["epsilon"]


def test_a_release_without_dp_counts_developers_per_round_summed() -> None:
    # Prepare: 12 developers with the same key, summed over 3 rounds, no DP
    task = ErrorPatternsTask()
    params = task.init_params(0)
    examples = task.load_local([ErrorOccurrence(0.0, "git: fatal: not a <w>")])
    for _ in range(3 * 12):
        params = task.fit(params, examples, FitConfig()).params
    # Execute
    release = release_of(params, {"dp": "off"}, rounds=3)
    common = release.lookup("git: fatal: not a <w>")
    # Assert: 12 developers a round, all of them, in the 10-20 band; threshold 5 a round
    assert common is not None and common.developers == pytest.approx(12.0)
    assert common.band == "10-20" and common.share == pytest.approx(1.0)
    assert release.threshold == 15.0 and release.epsilon is None
    assert release.lookup("make: error: <w>") is None


@pytest.mark.e2e
def test_failures_of_an_imported_greenberg_trace_are_contributed(cli: Cli) -> None:
    # Prepare: a real trace, whose error field marks failed commands
    trace = shared_data("greenberg") / "novice-1"
    failed = Counter(
        command_tokens(c.line).program for c in parse_greenberg(read_text(trace)) if c.failed
    )
    assert failed, "the trace records no failure"
    imported = cli.run("import", "greenberg", str(trace))
    assert imported.returncode == 0, imported.stderr
    # Execute: what the node would train on
    task = ErrorPatternsTask()
    assert SPEC.read_store is not None
    examples = SPEC.read_store(task, cli.home)
    # Assert: its most frequent failing programs are in its bounded contribution
    assert isinstance(examples, ErrorExamples) and 0 < len(examples) <= MAX_KEYS
    program = failed.most_common(1)[0][0]
    assert bucket(key_of(program, HISTORY_FAILURE)) in set(examples.buckets.tolist())


def test_a_key_more_developers_hit_lately_is_rising() -> None:
    # Prepare: 12 developers, each hit make's error first and git's twice later
    task = ErrorPatternsTask()
    errors = [
        ErrorOccurrence(0.0, "make: error: <w>"),
        ErrorOccurrence(1.0, "git: fatal: not a <w>"),
        ErrorOccurrence(2.0, "git: fatal: not a <w>"),
    ]
    params = task.init_params(0)
    for _ in range(12):
        params = task.fit(params, task.load_local(errors), FitConfig()).params
    # Execute
    release = release_of(params, {"dp": "off"})
    rising, fading = release.lookup("git: fatal: not a <w>"), release.lookup("make: error: <w>")
    # Assert
    assert rising is not None and rising.rising
    assert fading is not None and not fading.rising
