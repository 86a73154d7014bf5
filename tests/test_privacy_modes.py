"""Privacy composed by name: the mode registries, the typed record, plans from options."""

from __future__ import annotations

import ast
import json
from pathlib import Path
from typing import Any

import pytest
from flwr.app import ConfigRecord

from aicache.errors import AicacheError
from aicache.federation.client_app import fit_config
from aicache.federation.options import plan_from_options
from aicache.federation.plan import TrainingPlan
from aicache.federation.secure_apps import SECURE_APPS
from aicache.privacy.accounting import Sampling
from aicache.privacy.central import DpPlan
from aicache.privacy.modes import (
    DP_MECHANISMS,
    SECURE_AGGREGATIONS,
    DistributedDp,
    DpMode,
    SecAggPlus,
    SecureMode,
)
from aicache.privacy.record import PrivacyRecord
from aicache.tasks.base import FitConfig

SRC = Path(__file__).resolve().parents[1] / "src" / "aicache"
MODE_NAMES = {m.value for m in DpMode} | {m.value for m in SecureMode} | {"poisson", "fixed"}
# Where mode names may be compared: the registries and the one module of refusals.
REGISTRY_MODULES = {"privacy/modes.py", "privacy/combinations.py"}

# Records as the previous release stored them (DpPlan.record and RunObserver).
STORED_DISTRIBUTED = {
    "dp": "distributed",
    "mechanism": "gaussian",
    "noise_multiplier": 2.0,
    "effective_noise_multiplier": 1.7320508075688772,
    "clip": 0.5,
    "sampling": {"kind": "fixed", "rate": 0.4, "population": 10, "size": 4},
    "rounds": 3,
    "epsilon": 8.328884276369264,
    "delta": 1e-05,
    "accountant": "rdp",
    "budget": 8.0,
    "protects": "each client's participation and data, in the released models",
    "neighbouring": "replace one client",
    "released": "the noised sum of the sampled clients' clipped updates",
    "sensitivity": 1.0,
    "noise_std": 1.0,
    "amplification": "fixed sampling",
    "clipping": "fixed",
    "covers": "the model parameters; evaluation metrics are not covered by epsilon",
}
STORED_ADAPTIVE = {
    **STORED_DISTRIBUTED,
    "dp": "central",
    "noise_multiplier": 1.2,
    "effective_noise_multiplier": 1.2,
    "clip": 1.0,
    "rounds": 2,
    "epsilon": 11.109705123299939,
    "budget": None,
    "sensitivity": 2.0,
    "noise_std": 1.4999999999999998,
    "clipping": "adaptive",
    "target_quantile": 0.5,
    "clipped_count_stddev": 1.0,
    "update_noise_multiplier": 1.4999999999999998,
    "federation": "simulation: x",
    "federation_epsilon": 9.5,
}
STORED_PLAN = json.loads(
    '{"task": "next-command", "rounds": 3, "start_round": 0, "strategy": {"name": "fedavg", '
    '"settings": {}}, "selection": {"fraction": 1.0, "min_clients": 2, "min_available": 0}, '
    '"learning_rate": 0.01, "local_epochs": 2, "batch_size": 128, "seed": 0, '
    '"max_update_norm": 100.0, "round_timeout": 600.0, "final_evaluation": true, '
    '"personalize_epochs": 3, "personalize_learning_rate": 0.003, "local_only_epochs": 10, '
    '"dp": {"mode": "distributed", "clip": 0.5, "noise_multiplier": 2.0, "delta": 1e-05, '
    '"accountant": "rdp", "sampling": {"kind": "fixed", "rate": 1.0, "population": 10, '
    '"size": 4}, "budget": 8.0, "min_survivors": 3, "target_quantile": 0.0, '
    '"clipped_count_stddev": 0.0}, "secure": "secagg", "secagg": {"num_shares": 5, '
    '"reconstruction_threshold": 3, "clipping_range": 32.0, "max_weight": 10000.0, '
    '"timeout": 300.0}, "evaluate_every": 1}'
)
FIXED = Sampling("fixed", population=10, size=4)


