"""The Flower side of each secure-aggregation mode, registered under the mode's name.

The mode objects of :mod:`aicache.privacy.modes` say what a mode needs; here
each name gets the ServerApp/ClientApp pair that runs it. SecAgg+ exists only
on Flower's legacy API, so it has a pair of its own; ``off`` and ``he`` share
the Message-API pair (CKKS is a strategy wrapper and a client mod).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from flwr.clientapp import ClientApp
from flwr.serverapp import ServerApp

from aicache.federation.client_app import DataProvider, Tamper, make_client_app
from aicache.federation.plan import TrainingPlan
from aicache.federation.secure_aggregation import make_secagg_client_app, make_secagg_server_app
from aicache.federation.server_app import RunObserver, make_server_app
from aicache.privacy.modes import SecureMode


@dataclass(frozen=True, slots=True, kw_only=True)
class AppOptions:
    """What a run adds to the pair beyond its plan.

    Attributes
    ----------
    secret_context, public_context
        The CKKS secret context (for clients) and public context (for the
        server), for a mode that encrypts: each side is given only its own.
    mods
        Deployment: client mods around every handler of the ClientApp's
        Message-API handlers (noting what leaves the machine).
    tamper
        Simulation only: adversarial clients rewriting what they send.
    outer_mods
        Simulation only: client mods outside the protocol's own (dropouts).
    """

    secret_context: Path | None = None
    public_context: Path | None = None
    mods: list[Any] | None = None
    tamper: Tamper | None = None
    outer_mods: list[Any] | None = None


AppPair = tuple[ServerApp, ClientApp]
ServerFactory = Callable[[TrainingPlan, list[np.ndarray], RunObserver, AppOptions], ServerApp]
ClientFactory = Callable[[DataProvider, AppOptions], ClientApp]


@dataclass(frozen=True, slots=True)
class SecureApps:
    """How a secure mode runs on Flower.

    A simulation builds both apps in one process; a deployment builds the
    ServerApp in the SuperLink's ServerApp process and the ClientApp on each
    node, each with only its own side's options.

    Attributes
    ----------
    server, client
        Make the ServerApp and the ClientApp of a run.
    client_reports_arms
        Its ClientApp answers the final evaluation with the report's arms
        (otherwise the caller computes them in process).
    """

    server: ServerFactory
    client: ClientFactory
    client_reports_arms: bool = True

    def build(
        self,
        plan: TrainingPlan,
        initial: list[np.ndarray],
        observer: RunObserver,
        provider: DataProvider,
        options: AppOptions,
    ) -> AppPair:
        """The ServerApp and the ClientApp of a run (a simulation holds both)."""
        return self.server(plan, initial, observer, options), self.client(provider, options)


def _message_api_server(
    plan: TrainingPlan, initial: list[np.ndarray], observer: RunObserver, options: AppOptions
) -> ServerApp:
    public = options.public_context
    return make_server_app(
        plan, initial, observer, public_context=None if public is None else public.read_bytes()
    )


def _message_api_client(provider: DataProvider, options: AppOptions) -> ClientApp:
    secret = options.secret_context
    return make_client_app(
        provider,
        tamper=options.tamper,
        secret_key_file=None if secret is None else str(secret),
        mods=options.mods,
    )


def _secagg_server(
    plan: TrainingPlan, initial: list[np.ndarray], observer: RunObserver, options: AppOptions
) -> ServerApp:
    return make_secagg_server_app(plan, initial, observer, plan.secagg)


def _secagg_client(provider: DataProvider, options: AppOptions) -> ClientApp:
    return make_secagg_client_app(provider, outer_mods=options.outer_mods)


SECURE_APPS: dict[SecureMode, SecureApps] = {
    SecureMode.OFF: SecureApps(_message_api_server, _message_api_client),
    SecureMode.HE: SecureApps(_message_api_server, _message_api_client),
    # The legacy ClientApp has no query handler for the report's arms.
    SecureMode.SECAGG: SecureApps(_secagg_server, _secagg_client, client_reports_arms=False),
}
