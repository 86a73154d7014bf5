"""SecAgg+ secure aggregation, on Flower's legacy API (the only one that has it in 1.42).

Everything legacy lives in this module: a ServerApp driving Flower's
``DefaultWorkflow`` with ``SecAggPlusWorkflow`` and a legacy FedAvg, and a
ClientApp of ``NumPyClient`` s behind ``secaggplus_mod``. The server only ever
sees each client's masked update, its example count (the weight) and its
evaluation metrics, and the unmasked sum; individual updates cannot be
validated (that is the point), so clients bound them by the protocol's
clipping range and the server checks the aggregate as it would an update.

Flower's workflow logs "Secure aggregation halted" and carries on with an
unchanged model when a stage fails; :class:`LoudSecAggPlusWorkflow` raises
instead, and :class:`SecAggSettings` refuses the settings known to cause it.
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np
from flwr.app import ArrayRecord, ConfigRecord, Context
from flwr.client import NumPyClient
from flwr.client.mod import secaggplus_mod
from flwr.clientapp import ClientApp
from flwr.common import (
    EvaluateRes,
    FitRes,
    Scalar,
    ndarrays_to_parameters,
)
from flwr.server import Grid, LegacyContext, ServerApp, ServerConfig
from flwr.server.client_proxy import ClientProxy
from flwr.server.strategy import FedAvg as LegacyFedAvg
from flwr.server.workflow import DefaultWorkflow, SecAggPlusWorkflow
from flwr.server.workflow.constant import MAIN_CONFIGS_RECORD, MAIN_PARAMS_RECORD, Key

from aicache.federation.client_app import DataProvider, client_seed, fit_config
from aicache.federation.plan import TrainingPlan
from aicache.federation.server_app import RunObserver, wait_for_clients
from aicache.federation.validation import NoValidAggregateError, RoundLog
from aicache.privacy.noise import DP_CLIP, DP_NOISE_STD, noised_update
from aicache.privacy.secure import SecAggSettings
from aicache.tasks.base import get_task


class SecureAggregationHalted(NoValidAggregateError):
    """A SecAgg+ stage failed: the round has no aggregate."""


def loud_workflow(settings: SecAggSettings) -> SecAggPlusWorkflow:
    """Flower's SecAgg+ workflow with ``settings``, failing loudly."""
    return LoudSecAggPlusWorkflow(
        num_shares=int(settings.num_shares) if settings.num_shares > 1 else settings.num_shares,
        reconstruction_threshold=int(settings.reconstruction_threshold)
        if settings.reconstruction_threshold > 1
        else settings.reconstruction_threshold,
        clipping_range=settings.clipping_range,
        max_weight=settings.max_weight,
        timeout=settings.timeout,
    )


class LoudSecAggPlusWorkflow(SecAggPlusWorkflow):
    """Flower's SecAgg+ workflow, raising when a stage fails instead of moving on."""

    def _stage(self, name: str, ok: bool) -> bool:
        if not ok:
            raise SecureAggregationHalted(
                f"secure aggregation halted in its {name} stage: too few clients completed it "
                "(dropouts beyond the reconstruction threshold, or a client error)"
            )
        return ok

    def setup_stage(self, grid: Grid, context: LegacyContext, state: Any) -> bool:
        """Flower's setup stage, loud."""
        return self._stage("setup", super().setup_stage(grid, context, state))

    def share_keys_stage(self, grid: Grid, context: LegacyContext, state: Any) -> bool:
        """Flower's key-sharing stage, loud."""
        return self._stage("key-sharing", super().share_keys_stage(grid, context, state))

    def collect_masked_vectors_stage(self, grid: Grid, context: LegacyContext, state: Any) -> bool:
        """Flower's masked-vector stage, loud."""
        ok = super().collect_masked_vectors_stage(grid, context, state)
        return self._stage("masked-vector", ok)

    def unmask_stage(self, grid: Grid, context: LegacyContext, state: Any) -> bool:
        """Flower's unmasking stage, loud."""
        return self._stage("unmasking", super().unmask_stage(grid, context, state))


