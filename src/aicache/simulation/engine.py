"""Running a ServerApp and ClientApp under Flower's Simulation Engine, and cleaning up.

Flower's pitfalls are handled here: telemetry and update checks off, a
private FLWR_HOME, Ray kept on loopback with its usage reporting off, the
deprecation notice of the Python entry point muted, and the process
environment restored afterwards.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from flwr.clientapp import ClientApp
    from flwr.serverapp import ServerApp

QUIET_ENVIRONMENT = {
    "FLWR_TELEMETRY_ENABLED": "0",
    "FLWR_DISABLE_UPDATE_CHECK": "1",
    "RAY_USAGE_STATS_ENABLED": "0",
    "RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO": "0",
    "RAY_DEDUP_LOGS": "0",
    # Ray takes the host's address for its node unless it thinks it runs alone
    # (as on macOS and Windows): then every Ray listener binds to 127.0.0.1.
    "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
}


class _DropDeprecationNotice(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "DEPRECATED FEATURE" not in record.getMessage()


@contextmanager
def flower_environment(*, verbose: bool = False) -> Iterator[None]:
    """Set up the process for Flower and undo every change on exit."""
    saved = dict(os.environ)
    with tempfile.TemporaryDirectory(prefix="aicache-flwr-") as flwr_home:
        os.environ.update(QUIET_ENVIRONMENT)
        os.environ["FLWR_HOME"] = flwr_home
        logger = logging.getLogger("flwr")
        level = logger.level
        notice = _DropDeprecationNotice()
        logger.addFilter(notice)
        if not verbose:
            logger.setLevel(logging.WARNING)
        try:
            yield
        finally:
            logger.removeFilter(notice)
            logger.setLevel(level)
            os.environ.clear()
            os.environ.update(saved)


def simulate(
    server_app: ServerApp, client_app: ClientApp, *, clients: int, cpus: int, verbose: bool = False
) -> None:
    """Run the apps with ``clients`` virtual SuperNodes on ``cpus`` Ray workers."""
    with flower_environment(verbose=verbose):
        import ray
        from flwr.simulation import run_simulation

        try:
            run_simulation(
                server_app=server_app,
                client_app=client_app,
                num_supernodes=clients,
                backend_config={
                    "client_resources": {"num_cpus": 1, "num_gpus": 0.0},
                    "init_args": {
                        "num_cpus": cpus,
                        "num_gpus": 0,
                        "include_dashboard": False,
                        "logging_level": "ERROR",
                        "log_to_driver": verbose,
                    },
                },
                verbose_logging=verbose,
            )
        finally:
            if ray.is_initialized():
                ray.shutdown()
