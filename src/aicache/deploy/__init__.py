"""Deployment: the operator's SuperLink and the developers' SuperNodes, supervised by aicache.

Flower's deployment runtime does the federated work; this layer starts,
configures and stops it, enrols nodes, hands out client bundles, and carries
signed models from the server's registry to the developers' machines.

The public names below load their modules on first use: a node's ClientApp
and ``suggest`` import only what they need, not every Flower module here.
"""

from __future__ import annotations

import typing as _typing

from aicache._lazy import lazy_exports as _lazy_exports

if _typing.TYPE_CHECKING:
    from aicache.deploy.bundle import Bundle
    from aicache.deploy.distribution import Delivery, Inbox
    from aicache.deploy.node import NodeHome
    from aicache.deploy.node_book import NodeBook, NodeRecord
    from aicache.deploy.server import ServerDirectory
    from aicache.deploy.serving import (
        ServedModel,
        Suggestions,
        served_model,
        serving_model,
        suggest_next,
    )

# Where each public name lives; imported on first use (see the docstring).
_HOMES = {
    "ServerDirectory": "aicache.deploy.server",
    "NodeBook": "aicache.deploy.node_book",
    "NodeRecord": "aicache.deploy.node_book",
    "Bundle": "aicache.deploy.bundle",
    "NodeHome": "aicache.deploy.node",
    "Delivery": "aicache.deploy.distribution",
    "Inbox": "aicache.deploy.distribution",
    "ServedModel": "aicache.deploy.serving",
    "Suggestions": "aicache.deploy.serving",
    "served_model": "aicache.deploy.serving",
    "serving_model": "aicache.deploy.serving",
    "suggest_next": "aicache.deploy.serving",
}

__all__ = [
    "Bundle",
    "Delivery",
    "Inbox",
    "NodeBook",
    "NodeHome",
    "NodeRecord",
    "ServedModel",
    "ServerDirectory",
    "Suggestions",
    "served_model",
    "serving_model",
    "suggest_next",
]

__getattr__ = _lazy_exports(__name__, _HOMES)
