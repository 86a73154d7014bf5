"""Simulation: synthetic populations, real-data loaders, the simulation runner and report.

The public names below load their modules on first use, so importing the
package starts neither Flower nor Ray.
"""

from __future__ import annotations

import importlib as _importlib
import typing as _typing

if _typing.TYPE_CHECKING:
    from aicache.simulation.report import write_report
    from aicache.simulation.runner import SimulationOutcome, run

# Where each public name lives; imported on first use (see the docstring).
_HOMES = {
    "run": "aicache.simulation.runner",
    "SimulationOutcome": "aicache.simulation.runner",
    "write_report": "aicache.simulation.report",
}

__all__ = [
    "SimulationOutcome",
    "run",
    "write_report",
]


def __getattr__(name: str) -> object:
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(_importlib.import_module(_HOMES[name]), name)
