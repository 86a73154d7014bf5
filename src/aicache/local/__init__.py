"""The private side: store, cache, command runner, importers and privacy controls.

Nothing in this package is ever serialised to the network.
"""
