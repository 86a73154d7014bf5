"""Deployment: the operator's SuperLink and the developers' SuperNodes, supervised by aicache.

Flower's deployment runtime does the federated work; this layer starts,
configures and stops it, enrols nodes, hands out client bundles, and carries
signed models from the server's registry to the developers' machines.
"""