def test_every_mode_name_has_its_object_and_its_flower_apps() -> None:
    assert {mechanism.mode for mechanism in DP_MECHANISMS.values()} == set(DpMode)
    assert all(DP_MECHANISMS[mode].mode is mode for mode in DpMode)
    assert all(SECURE_AGGREGATIONS[mode].mode is mode for mode in SecureMode)
    assert set(SECURE_APPS) == set(SecureMode)


def test_no_module_outside_the_registries_compares_with_a_mode_name() -> None:
    # Prepare: every comparison in the package whose operand is a mode's name
    found = []
    for path in sorted(SRC.rglob("*.py")):
        relative = path.relative_to(SRC).as_posix()
        if relative in REGISTRY_MODULES:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Compare):
                continue
            operands = [node.left, *node.comparators]
            names = {
                e.value
                for o in operands
                for e in ([o] if isinstance(o, ast.Constant) else getattr(o, "elts", []))
                if isinstance(e, ast.Constant) and e.value in MODE_NAMES
            }
            if names and any(isinstance(op, ast.Eq | ast.NotEq | ast.In) for op in node.ops):
                found.append(f"{relative}:{node.lineno}")
    # Assert: the settings parser's "off" (a boolean word) is the only one left
    assert found == ["local/settings.py:33"]


@pytest.mark.parametrize("stored", [STORED_DISTRIBUTED, STORED_ADAPTIVE, {"dp": "off"}])
def test_privacy_records_stored_by_the_previous_release_load_and_store_unchanged(
    stored: dict[str, Any],
) -> None:
    record = PrivacyRecord.from_dict(stored)
    assert record.as_dict() == stored
    assert record.enabled == (stored["dp"] != "off")


def test_the_typed_record_reads_the_spent_epsilon() -> None:
    adaptive = PrivacyRecord.from_dict(STORED_ADAPTIVE)
    assert adaptive.federation_epsilon == 9.5  # over all the federation's runs
    assert adaptive.epsilon == 11.109705123299939
    distributed = PrivacyRecord.from_dict(STORED_DISTRIBUTED)
    assert (distributed.epsilon, distributed.federation_epsilon) == (8.328884276369264, None)
    assert PrivacyRecord.from_dict({"dp": "off"}).epsilon is None
    assert PrivacyRecord.from_dict({"dp": "laplace", "epsilon": 1.0}).enabled is False


def test_a_plan_writes_the_record_the_previous_release_wrote() -> None:
    dp = DpPlan(
        mode="distributed",
        clip=0.5,
        noise_multiplier=2.0,
        sampling=FIXED,
        budget=8.0,
        min_survivors=3,
    )
    assert dp.record(3) == STORED_DISTRIBUTED
    assert isinstance(dp.mechanism, DistributedDp)


def test_a_plan_stored_by_the_previous_release_loads_with_its_modes() -> None:
    plan = TrainingPlan.from_dict(STORED_PLAN)
    assert isinstance(plan.dp.mechanism, DistributedDp)
    assert isinstance(plan.secure_aggregation, SecAggPlus)
    assert json.loads(json.dumps(plan.as_dict())) == STORED_PLAN


def test_a_dp_plan_takes_keywords_only() -> None:
    with pytest.raises(TypeError):
        DpPlan("central", 1.0, 1.0)  # type: ignore[call-arg]


def test_the_plan_and_the_clients_train_with_the_task_layer_defaults() -> None:
    defaults = FitConfig()
    plan = TrainingPlan(task="t", rounds=1)
    assert (plan.learning_rate, plan.local_epochs, plan.batch_size) == (
        defaults.learning_rate,
        defaults.local_epochs,
        defaults.batch_size,
    )
    # A server that sends no training settings gets the same from every client.
    assert fit_config(ConfigRecord({}), seed=0) == FitConfig(seed=0)


