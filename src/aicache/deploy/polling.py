"""The polling intervals aicache tunes in Flower's deployment runtime, read from the environment.

Standard library only: the SuperNode's entry point imports it before Flower.
"""

from __future__ import annotations

import os

NODE_POLL = 0.2  # AICACHE_NODE_POLL: the SuperNode's idle poll (Flower's default: 3 s)
SERVER_POLL = 0.1  # AICACHE_SERVER_POLL: the ServerApp's ask for replies (Flower's: 3 s)


def env_seconds(name: str, default: float, low: float = 0.01, high: float = 3.0) -> float:
    """Seconds from the variable ``name``, kept within ``[low, high]``; ``default`` if unset
    or not a number."""
    try:
        value = float(os.environ.get(name, default))
    except ValueError:
        return default
    return min(max(value, low), high)


# After its last message a node keeps polling every AICACHE_NODE_POLL seconds for this
# long (rounds of a run follow each other well within it), then goes back to Flower's
# 3 s, so a node with nothing to do stays under 1 % of a core.
HOT_SECONDS = 30.0
IDLE_NODE_POLL = 3.0
# aicache's SuperExec is woken by its SuperNode when a message arrives (SIGUSR1); this is
# only its fallback poll.
IDLE_SUPEREXEC_POLL = 5.0
