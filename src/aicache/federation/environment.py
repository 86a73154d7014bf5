"""The environment of every Flower (and Ray) process aicache starts or runs in.

Shared by the simulation and the deployment, so it lives below both: no
telemetry, no update checks, and Ray kept on loopback with its usage
reporting off. Importing this module imports neither Flower nor Ray, so it
can be applied before they load.
"""

from __future__ import annotations

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
