"""DP accounting: reference values, an independent closed form, and calibration properties."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aicache.privacy.accounting import (
    Sampling,
    calibrate_noise_multiplier,
    epsilon,
    rounds_within_budget,
)

DELTA = 1e-5


@pytest.mark.parametrize(
    ("z", "q", "rounds", "accountant", "expected"),
    [
        (1.0, 1.0, 3, "rdp", 9.010),
        (1.0, 1.0, 3, "pld", 8.385),
        (1.0, 0.1, 100, "rdp", 7.904),
        (1.0, 0.1, 100, "pld", 7.047),
        (2.0, 0.1, 1000, "rdp", 8.947),
        (2.0, 0.1, 1000, "pld", 8.279),
    ],
)
def test_reference_values(
    z: float, q: float, rounds: int, accountant: str, expected: float
) -> None:
    assert epsilon(z, Sampling("poisson", q), rounds, DELTA, accountant) == pytest.approx(
        expected, abs=2e-3
    )


def _normal_cdf(x: float) -> float:
    return 0.5 * math.erfc(-x / math.sqrt(2))


def _exact_gaussian_epsilon(mu: float, delta: float) -> float:
    """ε of a Gaussian mechanism with μ = sensitivity/σ, from the exact trade-off curve
    (Balle and Wang 2018, Theorem 8), solved by bisection: an independent reference."""

    def delta_at(eps: float) -> float:
        return _normal_cdf(-eps / mu + mu / 2) - math.exp(eps) * _normal_cdf(-eps / mu - mu / 2)

    low, high = 0.0, 100.0
    for _ in range(200):
        middle = (low + high) / 2
        low, high = (middle, high) if delta_at(middle) > delta else (low, middle)
    return high


@pytest.mark.parametrize(("z", "rounds"), [(1.0, 3), (2.0, 10), (0.8, 1)])
def test_pld_matches_the_exact_gaussian_without_sampling(z: float, rounds: int) -> None:
    # T rounds of σ = z on sensitivity 1 compose to one Gaussian with μ = √T / z.
    exact = _exact_gaussian_epsilon(math.sqrt(rounds) / z, DELTA)
    assert epsilon(z, Sampling("poisson", 1.0), rounds, DELTA, "pld") == pytest.approx(
        exact, rel=1e-2
    )


def test_rdp_is_never_below_the_exact_value() -> None:
    exact = _exact_gaussian_epsilon(math.sqrt(3), DELTA)
    assert epsilon(1.0, Sampling(), 3, DELTA, "rdp") >= exact


def test_fixed_size_sampling_is_accounted_with_its_own_event() -> None:
    fixed = epsilon(1.0, Sampling("fixed", population=100, size=10), 100, DELTA, "rdp")
    poisson = epsilon(1.0, Sampling("poisson", 0.1), 100, DELTA, "rdp")
    assert math.isfinite(fixed) and fixed > poisson  # replace-one neighbours cost more
    with pytest.raises(ValueError, match="pld accountant cannot account sampling without"):
        epsilon(1.0, Sampling("fixed", population=100, size=10), 10, DELTA, "pld")


def test_more_rounds_and_less_noise_cost_more() -> None:
    sampling = Sampling("poisson", 0.05)
    assert epsilon(1.0, sampling, 10, DELTA) < epsilon(1.0, sampling, 20, DELTA)
    assert epsilon(2.0, sampling, 10, DELTA) < epsilon(1.0, sampling, 10, DELTA)
    assert epsilon(0.0, sampling, 10, DELTA) == math.inf
    assert epsilon(1.0, sampling, 0, DELTA) == 0.0


@settings(max_examples=15, deadline=None)
@given(
    target=st.floats(min_value=0.5, max_value=10.0),
    rate=st.floats(min_value=0.01, max_value=1.0),
    rounds=st.integers(min_value=1, max_value=200),
    accountant=st.sampled_from(["rdp", "pld"]),
)
def test_calibrated_noise_never_overshoots_the_target(
    target: float, rate: float, rounds: int, accountant: str
) -> None:
    sampling = Sampling("poisson", rate)
    z = calibrate_noise_multiplier(target, sampling, rounds, DELTA, accountant, tolerance=1e-2)
    assert epsilon(z, sampling, rounds, DELTA, accountant) <= target
    assert epsilon(max(z - 0.02, 1e-3), sampling, rounds, DELTA, accountant) > target


def test_rounds_within_budget_is_the_last_round_that_fits() -> None:
    sampling = Sampling("poisson", 0.1)
    rounds = rounds_within_budget(1.0, sampling, DELTA, budget=4.0)
    assert epsilon(1.0, sampling, rounds, DELTA) <= 4.0 < epsilon(1.0, sampling, rounds + 1, DELTA)


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: Sampling("random"), "unknown sampling"),
        (lambda: Sampling("poisson", 0.0), "invalid sample rate 0.0"),
        (lambda: Sampling("fixed", population=10, size=11), "invalid fixed sample 11 of 10"),
        (lambda: epsilon(1.0, Sampling(), 1, DELTA, "gdp"), "unknown accountant 'gdp'"),
        (lambda: calibrate_noise_multiplier(-1, Sampling(), 1, DELTA), "invalid target"),
    ],
)
def test_bad_settings_are_named(build: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build()  # type: ignore[operator]
