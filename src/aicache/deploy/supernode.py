"""``python -m aicache.deploy.supernode``: Flower's SuperNode with a shorter idle poll.

Flower 1.42's SuperNode waits a fixed 3 s after every poll that found no
message (and 0.5 s between checks for its ClientApp's reply); no flag or
variable changes it, and on loopback it dominates a round's latency. This
entry point caps those waits at ``AICACHE_NODE_POLL`` seconds (default 0.2)
and then runs Flower's own ``flower-supernode`` unchanged. The cap only
replaces the ``time`` module the SuperNode's loop sees; everything else is
Flower's. Checked against flwr 1.42 (the version aicache pins).
"""

from __future__ import annotations

import sys
import time
from types import ModuleType
from typing import Any

from aicache.deploy.polling import NODE_POLL, env_seconds


class _CappedTime(ModuleType):
    """The ``time`` module, with ``sleep`` capped at ``limit`` seconds."""

    def __init__(self, limit: float) -> None:
        super().__init__("time")
        self._limit = limit

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)

    def sleep(self, seconds: float) -> None:
        """Sleep at most the cap."""
        time.sleep(min(seconds, self._limit))


def main() -> None:
    """Run Flower's SuperNode with the capped idle poll."""
    from flwr.supernode import start_client_internal
    from flwr.supernode.cli.flower_supernode import flower_supernode

    cap = env_seconds("AICACHE_NODE_POLL", NODE_POLL)
    start_client_internal.time = _CappedTime(cap)  # type: ignore[attr-defined]
    sys.argv[0] = "flower-supernode"
    flower_supernode()


if __name__ == "__main__":
    main()
