"""Simulation: synthetic populations, real-data loaders, the simulation runner and report.

The public names below load their modules on first use, so importing the
package starts neither Flower nor Ray.
"""

from __future__ import annotations

import typing as _typing

from aicache._lazy import lazy_exports as _lazy_exports

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

__getattr__ = _lazy_exports(__name__, _HOMES)
