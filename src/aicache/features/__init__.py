"""Pure functions from local records to arrays.

Everything here runs on the developer's machine and works from the store's
normalised fields (program, subcommand, session, directory hash, failure),
never from raw command lines. Nothing in this package is serialised to the
network: only a task's parameter arrays are.
"""
