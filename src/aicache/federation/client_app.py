"""The ClientApp: trains and evaluates a task on one client's private examples.

The only things a reply carries are the model's arrays, an example count and
a few aggregate metrics; the examples themselves stay with the provider that
loaded them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from flwr.app import ArrayRecord, ConfigRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp
from flwr.clientapp.mod import adaptiveclipping_mod, fixedclipping_mod
from flwr.clientapp.typing import ClientAppCallable, Mod
from flwr.supercore.differential_privacy import KEY_CLIPPING_NORM, KEY_NORM_BIT

from aicache.federation.adaptive_clipping import ADAPTIVE_CLIPPING
from aicache.federation.local_dp import local_dp_mod
from aicache.federation.validation import ENCRYPTED, META, NUM_EXAMPLES, SECURE
from aicache.privacy.modes import secure_aggregation
from aicache.tasks.base import AnyTask, FitConfig, get_task


@dataclass(frozen=True, slots=True)
class ClientData:
    """A client's examples: what it trains on and what it is evaluated on."""

    train: Any
    test: Any


class DataProvider(Protocol):
    """Where a ClientApp gets its private examples (a store, or a simulated partition)."""

    def client_data(self, task: AnyTask, client: int) -> ClientData:
        """The examples of ``client`` for ``task``."""
        ...


# What a client trains with when the server's config leaves a setting out.
_FIT = FitConfig()


def _number(config: ConfigRecord, key: str, default: float) -> float:
    value = config.get(key, default)
    if isinstance(value, int | float):
        return float(value)
    raise ValueError(f"configuration {key!r} must be a number, got {value!r}")


def client_seed(config: ConfigRecord, client: int) -> int:
    """A seed of its own for each client in each round of the run (resumes included)."""
    run_round = int(_number(config, "round-offset", 0)) + int(_number(config, "server-round", 0))
    sequence = np.random.SeedSequence([int(_number(config, "seed", 0)), run_round, client])
    return int(sequence.generate_state(1)[0])


def fit_config(config: ConfigRecord, *, seed: int) -> FitConfig:
    """The local training settings sent by the server, with the client's own seed."""
    return FitConfig(
        learning_rate=_number(config, "learning-rate", _FIT.learning_rate),
        local_epochs=int(_number(config, "local-epochs", _FIT.local_epochs)),
        proximal_mu=_number(config, "proximal-mu", _FIT.proximal_mu),
        batch_size=int(_number(config, "batch-size", _FIT.batch_size)),
        seed=seed,
    )


def _client_id(context: Context) -> int:
    value = context.node_config.get("partition-id", 0)
    return int(value) if isinstance(value, int | float) else 0


def _metrics(values: dict[str, float], **extra: float) -> MetricRecord:
    return MetricRecord({k: float(v) for k, v in {**values, **extra}.items()})


def clip_if_requested(message: Message, context: Context, call_next: ClientAppCallable) -> Message:
    """Clip the update with Flower's ``fixedclipping_mod`` when the server asks for it.

    The server's DP wrapper sends the clipping norm in the round's config; a
    round without differential privacy sends none and is left alone. Under
    adaptive clipping ``adaptiveclipping_mod`` also reports whether it clipped.
    """
    config = message.content.config_records.get("config")
    if config is None or KEY_CLIPPING_NORM not in config:
        return call_next(message, context)
    reply = call_next(message, context)
    if _unchanged(message, reply):
        # A client with nothing to learn from sends the model back as it came.
        # Flower's mods divide the clipping norm by the update's norm, which is
        # zero here; a zero update is inside every bound, so it goes as it is.
        if config.get(ADAPTIVE_CLIPPING):
            for metrics in reply.content.metric_records.values():
                metrics[KEY_NORM_BIT] = 0  # not clipped (Flower sends the bit as an int)
        return reply

    def answered(_message: Message, _context: Context) -> Message:
        return reply  # the mods call the app once: hand them the reply already made

    if config.get(ADAPTIVE_CLIPPING):
        return adaptiveclipping_mod(message, context, answered)
    return fixedclipping_mod(message, context, answered)


def _unchanged(message: Message, reply: Message) -> bool:
    """Whether ``reply`` carries exactly the arrays ``message`` sent (a zero update)."""
    if reply.has_error():
        return False
    sent, back = message.content.array_records, reply.content.array_records
    if len(sent) != 1 or len(back) != 1:
        return False  # Flower's mods name the problem
    before = next(iter(sent.values())).to_numpy_ndarrays()
    after = next(iter(back.values())).to_numpy_ndarrays()
    return len(before) == len(after) and all(
        a.shape == b.shape and np.array_equal(a, b) for a, b in zip(before, after, strict=True)
    )


Tamper = Callable[[int, list[Any]], list[Any]]


_SECRETS: dict[str, Any] = {}


def _secret_context(path: str) -> Any:
    """The federation's secret CKKS context, read once per process."""
    from aicache.privacy import ckks  # TenSEAL is heavy: only for --secure he

    if path not in _SECRETS:
        _SECRETS[path] = ckks.load_context(Path(path).read_bytes())
    return _SECRETS[path]


