"""Central differential privacy in a real simulation: clipping, noise, accounting, budget."""

from __future__ import annotations

import pytest

from aicache.privacy.accounting import Sampling, epsilon
from tests.conftest import Cli

pytestmark = pytest.mark.e2e


def test_the_budget_stops_the_run_before_the_round_that_would_exceed_it(cli: Cli) -> None:
    # Prepare: z = 4, 5 of 10 clients a round; the accountant allows 2 rounds under ε = 3.
    sampling = Sampling("fixed", population=10, size=5)
    assert epsilon(4.0, sampling, 2, 1e-5) <= 3.0 < epsilon(4.0, sampling, 3, 1e-5)
    # Execute
    metrics, output = cli.simulate(
        "--clients 10 --rounds 5 --fraction 0.5 --dp central --noise-multiplier 4 --budget 3"
    )
    # Assert
    assert b"stopped before round 3" in output
    versions = cli.versions()
    assert [v["round"] for v in versions] == [1, 2]
    for version in versions:
        privacy = version["privacy"]
        assert privacy["epsilon"] == pytest.approx(epsilon(4.0, sampling, privacy["rounds"], 1e-5))
        assert (privacy["delta"], privacy["clip"], privacy["noise_multiplier"]) == (1e-5, 1.0, 4.0)
    assert metrics["privacy"]["epsilon"] == pytest.approx(epsilon(4.0, sampling, 2, 1e-5))
    assert [r["epsilon"] for r in metrics["per_round"]] == [
        pytest.approx(epsilon(4.0, sampling, r, 1e-5)) for r in (1, 2)
    ]


def test_clients_clip_their_updates_before_sending(cli: Cli) -> None:
    attack = "--clients 3 --rounds 1 --adversarial 1 --attack scale"
    # A client that scales its model by 1000 is rejected without DP (norm bound) ...
    plain, _ = cli.simulate(attack, out=cli.cwd / "plain")
    assert plain["per_round"][0]["rejected_updates"] == 1
    # ... and accepted under central DP, because Flower's clipping mod bounds it to C first.
    clipped, _ = cli.simulate(f"{attack} --dp central --noise-multiplier 1 --clip 0.5")
    dp_round = clipped["per_round"][0]
    assert (dp_round["accepted_updates"], dp_round["rejected_updates"]) == (3, 0)


def test_target_epsilon_calibrates_the_noise_for_the_planned_rounds(cli: Cli) -> None:
    metrics, _ = cli.simulate("--clients 4 --rounds 2 --dp central --target-epsilon 6")
    privacy = metrics["privacy"]
    assert 5.9 < privacy["epsilon"] <= 6.0
    assert privacy["rounds"] == 2 and privacy["budget"] == 6.0


def test_dp_flags_are_checked(cli: Cli) -> None:
    for args, expected in (
        (("--dp", "central"), b"exactly one of --noise-multiplier or --target-epsilon"),
        (("--noise-multiplier", "1"), b"need --dp central"),
        (("--dp", "secret"), b"unknown mode 'secret'"),
        (("--dp", "central", "--noise-multiplier", "1", "--clip", "0"), b"invalid clipping norm"),
    ):
        result = cli.run("simulate", *args, timeout=120)
        assert result.returncode == 2, args
        assert expected in result.stderr, (args, result.stderr)


def test_an_invalid_update_under_dp_counts_as_zero_and_the_round_completes(cli: Cli) -> None:
    metrics, _ = cli.simulate(
        "--clients 3 --rounds 1 --adversarial 1 --attack nan --dp central --noise-multiplier 1"
    )
    per_round = metrics["per_round"][0]
    assert (per_round["accepted_updates"], per_round["rejected_updates"]) == (2, 1)


def test_data_used_without_dp_can_claim_no_finite_epsilon_later(cli: Cli) -> None:
    # Prepare: a run without DP on the population ...
    cli.simulate("--clients 3 --rounds 1", out=cli.cwd / "a")
    # Execute: ... then a DP run with a budget on the same population.
    second = cli.run(
        "simulate",
        *"--clients 3 --rounds 1 --dp central --noise-multiplier 2 --budget 50".split(),
    )
    # Assert
    assert second.returncode == 2
    assert b"already used without differential privacy" in second.stderr.replace(b"\n", b" ")
