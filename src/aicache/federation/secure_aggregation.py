"""SecAgg+ secure aggregation, on Flower's legacy API (the only one that has it in 1.42).

Everything legacy lives in this module: a ServerApp driving Flower's
``DefaultWorkflow`` with ``SecAggPlusWorkflow`` and a legacy FedAvg, and a
ClientApp of ``NumPyClient`` s behind ``secaggplus_mod``. The server only ever
sees each client's masked update, its example count (the weight) and its
evaluation metrics, and the unmasked sum; individual updates cannot be
validated (that is the point), so clients bound them by the protocol's
clipping range and the server checks the aggregate as it would an update.

Central DP over SecAgg+ (``--dp central --secure secagg``) is Flower's legacy
``DifferentialPrivacyClientSideFixedClipping`` around that FedAvg, with
``fixedclipping_mod`` inside ``secaggplus_mod`` on the client (clip, then
mask); see :class:`SecAggCentralDp` for what the server sees and adds.

Flower's workflow logs "Secure aggregation halted" and carries on with an
unchanged model when a stage fails; :class:`LoudSecAggPlusWorkflow` raises
instead, and :class:`SecAggSettings` refuses the settings known to cause it.
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np
from flwr.app import ArrayRecord, ConfigRecord, Context, Message, MessageType
from flwr.client import NumPyClient
from flwr.client.mod import fixedclipping_mod, secaggplus_mod
from flwr.clientapp import ClientApp
from flwr.clientapp.typing import ClientAppCallable
from flwr.common import (
    EvaluateRes,
    FitIns,
    FitRes,
    Parameters,
    Scalar,
    ndarrays_to_parameters,
    parameters_to_ndarrays,
)
from flwr.compat.common import recorddict_compat as compat
from flwr.server import Grid, LegacyContext, ServerApp, ServerConfig
from flwr.server.client_manager import ClientManager, SimpleClientManager
from flwr.server.client_proxy import ClientProxy
from flwr.server.strategy import DifferentialPrivacyClientSideFixedClipping
from flwr.server.strategy import FedAvg as LegacyFedAvg
from flwr.server.workflow import DefaultWorkflow, SecAggPlusWorkflow
from flwr.server.workflow.constant import MAIN_CONFIGS_RECORD, MAIN_PARAMS_RECORD, Key
from flwr.supercore.differential_privacy import KEY_CLIPPING_NORM

from aicache.federation.client_app import DataProvider, client_seed, fit_config
from aicache.federation.plan import TrainingPlan
from aicache.federation.server_app import RunObserver, wait_for_clients
from aicache.federation.validation import NoValidAggregateError, RoundLog
from aicache.privacy.noise import DP_CLIP, DP_NOISE_STD, noised_update
from aicache.privacy.secure import SecAggSettings, quantised_clip
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


class BoundedClientManager(SimpleClientManager):
    """Flower's legacy client manager, waiting at most ``timeout`` seconds for clients.

    Flower's waits up to a day for every client a round asks: on a deployment,
    a node that died mid-round would hang the next sampling (the evaluation
    after a round that completed without it, or the next round) for that long.
    Bounded, sampling then takes the nodes that are connected: an evaluation
    is skipped when too few are, and a training round halts loudly in its
    setup stage (:class:`LoudSecAggPlusWorkflow`).
    """

    def __init__(self, timeout: float) -> None:
        super().__init__()
        self.timeout = timeout

    def wait_for(self, num_clients: int, timeout: int = 86400) -> bool:
        """Flower's wait, for at most this manager's timeout."""
        return super().wait_for(num_clients, timeout=int(min(timeout, self.timeout)))


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


class SecAggCentralDp(DifferentialPrivacyClientSideFixedClipping):
    """Central DP-FedAvg on a SecAgg+ sum: Flower's client-side clipping wrapper, legacy API.

    What the server sees: each client clips its update to ``C``
    (``fixedclipping_mod``, inside ``secaggplus_mod``) and sends ``w + clip(Δ_i)``
    with weight 1, masked; the server unmasks only the mean of the ``k``
    clients that sent a masked vector. This wrapper turns that mean into
    ``w + (1/m)·Σ clip(Δ_i)``, the sum over the *fixed* sample size ``m``
    (a client that dropped out counts as a zero update), and Flower's wrapper
    adds ``N(0, (z·C'/m)²)`` to it: noise ``z·C'`` on the sum.

    Neighbouring relation and sensitivity: as in central mode, ``m`` of ``N``
    clients are sampled without replacement and neighbours replace one client's
    data; that client's term moves by at most ``2C'``, where ``C' =
    quantised_clip(C, r, d)`` widens ``C`` by what SecAgg+'s stochastic
    quantisation can add (about ``1.5e-5·sqrt(d)``). With noise ``z·C'`` the
    round is the accountant's event for multiplier ``z`` exactly: the DpPlan's
    ε applies unchanged.

    Dropouts: Flower's wrapper divides by ``num_sampled_clients`` (``m``) but
    its inner FedAvg returns the mean of the ``k`` survivors, whose sensitivity
    ``2C/k`` the noise ``z·C/m`` would under-cover by ``m/k``; rescaling to the
    fixed divisor keeps it exact, and the assumption is that whether a client
    drops out does not depend on its data. Flower's wrapper also discards any
    round with a failure; here the survivors' sum is still the right
    aggregate, so failures are only recorded.

    The server unmasks the un-noised sum before it adds the noise: SecAgg+ hides
    each client's update from it, and the noise protects the released models,
    which is central DP's trust in the server (``--dp distributed`` does not
    need it).
    """

    def __init__(self, inner: _RecordingFedAvg, *, clip: float, noise_clip: float) -> None:
        dp = inner.plan.dp
        super().__init__(
            inner,
            noise_multiplier=dp.noise_multiplier,
            clipping_norm=noise_clip,
            num_sampled_clients=dp.sampling.size,
        )
        self.recorder = inner
        self.clip = clip
        self._reference: list[np.ndarray] = []

    def configure_fit(
        self, server_round: int, parameters: Parameters, client_manager: ClientManager
    ) -> list[tuple[ClientProxy, FitIns]]:
        """Sample ``m`` clients and ask them to clip to ``C`` (the noise is sized on ``C'``)."""
        self._reference = [a.astype(np.float64) for a in parameters_to_ndarrays(parameters)]
        instructions = super().configure_fit(server_round, parameters, client_manager)
        if len(instructions) != self.num_sampled_clients:
            raise NoValidAggregateError(
                f"round {server_round}: {len(instructions)} clients were sampled, but the "
                f"privacy accounting assumes {self.num_sampled_clients}"
            )
        for _, instruction in instructions:
            instruction.config[KEY_CLIPPING_NORM] = self.clip
        return instructions

    def aggregate_fit(
        self,
        server_round: int,
        results: list[tuple[ClientProxy, FitRes]],
        failures: list[tuple[ClientProxy, FitRes] | BaseException],
    ) -> tuple[Parameters | None, dict[str, Scalar]]:
        """Rescale the survivors' mean to the sum over ``m``, then let Flower add the noise."""
        if results:
            # Every result carries the same unmasked mean of the k survivors.
            mean = parameters_to_ndarrays(results[0][1].parameters)
            scaled = ndarrays_to_parameters(
                fixed_divisor_mean(mean, self._reference, len(results), self.num_sampled_clients)
            )
            for _, fit_res in results:
                fit_res.parameters = scaled
        parameters, metrics = super().aggregate_fit(server_round, results, [])
        self.recorder.log.rejected.extend(str(failure) for failure in failures)
        return parameters, metrics


def fixed_divisor_mean(
    mean: list[np.ndarray], reference: list[np.ndarray], count: int, divisor: int
) -> list[np.ndarray]:
    """``reference + Σ updates / divisor``, from the mean of ``count`` models."""
    return [
        (r + (a.astype(np.float64) - r) * (count / divisor)).astype(a.dtype)
        for a, r in zip(mean, reference, strict=True)
    ]


def make_secagg_server_app(
    plan: TrainingPlan, initial: list[np.ndarray], observer: RunObserver, settings: SecAggSettings
) -> ServerApp:
    """A ServerApp that runs ``plan`` with SecAgg+ through Flower's legacy workflow."""
    app = ServerApp()

    def on_config(server_round: int) -> dict[str, Scalar]:
        config = {k: v for k, v in plan.train_config().items() if isinstance(v, int | float | str)}
        noise = plan.dp.mechanism.client_noise(plan.dp)
        if noise is not None:  # each client's share of the noise, before masking
            config[DP_CLIP] = noise.clip
            config[DP_NOISE_STD] = noise.std
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
        outer: LegacyFedAvg | SecAggCentralDp = strategy
        if plan.dp.mechanism.server_noise:
            dimension = sum(int(a.size) for a in initial)
            outer = SecAggCentralDp(
                strategy,
                clip=plan.dp.clip,
                noise_clip=quantised_clip(plan.dp.clip, settings.clipping_range, dimension),
            )

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
            strategy=outer,
            client_manager=BoundedClientManager(plan.round_timeout),
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
        if KEY_CLIPPING_NORM in config:
            # Central DP: clip_when_asked clips this model before secaggplus_mod masks it;
            # every client weighs 1 and no training statistic leaves in the clear.
            return result.params, 1, {}
        # As on the Message API: the weight is capped at the task's per-client maximum,
        # which a deployed run's masked sum is sized for.
        return result.params, min(result.num_examples, task.max_examples), dict(result.metrics)

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


def clip_when_asked(msg: Message, ctxt: Context, call_next: ClientAppCallable) -> Message:
    """Flower's legacy ``fixedclipping_mod`` on the rounds whose config asks for clipping.

    It sits inside ``secaggplus_mod``, so the update is clipped before it is
    quantised and masked; rounds without central DP pass through.
    """
    if msg.metadata.message_type == MessageType.TRAIN:
        config = compat.recorddict_to_fitins(msg.content, keep_input=True).config
        if KEY_CLIPPING_NORM in config:
            return fixedclipping_mod(msg, ctxt, call_next)
    return call_next(msg, ctxt)


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

    # SecAgg+ outermost: what it masks has already been clipped.
    mods = [*(outer_mods or []), secaggplus_mod, clip_when_asked]
    return ClientApp(client_fn=client_fn, mods=mods)