def make_client_app(
    provider: DataProvider,
    *,
    tamper: Tamper | None = None,
    secret_key_file: str | None = None,
    mods: list[Mod] | None = None,
) -> ClientApp:
    """A ClientApp that serves any registered task from ``provider``'s examples.

    Parameters
    ----------
    provider
        Where each client's examples come from.
    tamper
        Simulation only: turns some clients adversarial by rewriting the
        parameters they send (robust aggregation and validation experiments).
    secret_key_file
        The federation's secret CKKS context, for ``--secure he``: clients
        encrypt their updates with it and decrypt the aggregate on request.
    mods
        Flower mods around every handler (deployment: noting what leaves the machine).
    """
    app = ClientApp(mods=mods)

    def _received(
        message: Message, context: Context
    ) -> tuple[ConfigRecord, AnyTask, int, ClientData, list[Any]]:
        """What a train or evaluate message asks of this client: settings, task, data, model."""
        config = message.content.config_records["config"]
        task = get_task(str(config["task"]))
        client = _client_id(context)
        params = message.content.array_records["arrays"].to_numpy_ndarrays()
        return config, task, client, provider.client_data(task, client), params

    def encrypt_if_requested(
        message: Message, context: Context, call_next: ClientAppCallable
    ) -> Message:
        """Encrypt the reply's update when the server asks for CKKS (``--secure he``).

        Outermost of the train mods, like ``secaggplus_mod`` under SecAgg+: what it
        encrypts has already been clipped (central DP). The reply carries the
        ciphertext of ``weight · (model − global)``, the weight and the task only.
        """
        config = message.content.config_records.get("config")
        mode = "off" if config is None else str(config.get(SECURE, "off"))
        if not secure_aggregation(mode).encrypts_updates:
            return call_next(message, context)
        reference = message.content.array_records["arrays"].to_numpy_ndarrays()
        reply = call_next(message, context)
        if reply.has_error():
            return reply
        content = reply.content
        model = content.array_records["arrays"].to_numpy_ndarrays()
        weight = float(content.metric_records["metrics"][NUM_EXAMPLES])  # type: ignore[arg-type]
        task_name = str(content.config_records[META]["task"])
        return Message(_encrypted(model, reference, weight, task_name), reply_to=message)

    @app.train(mods=[encrypt_if_requested, local_dp_mod, clip_if_requested])
    def train(message: Message, context: Context) -> Message:
        config, task, client, data, params = _received(message, context)
        result = task.fit(params, data.train, fit_config(config, seed=client_seed(config, client)))
        sent = result.params if tamper is None else tamper(client, result.params)
        # Under differential privacy every client weighs the same: the noise is
        # calibrated to the mean of clipped updates, not to an example-weighted one.
        # The server rejects a claim above the task's per-client maximum.
        weight = 1 if KEY_CLIPPING_NORM in config else min(result.num_examples, task.max_examples)
        content = RecordDict(
            {
                "arrays": ArrayRecord(sent),
                "metrics": _metrics(result.metrics, **{NUM_EXAMPLES: weight}),
                META: ConfigRecord({"task": task.name}),
            }
        )
        return Message(content, reply_to=message)

    @app.query("decrypt")
    def decrypt(message: Message, context: Context) -> Message:
        from aicache.privacy import ckks

        if secret_key_file is None:
            raise RuntimeError("this client holds no secret key to decrypt with")
        ciphertext = ckks.from_arrays(message.content.array_records[ENCRYPTED].to_numpy_ndarrays())
        plain = ckks.decrypt(_secret_context(secret_key_file), ciphertext)
        return Message(RecordDict({"arrays": ArrayRecord([plain])}), reply_to=message)

    def _encrypted(
        model: list[Any], reference: list[Any], weight: float, task_name: str
    ) -> RecordDict:
        from aicache.privacy import ckks

        if secret_key_file is None:
            raise RuntimeError("the server asked for encrypted updates, but no key was given")
        update = ckks.flatten(model) - ckks.flatten(reference)
        ciphertext = ckks.encrypt(_secret_context(secret_key_file), weight * update)
        return RecordDict(
            {
                ENCRYPTED: ArrayRecord(ckks.to_arrays(ciphertext)),
                "metrics": MetricRecord({NUM_EXAMPLES: float(weight)}),
                META: ConfigRecord({"task": task_name}),
            }
        )

    @app.evaluate()
    def evaluate(message: Message, context: Context) -> Message:
        config, task, client, data, params = _received(message, context)
        metrics = task.evaluate(params, data.test)
        values: dict[str, float] = {"client": client, **_without_count(metrics)}
        if int(_number(config, "final", 0)):
            values.update(report_arms(task, params, data, config, client))
        count = max(1.0, float(metrics.get("num_examples", 1.0)))
        content = RecordDict({"metrics": _metrics(values, **{NUM_EXAMPLES: count})})
        return Message(content, reply_to=message)

    return app


def _without_count(metrics: dict[str, float]) -> dict[str, float]:
    return {k: v for k, v in metrics.items() if k != "num_examples"}


def report_arms(
    task: AnyTask, params: list[Any], data: ClientData, config: ConfigRecord, client: int
) -> dict[str, float]:
    """A client's own comparisons for the report: a personalised and a local-only model.

    Keys are ``personalized.<metric>`` and ``local_only.<metric>``.
    """
    base = fit_config(config, seed=client_seed(config, client))
    personal = FitConfig(
        learning_rate=_number(config, "personalize-learning-rate", 0.003),
        local_epochs=int(_number(config, "personalize-epochs", 3)),
        batch_size=base.batch_size,
        seed=base.seed,
    )
    alone = FitConfig(
        learning_rate=base.learning_rate,
        local_epochs=int(_number(config, "local-only-epochs", 10)),
        batch_size=base.batch_size,
        seed=base.seed,
    )
    initial = task.init_params(int(_number(config, "seed", 0)))
    models = {
        "personalized": task.fit(params, data.train, personal).params,
        "local_only": task.fit(initial, data.train, alone).params,
    }
    return {
        f"{arm}.{key}": value
        for arm, arm_params in models.items()
        for key, value in _without_count(task.evaluate(arm_params, data.test)).items()
    }