class _RecordingFedAvg(LegacyFedAvg):
    """Legacy FedAvg that reports each round to the observer's round log."""

    def __init__(self, plan: TrainingPlan, reference: list[np.ndarray], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.plan = plan
        self.reference = [a.astype(np.float64) for a in reference]
        self.log = RoundLog()

    def aggregate_fit(
        self,
        server_round: int,
        results: list[tuple[ClientProxy, FitRes]],
        failures: list[tuple[ClientProxy, FitRes] | BaseException],
    ) -> tuple[Any, dict[str, Scalar]]:
        self.log = RoundLog(accepted=len(results), rejected=[str(f) for f in failures])
        parameters, metrics = super().aggregate_fit(server_round, results, failures)
        if parameters is None:
            raise NoValidAggregateError(
                f"round {server_round}: secure aggregation produced nothing"
            )
        self.log.train_metrics = {
            k: float(v) for k, v in metrics.items() if isinstance(v, int | float)
        }
        return parameters, metrics

    def aggregate_evaluate(
        self,
        server_round: int,
        results: list[tuple[ClientProxy, EvaluateRes]],
        failures: list[tuple[ClientProxy, EvaluateRes] | BaseException],
    ) -> tuple[float | None, dict[str, Scalar]]:
        # The macro average over clients, as the Message-API strategies report it.
        clients = [
            {k: float(v) for k, v in res.metrics.items() if isinstance(v, int | float)}
            for _, res in results
        ]
        keys = set.intersection(*(set(m) for m in clients)) - {"client"} if clients else set()
        self.log.evaluate_metrics = {k: float(np.mean([m[k] for m in clients])) for k in keys}
        return super().aggregate_evaluate(server_round, results, failures)


def make_secagg_server_app(
    plan: TrainingPlan, initial: list[np.ndarray], observer: RunObserver, settings: SecAggSettings
) -> ServerApp:
    """A ServerApp that runs ``plan`` with SecAgg+ through Flower's legacy workflow."""
    app = ServerApp()

    def on_config(server_round: int) -> dict[str, Scalar]:
        config = {k: v for k, v in plan.train_config().items() if isinstance(v, int | float | str)}
        if plan.dp.mode == "distributed":  # each client's share of the noise, before masking
            config[DP_CLIP] = plan.dp.clip
            config[DP_NOISE_STD] = (
                plan.dp.noise_multiplier * plan.dp.clip / plan.dp.sampling.size**0.5
            )
        return {**config, "server-round": server_round}

    @app.main()
    def main(grid: Grid, context: Context) -> None:
        # Under DP the sample must be unpredictable (see make_server_app).
        random.seed(None if plan.dp.enabled else plan.seed + plan.start_round)
        fraction = plan.selection.fraction
        strategy = _RecordingFedAvg(
            plan,
            initial,
            fraction_fit=fraction,
            fraction_evaluate=fraction,
            min_fit_clients=plan.selection.min_clients,
            min_evaluate_clients=plan.selection.min_clients,
            min_available_clients=max(plan.selection.min_clients, plan.selection.min_available),
            initial_parameters=ndarrays_to_parameters(initial),
            on_fit_config_fn=on_config,
            on_evaluate_config_fn=on_config,
            # Clients send no training statistics; evaluation is summarised in the round log.
            fit_metrics_aggregation_fn=lambda _: {},
            evaluate_metrics_aggregation_fn=lambda _: {},
        )
        observer.bind(strategy)  # type: ignore[arg-type]

        def evaluate_and_register(grid: Grid, legacy: Context) -> None:
            from flwr.server.workflow.default_workflows import default_evaluate_workflow

            default_evaluate_workflow(grid, legacy)
            current = legacy.state.config_records[MAIN_CONFIGS_RECORD][Key.CURRENT_ROUND]
            assert isinstance(current, int)
            arrays = legacy.state.array_records[MAIN_PARAMS_RECORD]
            observer.after_round(current, ArrayRecord(arrays.to_numpy_ndarrays()))

        # The legacy ClientApp only speaks fit and evaluate: the report's final arms
        # are computed by the simulation runner from the registered model instead.

        legacy_context = LegacyContext(
            context,
            config=ServerConfig(
                num_rounds=plan.rounds - plan.start_round, round_timeout=plan.round_timeout
            ),
            strategy=strategy,
        )
        try:
            wait_for_clients(grid, plan.selection.min_available, plan.round_timeout)
            DefaultWorkflow(
                fit_workflow=loud_workflow(settings), evaluate_workflow=evaluate_and_register
            )(grid, legacy_context)
        except Exception as exc:  # handed to the caller, who raises it
            observer.error = exc

    return app


class _TaskClient(NumPyClient):
    """One client's task, behind Flower's legacy NumPyClient interface."""

    def __init__(self, provider: DataProvider, client: int) -> None:
        self.provider = provider
        self.client = client

    def fit(
        self, parameters: list[np.ndarray], config: dict[str, Scalar]
    ) -> tuple[list[np.ndarray], int, dict[str, Scalar]]:
        record = _as_config(config)
        task = get_task(str(config["task"]))
        data = self.provider.client_data(task, self.client)
        result = task.fit(
            parameters, data.train, fit_config(record, seed=client_seed(record, self.client))
        )
        if DP_CLIP in config:
            # Distributed DP: clip, add this client's share of the noise, weigh 1 and
            # send no training statistic; the server must never see an un-noised value.
            sent = noised_update(
                result.params,
                parameters,
                clip=float(config[DP_CLIP]),
                std=float(config[DP_NOISE_STD]),
            )
            return sent, 1, {}
        return result.params, result.num_examples, dict(result.metrics)

    def evaluate(
        self, parameters: list[np.ndarray], config: dict[str, Scalar]
    ) -> tuple[float, int, dict[str, Scalar]]:
        task = get_task(str(config["task"]))
        data = self.provider.client_data(task, self.client)
        metrics = task.evaluate(parameters, data.test)
        count = int(metrics.get("num_examples", 1))
        values: dict[str, Scalar] = {k: v for k, v in metrics.items() if k != "num_examples"}
        values["client"] = self.client
        return float(metrics.get("loss", 0.0)), max(count, 1), values


def _as_config(config: dict[str, Scalar]) -> ConfigRecord:
    return ConfigRecord(dict(config))


def make_secagg_client_app(
    provider: DataProvider, *, outer_mods: list[Any] | None = None
) -> ClientApp:
    """The legacy ClientApp whose updates leave only masked, behind ``secaggplus_mod``.

    ``outer_mods`` run before it (simulation only: dropouts for robustness tests).
    """

    def client_fn(context: Context) -> Any:
        partition = context.node_config.get("partition-id", 0)
        client = int(partition) if isinstance(partition, int | float) else 0
        return _TaskClient(provider, client).to_client()

    return ClientApp(client_fn=client_fn, mods=[*(outer_mods or []), secaggplus_mod])
