"""Privacy: differential-privacy accounting and calibration, secure-aggregation settings."""
