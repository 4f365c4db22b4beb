"""Medians with min and max: how every repeated measure is reported."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from typing import TypedDict


class Spread(TypedDict):
    median: float
    min: float
    max: float


def spread(values: Sequence[float]) -> Spread:
    if not values:
        raise ValueError("no values")
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def percentile(sorted_values: Sequence[float], percent: float) -> float:
    """The nearest-rank percentile of values sorted ascending."""
    if not sorted_values:
        raise ValueError("no values")
    rank = max(0, min(len(sorted_values) - 1, round(percent / 100 * len(sorted_values)) - 1))
    return sorted_values[rank]
