"""Tests of the baselines against Ordermesh itself, on the same seeded data."""
