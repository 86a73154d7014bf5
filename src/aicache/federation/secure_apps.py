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
    keys
        The CKKS secret context (for clients) and public context (for the
        server), for a mode that encrypts.
    tamper
        Simulation only: adversarial clients rewriting what they send.
    outer_mods
        Simulation only: client mods outside the protocol's own (dropouts).
    """

    keys: tuple[Path, Path] | None = None
    tamper: Tamper | None = None
    outer_mods: list[Any] | None = None


AppPair = tuple[ServerApp, ClientApp]
AppFactory = Callable[
    [TrainingPlan, list[np.ndarray], RunObserver, DataProvider, AppOptions], AppPair
]


@dataclass(frozen=True, slots=True)
class SecureApps:
    """How a secure mode runs on Flower.

    Attributes
    ----------
    build
        Makes the ServerApp and ClientApp of a run.
    client_reports_arms
        Its ClientApp answers the final evaluation with the report's arms
        (otherwise the caller computes them in process).
    """

    build: AppFactory
    client_reports_arms: bool = True


def _message_api(
    plan: TrainingPlan,
    initial: list[np.ndarray],
    observer: RunObserver,
    provider: DataProvider,
    options: AppOptions,
) -> AppPair:
    keys = options.keys
    server = make_server_app(
        plan, initial, observer, public_context=None if keys is None else keys[1].read_bytes()
    )
    client = make_client_app(
        provider, tamper=options.tamper, secret_key_file=None if keys is None else str(keys[0])
    )
    return server, client


def _secagg(
    plan: TrainingPlan,
    initial: list[np.ndarray],
    observer: RunObserver,
    provider: DataProvider,
    options: AppOptions,
) -> AppPair:
    server = make_secagg_server_app(plan, initial, observer, plan.secagg)
    return server, make_secagg_client_app(provider, outer_mods=options.outer_mods)


SECURE_APPS: dict[SecureMode, SecureApps] = {
    SecureMode.OFF: SecureApps(_message_api),
    SecureMode.HE: SecureApps(_message_api),
    # The legacy ClientApp has no query handler for the report's arms.
    SecureMode.SECAGG: SecureApps(_secagg, client_reports_arms=False),
}
