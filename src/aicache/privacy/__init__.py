"""Privacy: DP mechanisms and secure-aggregation modes by name, accounting and calibration.

``modes`` registers each mode as an object under its name, ``combinations``
refuses the pairings that would weaken the accounted guarantee, ``record``
is the typed privacy record stored with a model version.
"""
