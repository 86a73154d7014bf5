"""Simulation: synthetic populations, real-data loaders, the simulation runner and report."""