OPTIONS: dict[str, Any] = {"population": 10, "task": "next-command", "rounds": 2}


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"dp": "laplace"}, "--dp: unknown mode 'laplace'"),
        ({"secure": "tls"}, "--secure: unknown secure mode 'tls'"),
        ({"noise_multiplier": 1.0}, "need --dp central, distributed or local"),
        ({"dp": "central"}, "--dp central needs exactly one of"),
        ({"dp": "local", "noise_multiplier": 1.0, "sample_rate": 0.5}, "--sample-rate needs"),
        ({"sample_rate": 0.5, "fraction": 0.5}, "exclude each other"),
        ({"adaptive_clip": 0.5}, "--adaptive-clip is an option of --dp central"),
        ({"dp": "distributed", "noise_multiplier": 1.0}, "needs --secure secagg or he"),
        ({"secure": "secagg", "min_clients": 1}, "needs at least 2 clients a round"),
        ({"dp": "local", "deployed": True}, "--dp local is not available on a deployed"),
        # Deployed secure runs refuse what simulated ones refuse, with the same messages.
        (
            {"dp": "distributed", "noise_multiplier": 1.0, "deployed": True},
            "needs --secure secagg or he",
        ),
        ({"secure": "he", "strategy": "krum", "deployed": True}, "--secure he runs FedAvg"),
        (
            {"secure": "secagg", "dp": "local", "noise_multiplier": 1.0, "deployed": True},
            "--dp local is not available on a deployed",
        ),
        ({"sample_rate": 0.5, "deployed": True}, "--sample-rate (Poisson sampling) is not"),
        (
            {"dp": "central", "noise_multiplier": 1.0, "sample_rate": 0.5, "deployed": True},
            "--sample-rate (Poisson sampling) is not available on a deployed federation",
        ),
        ({"strategy": "krum", "expected_attackers": 4}, "--expected-attackers 4"),
        ({"task": "bug-detector", "deployed": True}, "bug-detector learns in simulation only"),
        ({"task": "library-recs", "deployed": True}, "library-recs learns in simulation only"),
    ],
)
def test_bad_options_are_refused_with_the_option_named(
    options: dict[str, Any], message: str
) -> None:
    with pytest.raises(AicacheError) as raised:
        plan_from_options(**{**OPTIONS, **options})
    assert message in raised.value.message
    assert "\n" not in raised.value.message


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"dp": "off"}, "--adaptive-clip is an option of --dp central"),
        ({"dp": "local", "noise_multiplier": 1.0}, "--adaptive-clip is an option of --dp central"),
        (
            {"dp": "distributed", "noise_multiplier": 1.0, "secure": "secagg"},
            "--adaptive-clip is an option of --dp central",
        ),
        # Central DP allows it, but not with Poisson sampling: that reason is the one given.
        (
            {"dp": "central", "noise_multiplier": 1.0, "sample_rate": 0.5},
            "under Poisson sampling its clipped count would be under-noised",
        ),
    ],
)
def test_adaptive_clipping_is_refused_with_the_reason_that_applies(
    options: dict[str, Any], message: str
) -> None:
    with pytest.raises(AicacheError) as raised:
        plan_from_options(**{**OPTIONS, "adaptive_clip": 0.5, **options})
    assert message in raised.value.message
    if options.get("dp") != "central":
        assert "Poisson" not in raised.value.message


def test_options_give_the_plan_the_commands_ran() -> None:
    # Distributed DP over SecAgg+: 4 of 10 clients, threshold 0.6 of 4 shares -> 3 survivors
    plan = plan_from_options(
        **OPTIONS,
        fraction=0.4,
        dp="distributed",
        noise_multiplier=2.0,
        secure="secagg",
        learning_rate=0.05,
    )
    assert plan.dp.mode is DpMode.DISTRIBUTED and plan.secure is SecureMode.SECAGG
    assert plan.dp.sampling == FIXED and plan.dp.min_survivors == 3
    assert plan.dp.delta == 1e-5 and plan.learning_rate == 0.05 and plan.final_evaluation
    # A deployed run under DP waits for every enrolled node; without DP for the fewest.
    deployed = plan_from_options(**OPTIONS, dp="central", noise_multiplier=1.0, deployed=True)
    assert deployed.selection.min_available == 10 and not deployed.final_evaluation
    plain = plan_from_options(**OPTIONS, deployed=True)
    assert plain.selection.min_available == 2 and plain.dp == DpPlan()
